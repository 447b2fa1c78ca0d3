/**
 * The workers API (docs/workers.md): `/workers`, `/allocations` and `GET /jobs/{id}/placement`.
 * Writes go through the log (a follower forwards them to the leader); heartbeats go to the
 * leader's memory; reads, the long poll included, are served from this node's applied state.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import { NotFoundError } from "../errors.ts";
import { labelsSchema, resourcesSchema, taintSchema } from "../workers/command_codec.ts";
import type { AllocationRecord } from "../workers/model.ts";
import { POLL_WAIT_MS_MAX, type WorkerInfo, type WorkersService } from "../workers/service.ts";
import { jsonBody, parse, readJson } from "./jobs.ts";
import { errorResponses, json, serveRoute } from "./openapi.ts";

/** What the workers routes need from the node. */
export interface WorkersDeps {
  workers: WorkersService;
  /** The payload of a job, sent to the worker with each of its allocations. */
  jobPayload(job_id: string): Promise<unknown>;
}

const TAGS = ["workers"];
/** 1-64 of `[A-Za-z0-9._-]`, not only dots (`.` and `..` would be other paths in a URL). */
const WORKER_ID = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;
const workerParams = z.object({ id: z.string().meta({ description: "The worker's id" }) });
const allocParams = z.object({ id: z.string().meta({ description: "The allocation's id" }) });
const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString();

export const registerSchema = z.object({
  id: z.string().regex(WORKER_ID, "use 1-64 of A-Z, a-z, 0-9, '.', '_', '-', not only dots"),
  pool: z.string().min(1).max(64).default("default"),
  region: z.string().max(64).default(""),
  zone: z.string().max(64).default(""),
  labels: labelsSchema.default({}),
  taints: z.array(taintSchema).max(32).default([]),
  capacity: z.object({
    cpu_millis: z.number().int().min(0).max(2_147_483_647),
    memory_mb: z.number().int().min(0).max(2_147_483_647),
    disk_mb: z.number().int().min(0).max(2_147_483_647).default(0),
    slots: z.number().int().min(1).max(100_000).default(1),
  }).strict(),
}).strict().meta({ id: "WorkerRegister" });

const heartbeatSchema = z.object({
  usage: z.object({
    cpu_percent: z.number().min(0).max(100_000).default(0),
    memory_percent: z.number().min(0).max(100).default(0),
    rps: z.number().min(0).max(1e9).default(0),
    running: z.array(z.string().max(64)).max(100_000).default([]),
  }).strict().default({ cpu_percent: 0, memory_percent: 0, rps: 0, running: [] }),
}).strict();

const startSchema = z.object({ worker_id: z.string().regex(WORKER_ID) }).strict();

const finishSchema = z.object({
  worker_id: z.string().regex(WORKER_ID),
  ok: z.boolean(),
  exit_code: z.number().int().min(-(2 ** 31)).max(2 ** 31).nullable().default(null),
  status_code: z.number().int().min(0).max(999).nullable().default(null),
  error: z.string().max(4_096).nullable().default(null),
  output_excerpt: z.string().max(4_096).nullable().default(null),
  duration_ms: z.number().min(0).max(8.64e15),
}).strict();

const workerSchema = z.object({
  id: z.string(),
  pool: z.string(),
  region: z.string(),
  zone: z.string(),
  labels: z.record(z.string(), z.string()),
  taints: z.array(taintSchema),
  capacity: resourcesSchema,
  allocated: resourcesSchema.meta({ description: "What its placed and running allocations hold" }),
  allocations: z.number().int(),
  status: z.enum(["ready", "draining", "lost"]),
  status_reason: z.string().nullable(),
  registered_at: z.string(),
  updated_at: z.string(),
  last_heartbeat_at: z.string().nullable().meta({
    description: "On the leader: its latest heartbeat (null elsewhere)",
  }),
  usage: z.object({
    cpu_percent: z.number(),
    memory_percent: z.number(),
    rps: z.number(),
    running: z.array(z.string()),
  }).nullable(),
  heartbeat_ms: z.number().int().meta({ description: "How often to heartbeat" }),
}).meta({ id: "Worker" });

const allocationSchema = z.object({
  id: z.string(),
  job_id: z.string(),
  execution_id: z.string(),
  attempt: z.number().int(),
  scheduled_at: z.string(),
  worker_id: z.string().nullable(),
  status: z.enum(["pending", "placed", "running", "completed", "failed", "lost", "cancelled"]),
  resources: resourcesSchema,
  job_labels: z.record(z.string(), z.string()),
  lease_seconds: z.number(),
  lease_expires_at: z.string().nullable(),
  idempotency_key: z.string(),
  score: z.number().nullable(),
  explanation: z.string().nullable().meta({
    description: "Pending: why no worker fits (workers each filter removed); lost: why",
  }),
  created_at: z.string(),
  placed_at: z.string().nullable(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  outcome: z.object({
    ok: z.boolean(),
    exit_code: z.number().nullable(),
    status_code: z.number().nullable(),
    error: z.string().nullable(),
    output_excerpt: z.string().nullable(),
    duration_ms: z.number(),
  }).nullable(),
  payload: z.unknown().optional().meta({ description: "The job's payload (the long poll)" }),
}).meta({ id: "Allocation" });

const allocationListSchema = z.object({
  allocations: z.array(allocationSchema),
  next_cursor: z.string().nullable(),
}).meta({ id: "AllocationList" });

const pollQuery = z.object({
  wait: z.string().regex(/^\d+(\.\d+)?(ms|s)?$/, "a duration such as 30s or 500ms").optional()
    .meta({ description: `Long poll: wait this long (at most ${POLL_WAIT_MS_MAX / 1_000}s)` }),
});

const listQuery = z.object({
  job: z.string().max(64).optional(),
  worker: z.string().max(64).optional(),
  status: allocationSchema.shape.status.optional(),
  cursor: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
});

/** A worker as the API answers it. */
export type WorkerJson = z.output<typeof workerSchema>;

function workerJson(info: WorkerInfo, heartbeat_ms: number): WorkerJson {
  const w = info.worker;
  return {
    id: w.id,
    pool: w.pool,
    region: w.region,
    zone: w.zone,
    labels: w.labels,
    taints: w.taints,
    capacity: w.capacity,
    allocated: info.allocated,
    allocations: info.allocations,
    status: w.status,
    status_reason: w.status_reason,
    registered_at: new Date(w.registered_at).toISOString(),
    updated_at: new Date(w.updated_at).toISOString(),
    last_heartbeat_at: info.heartbeat === null ? null : iso(info.heartbeat.at_ms),
    usage: info.heartbeat?.usage ?? null,
    heartbeat_ms,
  };
}

export function allocationJson(a: AllocationRecord, payload?: unknown) {
  return {
    id: a.id,
    job_id: a.job_id,
    execution_id: a.execution_id,
    attempt: a.attempt,
    scheduled_at: new Date(a.scheduled_at).toISOString(),
    worker_id: a.worker_id,
    status: a.status,
    resources: a.resources,
    job_labels: a.job_labels,
    lease_seconds: a.lease_ms / 1_000,
    lease_expires_at: iso(a.lease_expires_at),
    idempotency_key: a.idempotency_key,
    score: a.score,
    explanation: a.explanation,
    created_at: new Date(a.created_at).toISOString(),
    placed_at: iso(a.placed_at),
    started_at: iso(a.started_at),
    finished_at: iso(a.finished_at),
    outcome: a.outcome,
    ...(payload === undefined ? {} : { payload }),
  };
}

function waitMs(text: string | undefined): number {
  if (text === undefined) return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text)!;
  return Math.min(POLL_WAIT_MS_MAX, Number(match[1]) * (match[2] === "ms" ? 1 : 1_000));
}

export function workersRoutes(deps: WorkersDeps, ttl_ms: number): OpenAPIHono {
  const app = new OpenAPIHono();
  const { workers } = deps;
  const heartbeat_ms = Math.floor(ttl_ms / 3);
  const params = (c: Context) => c.req.param("id")!;

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/workers",
      tags: TAGS,
      summary: "Register a worker (201; 200 when it was registered: its spec is updated)",
      request: { body: jsonBody(registerSchema) },
      responses: {
        201: json("Registered", workerSchema),
        200: json("Registered again", workerSchema),
        ...errorResponses(400, 401, 403, 413, 503),
      },
    }),
    async (c) => {
      const body = parse(registerSchema, await readJson(c), "worker");
      const { worker, created } = await workers.register(body);
      return c.json(workerJson(worker, heartbeat_ms), created ? 201 : 200);
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/workers",
      tags: TAGS,
      summary: "List workers with capacity, allocated resources and status",
      responses: {
        200: json("Workers", z.object({ workers: z.array(workerSchema) })),
        ...errorResponses(401),
      },
    }),
    (c) => c.json({ workers: workers.list().map((w) => workerJson(w, heartbeat_ms)) }),
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/workers/{id}",
      tags: TAGS,
      summary: "Get a worker",
      request: { params: workerParams },
      responses: { 200: json("The worker", workerSchema), ...errorResponses(401, 404) },
    }),
    (c) => c.json(workerJson(workers.get(params(c)), heartbeat_ms)),
  );

  serveRoute(
    app,
    createRoute({
      method: "delete",
      path: "/workers/{id}",
      tags: TAGS,
      summary: "Deregister a worker; its active allocations are lost and placed again",
      request: { params: workerParams },
      responses: {
        200: json("Removed", z.object({ removed: z.string() })),
        ...errorResponses(401, 403, 404, 503),
      },
    }),
    async (c) => {
      await workers.remove(params(c));
      return c.json({ removed: params(c) });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/workers/{id}/heartbeat",
      tags: TAGS,
      summary: "A worker's heartbeat with its usage (kept in the leader's memory, not the log)",
      request: { params: workerParams, body: jsonBody(heartbeatSchema, false) },
      responses: {
        200: json(
          "Its status",
          z.object({ status: z.string(), ttl_ms: z.number(), heartbeat_ms: z.number() }),
        ),
        ...errorResponses(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      const body = parse(heartbeatSchema, await readJson(c), "heartbeat");
      return c.json(workers.heartbeat(params(c), body.usage));
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/workers/{id}/drain",
      tags: TAGS,
      summary: "Drain a worker: no new placements, what runs finishes",
      request: { params: workerParams },
      responses: { 200: json("The worker", workerSchema), ...errorResponses(401, 403, 404, 503) },
    }),
    async (c) => c.json(workerJson(await workers.drain(params(c)), heartbeat_ms)),
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/workers/{id}/allocations",
      tags: TAGS,
      summary: "A worker's allocations waiting to start; `wait` long-polls for one",
      request: { params: workerParams, query: pollQuery },
      responses: {
        200: json("Allocations", z.object({ allocations: z.array(allocationSchema) })),
        ...errorResponses(400, 401, 404),
      },
    }),
    async (c) => {
      const query = parse(pollQuery, c.req.query(), "query");
      const found = await workers.allocationsFor(
        params(c),
        waitMs(query.wait),
        c.req.raw.signal,
      );
      const allocations = await Promise.all(
        found.map(async (a) => allocationJson(a, await deps.jobPayload(a.job_id))),
      );
      return c.json({ allocations });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/allocations",
      tags: TAGS,
      summary: "List allocations: `job`, `worker`, `status`, `limit`, `cursor`",
      request: { query: listQuery },
      responses: { 200: json("Allocations", allocationListSchema), ...errorResponses(400, 401) },
    }),
    async (c) => {
      const q = parse(listQuery, c.req.query(), "query");
      const page = await workers.allocations({
        job_id: q.job,
        worker_id: q.worker,
        status: q.status,
        cursor: q.cursor,
        limit: q.limit + 1,
      });
      const allocations = page.slice(0, q.limit);
      return c.json({
        allocations: allocations.map((a) => allocationJson(a)),
        next_cursor: page.length > q.limit ? allocations[allocations.length - 1].id : null,
      });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/allocations/{id}",
      tags: TAGS,
      summary: "Get an allocation",
      request: { params: allocParams },
      responses: { 200: json("The allocation", allocationSchema), ...errorResponses(401, 404) },
    }),
    async (c) => c.json(allocationJson(await workers.allocation(params(c)))),
  );

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/allocations/{id}/start",
      tags: TAGS,
      summary: "A worker starts an allocation (409: not its to run any more)",
      request: { params: allocParams, body: jsonBody(startSchema) },
      responses: {
        200: json("The allocation, running, with its lease", allocationSchema),
        ...errorResponses(400, 401, 403, 409, 503),
      },
    }),
    async (c) => {
      const body = parse(startSchema, await readJson(c), "start");
      const a = await workers.start(params(c), body.worker_id);
      return c.json(allocationJson(a, await deps.jobPayload(a.job_id)));
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/allocations/{id}/finish",
      tags: TAGS,
      summary: "A worker reports an allocation's outcome (409: it was lost meanwhile)",
      request: { params: allocParams, body: jsonBody(finishSchema) },
      responses: {
        200: json("Recorded", z.object({ recorded: z.string() })),
        ...errorResponses(400, 401, 403, 409, 503),
      },
    }),
    async (c) => {
      const { worker_id, ...outcome } = parse(finishSchema, await readJson(c), "finish");
      await workers.finish(params(c), worker_id, outcome);
      return c.json({ recorded: params(c) });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/jobs/{id}/placement",
      tags: ["jobs"],
      summary: "A worker job's last placement decision and its explanation",
      request: { params: z.object({ id: z.string() }) },
      responses: {
        200: json("Its newest allocation", allocationSchema),
        ...errorResponses(401, 404),
      },
    }),
    async (c) => {
      const a = await workers.latestPlacement(params(c));
      if (a === null) throw new NotFoundError(`job ${params(c)} has no allocation yet`);
      return c.json(allocationJson(a));
    },
  );

  return app;
}
