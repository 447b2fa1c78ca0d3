/**
 * The node's libSQL schema, as drizzle tables. `migrations.ts` holds the SQL that creates it;
 * a test checks that both describe the same columns.
 *
 * Times are integer milliseconds since the Unix epoch (`*_at`); JSON values are text.
 */
import {
  blob,
  index,
  integer,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

/** Small key/value facts of the node: the applied log index, the node's identity. */
export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** The command log: one entry per group commit, `data` is the JSON array of its commands. */
export const logEntries = sqliteTable("log_entries", {
  idx: integer("idx").primaryKey(),
  term: integer("term").notNull(),
  data: text("data").notNull(),
});

/** Jobs: the schedule, the webhook, and the scheduling state the state machine keeps. */
export const jobs = sqliteTable("jobs", {
  id: text("id").primaryKey(),
  name: text("name"),
  type: text("type").notNull(),
  type_alias: text("type_alias").notNull(),
  run_at: integer("run_at"),
  cron_expression: text("cron_expression"),
  interval_ms: integer("interval_ms"),
  timezone: text("timezone").notNull(),
  starts_at: integer("starts_at"),
  ends_at: integer("ends_at"),
  webhook_url: text("webhook_url"),
  method: text("method").notNull(),
  headers: text("headers").notNull(),
  payload: text("payload").notNull(),
  secret: text("secret"),
  overlap_policy: text("overlap_policy").notNull(),
  catchup_window_ms: integer("catchup_window_ms").notNull(),
  max_attempts: integer("max_attempts").notNull(),
  timeout_ms: integer("timeout_ms").notNull(),
  idempotency_key: text("idempotency_key"),
  status: text("status").notNull(),
  next_fire_at: integer("next_fire_at"),
  created_at: integer("created_at").notNull(),
  updated_at: integer("updated_at").notNull(),
  cancel_reason: text("cancel_reason"),
  last_run_at: integer("last_run_at"),
  last_status: text("last_status"),
  attempt_count: integer("attempt_count").notNull(),
  run_count: integer("run_count").notNull(),
  /** JSON of the job's worker executor (`{"type": "worker", ...}`); null: a webhook job. */
  executor: text("executor"),
}, (t) => [
  uniqueIndex("jobs_idempotency_key").on(t.idempotency_key),
  index("jobs_status").on(t.status, t.id),
]);

/** Executions: one row per occurrence (its attempts update the row), plus skipped and missed. */
export const executions = sqliteTable("executions", {
  id: text("id").primaryKey(),
  job_id: text("job_id").notNull(),
  scheduled_at: integer("scheduled_at").notNull(),
  trigger: text("trigger").notNull(),
  status: text("status").notNull(),
  attempt: integer("attempt").notNull(),
  started_at: integer("started_at").notNull(),
  finished_at: integer("finished_at"),
  status_code: integer("status_code"),
  error_class: text("error_class"),
  error: text("error"),
  duration_ms: integer("duration_ms"),
  next_attempt_at: integer("next_attempt_at"),
  redeliveries: integer("redeliveries").notNull(),
  missed_count: integer("missed_count").notNull(),
  response_excerpt: text("response_excerpt"),
  /** The worker a worker job's attempt last ran on; null for a webhook job. */
  worker_id: text("worker_id"),
}, (t) => [
  index("executions_job").on(t.job_id, t.scheduled_at),
  index("executions_finished").on(t.finished_at),
]);

/** The cluster's address book, replicated through the log: Raft node id → name and URL. */
export const members = sqliteTable("members", {
  id: integer("id").primaryKey(),
  name: text("name").notNull(),
  address: text("address").notNull(),
});

/** Registered workers (the workers sub-machine, `src/workers/`); JSON text for labels, taints, capacity. */
export const workers = sqliteTable("workers", {
  id: text("id").primaryKey(),
  pool: text("pool").notNull(),
  region: text("region").notNull(),
  zone: text("zone").notNull(),
  labels: text("labels").notNull(),
  taints: text("taints").notNull(),
  capacity: text("capacity").notNull(),
  status: text("status").notNull(),
  status_reason: text("status_reason"),
  registered_at: integer("registered_at").notNull(),
  updated_at: integer("updated_at").notNull(),
});

/** Allocations: occurrences of worker jobs placed on workers; `outcome` is JSON once ended. */
export const allocations = sqliteTable("allocations", {
  id: text("id").primaryKey(),
  job_id: text("job_id").notNull(),
  execution_id: text("execution_id").notNull(),
  attempt: integer("attempt").notNull(),
  scheduled_at: integer("scheduled_at").notNull(),
  worker_id: text("worker_id"),
  status: text("status").notNull(),
  resources: text("resources").notNull(),
  job_labels: text("job_labels").notNull(),
  lease_ms: integer("lease_ms").notNull(),
  lease_expires_at: integer("lease_expires_at"),
  idempotency_key: text("idempotency_key").notNull(),
  score: real("score"),
  explanation: text("explanation"),
  created_at: integer("created_at").notNull(),
  placed_at: integer("placed_at"),
  started_at: integer("started_at"),
  finished_at: integer("finished_at"),
  outcome: text("outcome"),
}, (t) => [
  index("allocations_worker").on(t.worker_id, t.status),
  index("allocations_job").on(t.job_id, t.id),
  index("allocations_status").on(t.status, t.id),
]);

/** Raft log entries since the latest snapshot (`raft.db`); `crc` is the CRC-32 of `data`. */
export const raftEntries = sqliteTable("raft_entries", {
  idx: integer("idx").primaryKey(),
  term: integer("term").notNull(),
  kind: text("kind").notNull(),
  data: blob("data").notNull(),
  crc: integer("crc").notNull(),
});

/** Raft hard state (`hard_state`: JSON term, vote, commit). */
export const raftState = sqliteTable("raft_state", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** The latest snapshot: last included index and term, configuration, state machine bytes. */
export const raftSnapshot = sqliteTable("raft_snapshot", {
  id: integer("id").primaryKey(),
  idx: integer("idx").notNull(),
  term: integer("term").notNull(),
  conf: text("conf").notNull(),
  data: blob("data").notNull(),
  crc: integer("crc").notNull(),
});
