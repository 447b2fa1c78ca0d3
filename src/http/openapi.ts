/**
 * The OpenAPI 3.1 document (`GET /openapi.json`) and Swagger UI (`GET /docs`), made from the zod
 * schemas of `schemas.ts`. The jobs routes declare themselves with {@link serveRoute}; the routes
 * written as plain Hono handlers elsewhere (system, cluster, Raft) are declared here, so the
 * document lists every route of the README's API table (tests/http/openapi_test.ts checks both).
 *
 * @module
 */
import { createRoute, OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import type { Handler } from "hono";
import { z } from "zod";
import { RAFT_ROUTES, raftPath } from "../cluster/route_table.ts";
import {
  clusterViewSchema,
  errorSchema,
  healthSchema,
  joinSchema,
  readySchema,
  transferSchema,
} from "./schemas.ts";

/** Where the document and the UI are served; both are open (the document holds no data). */
export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";

const ERROR_MEANINGS: Record<number, string> = {
  400: "Invalid input: malformed JSON, a bad field (one `details` entry per field), a bad query",
  401: "No API token, or not a known one (`WWW-Authenticate: Bearer`)",
  403: "A read-only API token on a write",
  404: "No such job",
  409: "The job's or the cluster's state does not allow it",
  413: "Body larger than MAX_BODY_BYTES",
  503: "Overloaded or storage failed; in a cluster, no leader known (`Retry-After`)",
  507: "QUEUE_JOB_LIMIT or the memory limit reached",
};

/** Error answers of a route, `{error, code, details}` each. */
export function errorResponses(...statuses: (keyof typeof ERROR_MEANINGS)[]) {
  return Object.fromEntries(statuses.map((status) => [status, {
    description: ERROR_MEANINGS[status],
    content: { "application/json": { schema: errorSchema } },
  }]));
}

/** A JSON answer described by `schema`. */
export const json = (description: string, schema: z.ZodType) => ({
  description,
  content: { "application/json": { schema } },
});

/**
 * Declares `route` in the document and serves it with `handler`. Unlike `OpenAPIHono.openapi`,
 * this adds none of the library's request validators, on purpose: they would answer 415 to a JSON
 * body sent without `Content-Type: application/json` (`curl -d`), throw their own error on
 * malformed JSON, and read a repeated query key as an array. The handlers validate with the same
 * schemas (`readJson` and `parse` in jobs.ts), so every 400 keeps the `{error, code, details}`
 * shape with field paths that the API has always had.
 */
export function serveRoute(app: OpenAPIHono, route: RouteConfig, handler: Handler): void {
  app.openAPIRegistry.registerPath(route);
  app.on(route.method.toUpperCase(), route.path.replace(/\{(\w+)\}/g, ":$1"), handler);
}

/** swagger-ui-dist version the page loads from the CDN (pinned, as the packages are). */
const SWAGGER_UI_VERSION = "5.35.0";
const BEARER = "bearer";
const CLUSTER_SIGNATURE = "clusterSignature";
/** Open by default, see AUTH_OPEN_HEALTH: a token is accepted, none is needed. */
const OPTIONAL_AUTH: Record<string, string[]>[] = [{}, { [BEARER]: [] }];
const OPEN: Record<string, string[]>[] = [];

/** The system, cluster and Raft routes, served outside the jobs app: declared for the document. */
function declareOtherRoutes(app: OpenAPIHono): void {
  const declare = (route: RouteConfig) => app.openAPIRegistry.registerPath(route);
  declare(createRoute({
    method: "get",
    path: "/health",
    tags: ["system"],
    summary: "Role, uptime, job counts, queue and memory use",
    description: "Open without a token unless AUTH_OPEN_HEALTH=false.",
    security: OPTIONAL_AUTH,
    responses: {
      200: json("This node's health", healthSchema),
      503: json("A loop the node needs stopped: the process is exiting", healthSchema),
      ...errorResponses(401),
    },
  }));
  declare(createRoute({
    method: "get",
    path: "/ready",
    tags: ["system"],
    summary: "Readiness for load balancers: a leader known, the known commit applied",
    description: "Open without a token unless AUTH_OPEN_HEALTH=false.",
    security: OPTIONAL_AUTH,
    responses: {
      200: json("Ready", readySchema),
      503: json("Not ready, with the reason", readySchema),
      ...errorResponses(401),
    },
  }));
  declare(createRoute({
    method: "get",
    path: "/debug/cluster",
    tags: ["system"],
    summary: "Members, roles, term, commit and applied index, lag",
    responses: {
      200: json("This node's view of the cluster", clusterViewSchema),
      ...errorResponses(401),
    },
  }));
  declare(createRoute({
    method: "get",
    path: "/metrics",
    tags: ["system"],
    summary: "Prometheus metrics",
    description: "Open without a token unless AUTH_OPEN_HEALTH=false.",
    security: OPTIONAL_AUTH,
    responses: {
      200: {
        description: "Prometheus text format 0.0.4",
        content: { "text/plain": { schema: z.string() } },
      },
      ...errorResponses(401),
    },
  }));
  declare(createRoute({
    method: "get",
    path: OPENAPI_PATH,
    tags: ["system"],
    summary: "This OpenAPI 3.1 document",
    security: OPEN,
    responses: { 200: json("The document", z.record(z.string(), z.unknown())) },
  }));
  declare(createRoute({
    method: "get",
    path: DOCS_PATH,
    tags: ["system"],
    summary: "Swagger UI over this document",
    security: OPEN,
    responses: {
      200: { description: "An HTML page", content: { "text/html": { schema: z.string() } } },
    },
  }));

  const clusterOnly = "Cluster mode only; a follower forwards it to the leader.";
  declare(createRoute({
    method: "post",
    path: "/join",
    tags: ["cluster"],
    summary: "Add a node as a learner, promoted to voter once caught up",
    description: clusterOnly,
    request: { body: { content: { "application/json": { schema: joinSchema } } } },
    responses: {
      202: json(
        "The node joins as a learner",
        z.object({
          name: z.string(),
          address: z.string(),
          role: z.literal("learner"),
          status: z.literal("joining"),
        }),
      ),
      ...errorResponses(400, 401, 403, 409, 503),
    },
  }));
  declare(createRoute({
    method: "delete",
    path: "/cluster/members/{id}",
    tags: ["cluster"],
    summary: "Remove a member (a removed leader steps down)",
    description: clusterOnly,
    request: { params: z.object({ id: z.string() }) },
    responses: {
      200: json("Removed", z.object({ id: z.string(), removed: z.literal(true) })),
      ...errorResponses(401, 403, 404, 409, 503),
    },
  }));
  declare(createRoute({
    method: "post",
    path: "/cluster/transfer-leader",
    tags: ["cluster"],
    summary: "Hand leadership to `to`, or to the most caught-up voter",
    description: clusterOnly,
    request: { body: { content: { "application/json": { schema: transferSchema } } } },
    responses: {
      200: json("The new leader", z.object({ leader: z.string() })),
      ...errorResponses(400, 401, 403, 409, 503),
    },
  }));

  for (const route of RAFT_ROUTES) {
    declare(createRoute({
      method: "post",
      path: raftPath(route),
      tags: ["raft"],
      summary: `Raft RPC: a batch of ${route} messages`,
      description: "Between cluster nodes only: a batch of messages in the binary codec of " +
        "src/cluster/codec.ts, signed with CLUSTER_SECRET (HMAC over path, timestamp and " +
        "body in the Authorization header). API tokens do not apply.",
      security: [{ [CLUSTER_SIGNATURE]: [] }],
      request: {
        body: {
          required: true,
          content: {
            "application/octet-stream": { schema: z.string().meta({ format: "binary" }) },
          },
        },
      },
      responses: {
        204: { description: "Received (Raft answers travel back as requests)" },
        400: json("Undecodable, or messages of another route or node", errorSchema),
        401: json("Missing, stale or wrong signature", errorSchema),
        413: json("Body larger than the Raft limit", errorSchema),
      },
    }));
  }
}

/**
 * Adds `GET /openapi.json` and `GET /docs` to `app`, documenting every route declared on it (the
 * jobs app's come in through `app.route`) and the ones of {@link declareOtherRoutes}.
 */
export function serveOpenApi(app: OpenAPIHono): void {
  declareOtherRoutes(app);
  app.openAPIRegistry.registerComponent("securitySchemes", BEARER, {
    type: "http",
    scheme: "bearer",
    description: "An API token of API_TOKENS_ADMIN or API_TOKENS_READ (read: GET and HEAD only)",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", CLUSTER_SIGNATURE, {
    type: "apiKey",
    in: "header",
    name: "Authorization",
    description:
      "`Tickraft-HMAC-SHA256 <timestamp_ms>:<hex>`, signed with CLUSTER_SECRET (nodes only)",
  });
  // Made on first request, once every route is declared; the routes do not change afterwards.
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  app.get(OPENAPI_PATH, (c) =>
    c.json(
      document ??= app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "Tickraft",
          version: "1",
          description: "A Raft-replicated job scheduler: jobs over HTTP, delivered as signed " +
            "webhooks. When API_TOKENS_ADMIN and API_TOKENS_READ are both empty, no token is needed.",
        },
        security: [{ [BEARER]: [] }],
      }),
    ));
  app.get(
    DOCS_PATH,
    swaggerUI({ url: OPENAPI_PATH, title: "Tickraft API", version: SWAGGER_UI_VERSION }),
  );
}
