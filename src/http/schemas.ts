/**
 * Wire shapes of the API, one zod schema each. Requests are validated here into the scheduler's
 * `JobInput`; responses are built by the `*Json` functions, typed by the response schemas, which
 * (with the request schemas) make the OpenAPI document (`src/http/openapi.ts`). A schema with a
 * `meta` id is a named component of that document.
 */
import { z } from "zod";
import { workerExecutorSchema } from "../scheduler/executor.ts";
import { isReservedHeader, webhookUrlProblem } from "../scheduler/webhook/target_policy.ts";
import {
  type ExecutionRecord,
  type ExecutionStatus,
  JOB_STATUSES,
  type JobRecord,
  type JobStatus,
  type JobType,
} from "../scheduler/model.ts";
import { validateCron, validateTimezone } from "../scheduler/recurrence.ts";
import type { JobInput } from "../scheduler/service.ts";

const TYPE_ALIASES: Record<string, JobType> = {
  unico: "once",
  once: "once",
  recurrente: "cron",
  cron: "cron",
  interval: "interval",
};

/** Own keys only: "toString" or "__proto__" are not job types. */
const isTypeName = (t: string) => Object.hasOwn(TYPE_ALIASES, t);
const TYPE_HINT = "use one of once, cron, interval (or the seed's unico, recurrente)";

const isoTime = z.string().meta({ format: "date-time", description: "ISO 8601 with a zone" })
  .refine(
    (text) =>
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(text) &&
      !Number.isNaN(Date.parse(text)),
    { message: "use an ISO 8601 time with a zone, e.g. 2026-12-25T10:00:00Z" },
  ).transform((text) => Date.parse(text));

/** Longest idempotency key, in the body or the `Idempotency-Key` header. */
export const IDEMPOTENCY_KEY_CHARS_MAX = 256;

/**
 * A header value `Headers.set` accepts at delivery: no CR, LF or NUL, nothing above U+00FF
 * (RFC 9110 field-value: visible ASCII, space, tab and obs-text).
 */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const seconds = (max_s: number) => z.number().positive().max(max_s);

/** Body of `POST /jobs` (and each item of `POST /jobs/batch`). */
export const jobCreateSchema = z.object({
  type: z.string({ error: `"type" is required: ${TYPE_HINT}` })
    .meta({ description: "once, cron or interval (or the seed's unico, recurrente)" })
    .refine(isTypeName, { message: TYPE_HINT }),
  name: z.string().max(200).optional(),
  timestamp: isoTime.optional(),
  run_at: isoTime.optional(),
  cron_expression: z.string().max(200).optional(),
  interval_seconds: z.number().min(1).max(366 * 86_400).optional(),
  timezone: z.string().max(64).optional(),
  starts_at: isoTime.optional(),
  last_date: isoTime.optional(),
  ends_at: isoTime.optional(),
  webhook_url: z.string().max(2048).optional(),
  method: z.enum(["POST", "PUT", "PATCH", "GET", "DELETE"]).optional(),
  headers: z.record(
    z.string().max(256),
    z.string().max(8192).regex(HEADER_VALUE, {
      message: "use visible ASCII, spaces and tabs (no line breaks) in a header value",
    }),
  ).optional(),
  payload: z.unknown().optional(),
  secret: z.string().min(16, "use a secret of at least 16 characters").max(512).optional(),
  overlap_policy: z.enum(["allow", "forbid", "replace"]).optional(),
  catchup_window_seconds: z.number().min(0).max(366 * 86_400).optional(),
  max_attempts: z.number().int().min(1).max(50).optional(),
  timeout_seconds: seconds(3_600).optional(),
  idempotency_key: z.string().min(1).max(IDEMPOTENCY_KEY_CHARS_MAX).optional(),
  executor: workerExecutorSchema.optional().meta({
    description: "Run each occurrence on registered workers instead of calling a webhook",
  }),
}).strict().superRefine((body, ctx) => {
  const type = isTypeName(body.type) ? TYPE_ALIASES[body.type] : undefined;
  const issue = (path: string, message: string) =>
    ctx.addIssue({ code: "custom", path: [path], message });
  if (type === "once") {
    if (body.timestamp === undefined && body.run_at === undefined) {
      issue("timestamp", `a ${body.type} job needs "timestamp" (ISO 8601)`);
    }
    if (body.cron_expression !== undefined) {
      issue("cron_expression", `a ${body.type} job has no cron_expression; use type cron`);
    }
  }
  if (type === "cron") {
    if (body.cron_expression === undefined) {
      issue("cron_expression", `a ${body.type} job needs "cron_expression"`);
    } else {
      const problem = validateCron(body.cron_expression);
      if (problem !== null) issue("cron_expression", problem);
    }
  }
  if (type === "interval" && body.interval_seconds === undefined) {
    issue("interval_seconds", `an interval job needs "interval_seconds"`);
  }
  if (
    type !== undefined && type !== "once" &&
    (body.timestamp !== undefined || body.run_at !== undefined)
  ) {
    issue("timestamp", `only once jobs take a timestamp; use starts_at for ${body.type}`);
  }
  if (body.timezone !== undefined) {
    const problem = validateTimezone(body.timezone);
    if (problem !== null) issue("timezone", problem);
  }
  if (body.webhook_url !== undefined) {
    const problem = webhookUrlProblem(body.webhook_url);
    if (problem !== null) issue("webhook_url", `${problem}; use an http(s) URL`);
  }
  for (const name of Object.keys(body.headers ?? {})) {
    if (isReservedHeader(name) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      issue("headers", `header "${name}" cannot be set by a job`);
    }
  }
  if (body.executor !== undefined && body.webhook_url !== undefined) {
    issue("webhook_url", "a worker job runs on workers and has no webhook_url: drop one of them");
  }
  const ends = body.last_date ?? body.ends_at;
  if (ends !== undefined && body.starts_at !== undefined && ends < body.starts_at) {
    issue("last_date", "last_date is before starts_at");
  }
}).meta({ id: "JobCreate" });

export type JobCreateBody = z.output<typeof jobCreateSchema>;

/** The validated body as the scheduler's input; `idempotency_key` from the header wins. */
export function toJobInput(body: JobCreateBody, header_key: string | null): JobInput {
  return {
    name: body.name ?? null,
    type: TYPE_ALIASES[body.type],
    type_alias: body.type,
    run_at: body.timestamp ?? body.run_at ?? null,
    cron_expression: body.cron_expression?.trim() ?? null,
    interval_ms: body.interval_seconds === undefined
      ? null
      : Math.round(body.interval_seconds * 1_000),
    timezone: body.timezone ?? "UTC",
    starts_at: body.starts_at ?? null,
    ends_at: body.last_date ?? body.ends_at ?? null,
    webhook_url: body.webhook_url ?? null,
    method: body.method ?? "POST",
    headers: body.headers ?? {},
    payload: body.payload ?? null,
    executor: body.executor ?? null,
    secret: body.secret ?? null,
    overlap_policy: body.overlap_policy ?? "allow",
    catchup_window_ms: body.catchup_window_seconds === undefined
      ? null
      : Math.round(body.catchup_window_seconds * 1_000),
    max_attempts: body.max_attempts ?? null,
    timeout_ms: body.timeout_seconds === undefined
      ? null
      : Math.round(body.timeout_seconds * 1_000),
    idempotency_key: header_key ?? body.idempotency_key ?? null,
  };
}

/** Body of `POST /jobs/batch`. */
export const batchSchema = z.object({ jobs: z.array(z.unknown()).min(1) }).strict();

/** Body of `POST /jobs/{id}/cancel` (optional). */
export const cancelSchema = z.object({ reason: z.string().max(1_000).optional() }).strict();

/** Query of `GET /jobs`. */
export const listQuerySchema = z.object({
  status: z.enum(JOB_STATUSES as [string, ...string[]]).optional(),
  type: z.string().refine(isTypeName, { message: "use once, cron or interval" })
    .transform((t) => TYPE_ALIASES[t]).optional(),
  q: z.string().max(200).optional(),
  cursor: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
  consistency: z.enum(["local", "linearizable"]).optional(),
}).strict();

/** Query of `GET /jobs/{id}/executions`. */
export const executionsQuerySchema = z.object({
  consistency: z.enum(["local", "linearizable"]).optional(),
  cursor: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
}).strict();

/** Body of `POST /join`. */
export const joinSchema = z.object({
  node_id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "use 1-64 letters, digits, . _ or -"),
  address: z.url({ protocol: /^https?$/, error: "use the node's http(s) base URL" }),
}).strict();

/** Body of `POST /cluster/transfer-leader`. */
export const transferSchema = z.object({ to: z.string().min(1).max(64).optional() }).strict();

const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString();

const time = z.iso.datetime();
const EXECUTION_STATUSES = [
  "in_progress",
  "retrying",
  "completed",
  "failed",
  "skipped",
  "missed",
  "cancelled",
  "replaced",
] as const satisfies readonly ExecutionStatus[];

/** Every error answer: `{error, code, details}`. */
export const errorSchema = z.object({
  error: z.string().meta({ description: "What went wrong and what to fix" }),
  code: z.string().meta({
    description: "invalid_request, unauthorized, forbidden, not_found, conflict, …",
  }),
  details: z.union([
    z.array(z.object({ path: z.string(), message: z.string() })),
    z.object({ leader: z.string().nullable(), leader_address: z.string().nullable() }),
  ]).optional().meta({
    description: "400: one entry per bad field; 503 not_leader: the leader, when known",
  }),
}).meta({ id: "Error" });

/** A job as the API shows it. */
export const jobSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  type: z.string().meta({ description: "The type name as sent (once, cron, interval, …)" }),
  kind: z.enum(["once", "cron", "interval"]),
  timestamp: time.nullable(),
  cron_expression: z.string().nullable(),
  interval_seconds: z.number().nullable(),
  timezone: z.string(),
  starts_at: time.nullable(),
  last_date: time.nullable(),
  webhook_url: z.string().nullable(),
  method: z.enum(["POST", "PUT", "PATCH", "GET", "DELETE"]),
  headers: z.record(z.string(), z.string()),
  payload: z.unknown(),
  executor: workerExecutorSchema.nullable().meta({ description: "Null: a webhook job" }),
  has_secret: z.boolean(),
  overlap_policy: z.enum(["allow", "forbid", "replace"]),
  catchup_window_seconds: z.number(),
  max_attempts: z.number().int(),
  timeout_seconds: z.number(),
  idempotency_key: z.string().nullable(),
  status: z.enum(JOB_STATUSES as [JobStatus, ...JobStatus[]]),
  next_run_at: time.nullable(),
  created_at: time,
  updated_at: time,
  cancel_reason: z.string().nullable(),
  last_run_at: time.nullable(),
  last_status: z.enum(EXECUTION_STATUSES).nullable(),
  attempt_count: z.number().int(),
  run_count: z.number().int(),
}).strict().meta({ id: "Job" });

/** An execution as the API shows it. */
export const executionSchema = z.object({
  id: z.string(),
  job_id: z.string(),
  scheduled_at: time,
  trigger: z.enum(["schedule", "catch_up", "manual"]),
  status: z.enum(EXECUTION_STATUSES),
  attempt: z.number().int(),
  started_at: time,
  finished_at: time.nullable(),
  status_code: z.number().int().nullable(),
  error_class: z.string().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number().nullable(),
  next_attempt_at: time.nullable(),
  redeliveries: z.number().int(),
  missed_count: z.number().int(),
  idempotency_key: z.string(),
  response_excerpt: z.string().nullable(),
  worker_id: z.string().nullable().meta({ description: "The worker a worker job ran on" }),
}).strict().meta({ id: "Execution" });

/** `GET /jobs`. */
export const jobListSchema = z.object({
  jobs: z.array(jobSchema),
  next_cursor: z.string().nullable(),
}).strict().meta({ id: "JobList" });

/** `POST /jobs/batch`. */
export const batchResultSchema = z.object({
  created: z.number().int(),
  existing: z.number().int(),
  jobs: z.array(jobSchema.extend({ created: z.boolean() })),
}).strict().meta({ id: "BatchResult" });

/** `GET /jobs/{id}/status`. */
export const jobStatusSchema = z.object({
  job_id: z.string(),
  status: jobSchema.shape.status,
  attempt_count: z.number().int(),
  run_count: z.number().int(),
  last_run_at: time.nullable(),
  last_status: jobSchema.shape.last_status,
  next_run_at: time.nullable(),
  cancel_reason: z.string().nullable(),
  current_execution: executionSchema.nullable(),
  last_execution: executionSchema.nullable(),
}).strict().meta({ id: "JobStatus" });

/** `GET /jobs/{id}/executions`. */
export const executionListSchema = z.object({
  job_id: z.string(),
  executions: z.array(executionSchema),
  next_cursor: z.string().nullable(),
}).strict().meta({ id: "ExecutionList" });

/** `DELETE /jobs/{id}`. */
export const deletedSchema = z.object({ id: z.string(), deleted: z.literal(true) }).strict();

/** `POST /jobs/{id}/trigger`. */
export const triggeredSchema = z.object({ job_id: z.string(), execution_id: z.string() })
  .strict();

/** `GET /ready`. */
export const readySchema = z.object({
  ready: z.boolean(),
  reason: z.string().nullable().meta({
    description: "Why not ready: a loop stopped, no leader is known, or the log is being applied",
  }),
  leader: z.string().nullable(),
  applied_index: z.number().int(),
  commit_index: z.number().int().meta({ description: "The commit index this node knows" }),
}).meta({ id: "Ready" });

/** `GET /ready` as the node builds it and its readers see it. */
export type ReadyView = z.infer<typeof readySchema>;

/** `GET /health`. */

export const healthSchema = z.object({
  status: z.enum(["ok", "degraded", "failed"]).meta({
    description:
      "degraded: more than HEALTH_FAILURE_THRESHOLD of recent webhook attempts failed; failed (503): a loop the node needs stopped, and the process exits within a second",
  }),
  failure: z.object({ loop: z.string(), error: z.string() }).optional().meta({
    description:
      "With status failed: which loop stopped (log_flush, raft_loop, apply, timer, dispatcher) and why",
  }),
  node_id: z.string(),
  mode: z.enum(["single", "cluster"]),
  role: z.string().meta({ description: "leader, follower, candidate, …" }),
  leader: z.string().nullable(),
  firing: z.boolean(),
  uptime_seconds: z.number(),
  applied_index: z.number().int(),
  jobs: z.object({
    total: z.number().int(),
    limit: z.number().int(),
    by_status: z.record(z.string(), z.number().int()),
  }),
  queue: z.object({
    timer_entries: z.number().int(),
    inflight_deliveries: z.number().int(),
    max_inflight_deliveries: z.number().int(),
    proposals_queued: z.number().int(),
  }),
  deliveries: z.object({
    attempts: z.number().int().meta({ description: "Recent webhook attempts (at most 1,000)" }),
    failure_ratio: z.number(),
    failure_threshold: z.number(),
  }),
  memory: z.object({
    rss_bytes: z.number(),
    limit_bytes: z.number(),
    utilization_percent: z.number(),
  }),
}).meta({ id: "Health" });

/**
 * `GET /health` as the node builds it (`NodeView.health()`) and every reader sees it: the
 * console, the CLI and the tests take this type instead of declaring their own.
 */
export type HealthView = z.infer<typeof healthSchema>;

/** `GET /debug/cluster`. */
export const clusterViewSchema = z.object({
  node_id: z.string(),
  role: z.string(),
  leader: z.string().nullable(),
  term: z.number().int(),
  commit_index: z.number().int(),
  applied_index: z.number().int(),
  last_index: z.number().int().optional(),
  members: z.array(z.object({
    id: z.string(),
    address: z.string(),
    role: z.enum(["voter", "learner"]),
    match_index: z.number().int().nullable(),
    lag: z.number().int().nullable(),
  })),
  transport: z.record(z.string(), z.unknown()).optional().meta({
    description: "Per-peer transport statistics (cluster mode)",
  }),
}).meta({ id: "ClusterView" });

/**
 * `GET /debug/cluster` as the node builds it (`NodeView.cluster()`) and every reader sees it:
 * the console, the CLI and the tests take this type instead of declaring their own.
 */
export type ClusterView = z.infer<typeof clusterViewSchema>;

/** A job as the API shows it (the secret is never shown). */
export function jobJson(job: JobRecord): z.output<typeof jobSchema> {
  return {
    id: job.id,
    name: job.name,
    type: job.type_alias,
    kind: job.type,
    timestamp: iso(job.run_at),
    cron_expression: job.cron_expression,
    interval_seconds: job.interval_ms === null ? null : job.interval_ms / 1_000,
    timezone: job.timezone,
    starts_at: iso(job.starts_at),
    last_date: iso(job.ends_at),
    webhook_url: job.webhook_url,
    method: job.method,
    headers: job.headers,
    payload: job.payload,
    executor: job.executor,
    has_secret: job.secret !== null,
    overlap_policy: job.overlap_policy,
    catchup_window_seconds: job.catchup_window_ms / 1_000,
    max_attempts: job.max_attempts,
    timeout_seconds: job.timeout_ms / 1_000,
    idempotency_key: job.idempotency_key,
    status: job.status,
    next_run_at: iso(job.next_fire_at),
    created_at: new Date(job.created_at).toISOString(),
    updated_at: new Date(job.updated_at).toISOString(),
    cancel_reason: job.cancel_reason,
    last_run_at: iso(job.last_run_at),
    last_status: job.last_status,
    attempt_count: job.attempt_count,
    run_count: job.run_count,
  };
}

/** An execution as the API shows it. */
export function executionJson(e: ExecutionRecord): z.output<typeof executionSchema> {
  return {
    id: e.id,
    job_id: e.job_id,
    scheduled_at: new Date(e.scheduled_at).toISOString(),
    trigger: e.trigger,
    status: e.status,
    attempt: e.attempt,
    started_at: new Date(e.started_at).toISOString(),
    finished_at: iso(e.finished_at),
    status_code: e.status_code,
    error_class: e.error_class,
    error: e.error,
    duration_ms: e.duration_ms,
    next_attempt_at: iso(e.next_attempt_at),
    redeliveries: e.redeliveries,
    missed_count: e.missed_count,
    idempotency_key: `${e.job_id}:${e.scheduled_at}`,
    response_excerpt: e.response_excerpt,
    worker_id: e.worker_id,
  };
}
