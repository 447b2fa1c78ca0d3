# syntax=docker/dockerfile:1
#
# Tickraft as one binary on a distroless runtime.
#
#   docker build -t tickraft .
#   docker run -p 8080:8080 -v tickraft-data:/data tickraft
#
# Without cluster settings the container is a single node. A 3-node cluster: deploy/compose
# (static CLUSTER_NODES), deploy/k8s (DNS discovery), fly.toml (Fly discovery); see deploy/README.md.
#
# The builder stage runs `deno task compile`, which downloads `denort` (the runtime that
# `deno compile` copies) from Deno's servers: build where that download works. The binary holds
# the node, its migrations and libSQL's native addon for the builder's platform, so build on the
# platform you run (docker buildx --platform linux/amd64 or linux/arm64; no cross-compiling).

FROM denoland/deno:2.9.6 AS builder
WORKDIR /app
# npm packages first: this layer is reused while only the source changes.
COPY deno.json deno.lock ./
RUN deno install
COPY src/ src/
COPY scripts/compile.ts scripts/compile.ts
RUN deno task compile \
  && mkdir -p /out/data \
  && cp dist/tickraft /out/tickraft

# cc: glibc and libgcc, which denort and libSQL's addon link against; nothing else (no shell).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/tickraft /usr/local/bin/tickraft
# An empty /data owned by the nonroot user (65532), so a fresh named volume is writable.
COPY --from=builder --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data \
  HTTP_PORT=8080
USER 65532:65532
VOLUME /data
EXPOSE 8080
# SIGTERM stops the node gracefully: deliveries in flight get 5 s, then in a cluster a leader hands
# leadership to the most caught-up voter and waits up to 5 s for it. Give it time with
# `docker stop -t 30` (compose: stop_grace_period, Kubernetes: terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# No shell or curl here: the binary's own CLI asks the node (GET /debug/cluster and GET /health)
# and exits 1 when it does not answer. Change the URL if you change HTTP_PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/tickraft", "--url", "http://127.0.0.1:8080", "cluster", "status"]
ENTRYPOINT ["/usr/local/bin/tickraft"]
