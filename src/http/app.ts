/**
 * The node's Hono app: the jobs API, health, cluster view, metrics and the OpenAPI document, with
 * the cross-cutting middleware (request metrics, API tokens, body limit, errors) in one place.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "../logger.ts";
import { apiAuth, type ApiAuthOptions } from "./auth.ts";
import { errorResponse, PayloadTooLargeError } from "./errors.ts";
import { type ClusterApi, clusterRoutes, leaderRouting } from "./cluster_routes.ts";
import { type JobsDeps, jobsRoutes } from "./jobs.ts";
import { serveOpenApi } from "./openapi.ts";
import { type WorkersDeps, workersRoutes } from "./workers.ts";
import type { ClusterView, HealthView, ReadyView } from "./schemas.ts";

/** What the node exposes to the system routes. */
export interface NodeView {
  node_id: string;
  /** `/health`: `status` is `ok`, `degraded` or `failed` (a vital loop stopped: 503). */
  health(): HealthView;
  /** `/ready`: whether a load balancer should send this node traffic, and why not. */
  ready(): ReadyView;
  /** `/debug/cluster`: this node's view of the members, terms and indexes. */
  cluster(): ClusterView;
  metricsText(): Promise<string>;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export interface AppDeps extends JobsDeps {
  max_body_bytes: number;
  node: NodeView;
  logger: Logger;
  /** API tokens (none: the API is open). */
  auth: ApiAuthOptions;
  /** Present in cluster mode: the Raft routes and leader routing. */
  cluster?: { raft: Hono; api: ClusterApi };
  /** The workers API, with the node's `WORKER_TTL`. */
  workers?: WorkersDeps & { ttl_ms: number };
  /** A sub-app served at `path`, where `/` redirects to (the web console). */
  home?: { path: string; app: Hono };
}

export function createApp(deps: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    // A response proxied from the leader keeps the leader's name.
    if (!c.res.headers.has("X-Tickraft-Node")) c.header("X-Tickraft-Node", deps.node.node_id);
    deps.node.observeRequest(
      c.req.method,
      c.req.routePath,
      c.res.status,
      (performance.now() - started) / 1_000,
    );
  });
  // Before the body limit and leader routing: a request without a valid token costs no more.
  app.use(apiAuth(deps.auth));
  const limitBody = bodyLimit({
    maxSize: deps.max_body_bytes,
    onError: () => {
      throw new PayloadTooLargeError(
        `request body is larger than ${deps.max_body_bytes} bytes (MAX_BODY_BYTES); send less or split it`,
      );
    },
  });
  // Raft RPCs have their own bound: an entry made from a full batch can exceed MAX_BODY_BYTES,
  // and refusing it would stall replication for good.
  app.use((c, next) => c.req.path.startsWith("/raft/") ? next() : limitBody(c, next));

  if (deps.cluster !== undefined) {
    app.route("/", deps.cluster.raft);
    app.use(leaderRouting(deps.cluster.api));
    app.route("/", clusterRoutes(deps.cluster.api));
  }
  app.route("/jobs", jobsRoutes(deps));
  if (deps.workers !== undefined) app.route("/", workersRoutes(deps.workers, deps.workers.ttl_ms));
  if (deps.home !== undefined) {
    const home = deps.home.path;
    app.get("/", (c) => c.redirect(home));
    app.route(home, deps.home.app);
  }
  app.get("/health", (c) => {
    const health = deps.node.health();
    return c.json(health, health.status === "failed" ? 503 : 200);
  });
  app.get("/ready", (c) => {
    const ready = deps.node.ready();
    return c.json(ready, ready.ready ? 200 : 503);
  });
  app.get("/debug/cluster", (c) => c.json(deps.node.cluster()));
  app.get("/metrics", async (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(await deps.node.metricsText());
  });
  serveOpenApi(app);

  app.notFound((c) =>
    c.json({
      error: `no route for ${c.req.method} ${
        new URL(c.req.url).pathname
      }; see the README's API table`,
      code: "not_found",
    }, 404)
  );
  app.onError((error, c) => {
    const response = errorResponse(c, error);
    if (response.status === 500) {
      deps.logger.error("request failed", { path: c.req.path, error: String(error) });
    }
    return response;
  });
  return app;
}
