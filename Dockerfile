# syntax=docker/dockerfile:1
#
# Tickraft as one binary on a distroless runtime.
#
#   docker build -t tickraft .
#   docker run -p 8080:8080 -v tickraft-data:/data tickraft
#
# The same node as a Bun binary (`deno task compile:bun`, no download at build time):
#
#   docker build --target bun -t tickraft:bun .
#
# Without cluster settings the container is a single node. A 3-node cluster: deploy/compose
# (static CLUSTER_NODES), deploy/k8s (DNS discovery), fly.toml (Fly discovery); see deploy/README.md.
#
# The builder stage runs `deno task compile`, which downloads `denort` (the runtime that
# `deno compile` copies) from Deno's servers: build where that download works. The binary holds
# the node, its migrations and libSQL's native addon for the builder's platform, so build on the
# platform you run (docker buildx --platform linux/amd64 or linux/arm64; no cross-compiling).
#
# Stages: `builder` (Deno binary), `bun-builder` (Bun binary, from the npm registry only), `bun`
# (the Bun binary's image) and the last, default stage (the Deno binary's image). The two images
# are alike but for the binary.

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

FROM node:22-bookworm-slim AS bun-builder
WORKDIR /app
# The pinned Bun and the packages the sources import, at deno.json's versions (toolchain/).
COPY toolchain/package.json toolchain/package-lock.json toolchain/
RUN cd toolchain && npm ci --no-audit --no-fund
COPY bun ./
COPY src/ src/
COPY scripts/compile_bun.ts scripts/compile_bun.ts
RUN ./bun run scripts/compile_bun.ts /out/tickraft \
  && mkdir -p /out/data

# cc: glibc and libgcc, which Bun and libSQL's addon link against; nothing else (no shell).
FROM gcr.io/distroless/cc-debian12:nonroot AS bun
COPY --from=bun-builder /out/tickraft /usr/local/bin/tickraft
COPY --from=bun-builder --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data \
  HTTP_PORT=8080
USER 65532:65532
VOLUME /data
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/tickraft", "--url", "http://127.0.0.1:8080", "cluster", "status"]
ENTRYPOINT ["/usr/local/bin/tickraft"]

# The default image. cc: glibc and libgcc, which denort and libSQL's addon link against; nothing
# else (no shell).
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
