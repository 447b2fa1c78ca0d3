/**
 * The SQL of the jobs sub-machine, which owns the `jobs` and `executions` tables (their schema
 * and migrations are in `src/db/`): every statement the state machine (`src/scheduler/state.ts`)
 * writes to them, and the queries it rebuilds its in-memory index from.
 *
 * The statement builders only build: they return the statements of one change, and the log runs
 * them in the transaction of the whole group of commands. Their arguments are what apply has
 * already checked against the index, so none can fail on a constraint (see state.ts).
 *
 * The load queries read back what the builders wrote and throw `CorruptDataError`
 * (`src/db/corrupt.ts`) for a row they never could have written.
 *
 * @module
 */
import type { InStatement } from "@libsql/client/node";
import { CorruptDataError, FIX_SINGLE_NODE } from "../db/corrupt.ts";
import type { Database } from "../db/open.ts";
import { fixedChunks } from "../db/statement_cache.ts";
import {
  type ExecutionRecord,
  type ExecutionStatus,
  JOB_STATUSES,
  type JobRecord,
  type JobStatus,
  type JobType,
  type OverlapPolicy,
  type Trigger,
} from "./model.ts";

/** How to recover from a corrupt `node.db`, alone or in a cluster. */
export const FIX_STATE =
  `${FIX_SINGLE_NODE}; in a cluster, move the data directory aside and rejoin to copy the state from a peer`;

// ------------------------------------------------------------------------------------ jobs

/** Column order of `jobs`, shared by inserts and row decoding. */
export const JOB_COLUMNS = [
  "id",
  "name",
  "type",
  "type_alias",
  "run_at",
  "cron_expression",
  "interval_ms",
  "timezone",
  "starts_at",
  "ends_at",
  "webhook_url",
  "method",
  "headers",
  "payload",
  "secret",
  "overlap_policy",
  "catchup_window_ms",
  "max_attempts",
  "timeout_ms",
  "idempotency_key",
  "status",
  "next_fire_at",
  "created_at",
  "updated_at",
  "cancel_reason",
  "last_run_at",
  "last_status",
  "attempt_count",
  "run_count",
  "executor",
] as const;

/** Rows per multi-row insert statement. */
const JOB_INSERT_ROWS_MAX = 50;

function jobArgs(job: JobRecord): (string | number | null)[] {
  return JOB_COLUMNS.map((column) => {
    const value = job[column];
    if (column === "headers" || column === "payload") return JSON.stringify(value ?? null);
    // Entries written before jobs had an executor carry none: a webhook job.
    if (column === "executor") return value == null ? null : JSON.stringify(value);
    return value as string | number | null;
  });
}

/** Inserts new jobs, {@link JOB_INSERT_ROWS_MAX} rows a statement. */
export function insertJobs(records: readonly JobRecord[]): InStatement[] {
  const statements: InStatement[] = [];
  const placeholders = `(${JOB_COLUMNS.map(() => "?").join(",")})`;
  // Chunks of a few fixed sizes, so the statement texts stay a fixed set (prepared once).
  for (const chunk of fixedChunks(records, [JOB_INSERT_ROWS_MAX, 8, 1])) {
    statements.push({
      sql: `INSERT INTO jobs (${JOB_COLUMNS.join(",")}) VALUES ${
        chunk.map(() => placeholders).join(",")
      }`,
      args: chunk.flatMap(jobArgs),
    });
  }
  return statements;
}

/** Deletes a job with its whole history. */
export function deleteJob(job_id: string): InStatement[] {
  return [
    { sql: "DELETE FROM executions WHERE job_id = ?", args: [job_id] },
    { sql: "DELETE FROM jobs WHERE id = ?", args: [job_id] },
  ];
}

/** Marks a job cancelled with the reason given; it has no next fire time any more. */
export function cancelJob(job_id: string, reason: string, at: number): InStatement {
  return {
    sql:
      "UPDATE jobs SET status = 'cancelled', next_fire_at = NULL, cancel_reason = ?, updated_at = ? WHERE id = ?",
    args: [reason, at, job_id],
  };
}

/** Marks a job paused; it has no next fire time until it resumes. */
export function pauseJob(job_id: string, at: number): InStatement {
  return {
    sql: "UPDATE jobs SET status = 'paused', next_fire_at = NULL, updated_at = ? WHERE id = ?",
    args: [at, job_id],
  };
}

/** Sets a job's status and next fire time (a resume). */
export function scheduleJob(
  job_id: string,
  status: JobStatus,
  next_fire_at: number | null,
  at: number,
): InStatement {
  return {
    sql: "UPDATE jobs SET status = ?, next_fire_at = ?, updated_at = ? WHERE id = ?",
    args: [status, next_fire_at, at, job_id],
  };
}

/** What a `job.advance` changes in the job's row. */
export interface JobAdvance {
  job_id: string;
  status: JobStatus;
  next_fire_at: number | null;
  at: number;
  /** An execution started: the run and attempt counts go up and `last_run_at` is `at`. */
  started: boolean;
  /** Without a start, the occurrence's outcome for `last_status`; null when one started. */
  last_status: "skipped" | "missed" | null;
}

/** Moves a job past an occurrence (the fenced `job.advance`). */
export function advanceJob(a: JobAdvance): InStatement {
  const runIncrement = a.started ? 1 : 0;
  return {
    sql:
      `UPDATE jobs SET status = ?, next_fire_at = ?, updated_at = ?, run_count = run_count + ?, attempt_count = attempt_count + ?, last_run_at = CASE WHEN ? = 1 THEN ? ELSE last_run_at END${
        a.last_status === null ? "" : ", last_status = ?"
      } WHERE id = ?`,
    args: [
      a.status,
      a.next_fire_at,
      a.at,
      runIncrement,
      runIncrement,
      runIncrement,
      a.at,
      ...(a.last_status === null ? [] : [a.last_status]),
      a.job_id,
    ],
  };
}

/** Counts a manual run of a job at `at` and sets its status. */
export function triggerJob(job_id: string, status: JobStatus, at: number): InStatement {
  return {
    sql:
      "UPDATE jobs SET status = ?, updated_at = ?, run_count = run_count + 1, attempt_count = attempt_count + 1, last_run_at = ? WHERE id = ?",
    args: [status, at, at, job_id],
  };
}

/** Counts one more attempt of a job (a retry or a redelivery starts). */
export function countJobAttempt(job_id: string, at: number): InStatement {
  return {
    sql: "UPDATE jobs SET attempt_count = attempt_count + 1, updated_at = ? WHERE id = ?",
    args: [at, job_id],
  };
}

/** Sets a job's status and the status of its last execution. */
export function settleJob(
  job_id: string,
  status: JobStatus,
  last_status: ExecutionStatus,
  at: number,
): InStatement {
  return {
    sql: "UPDATE jobs SET status = ?, last_status = ?, updated_at = ? WHERE id = ?",
    args: [status, last_status, at, job_id],
  };
}

// ------------------------------------------------------------------------------------ executions

/** Fields of a new execution row; the rest start empty. */
export type NewExecution =
  & Pick<
    ExecutionRecord,
    "id" | "job_id" | "scheduled_at" | "trigger" | "status" | "attempt" | "started_at"
  >
  & Partial<Pick<ExecutionRecord, "finished_at" | "error" | "missed_count">>;

/**
 * Inserts an execution. OR REPLACE: a new execution replaces a finished one with its id (only a
 * forged entry can reuse one, and replacing it keeps the index and the table equal).
 */
export function insertExecution(e: NewExecution): InStatement {
  return {
    sql:
      "INSERT OR REPLACE INTO executions (id, job_id, scheduled_at, trigger, status, attempt, started_at, finished_at, status_code, error_class, error, duration_ms, next_attempt_at, redeliveries, missed_count, response_excerpt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, NULL, NULL, 0, ?, NULL)",
    args: [
      e.id,
      e.job_id,
      e.scheduled_at,
      e.trigger,
      e.status,
      e.attempt,
      e.started_at,
      e.finished_at ?? null,
      e.error ?? null,
      e.missed_count ?? 0,
    ],
  };
}

/** Starts attempt `attempt` of an execution; a redelivery is counted as one. */
export function startAttempt(
  execution_id: string,
  attempt: number,
  redelivery: boolean,
): InStatement {
  return {
    sql:
      "UPDATE executions SET status = 'in_progress', attempt = ?, next_attempt_at = NULL, redeliveries = redeliveries + ? WHERE id = ?",
    args: [attempt, redelivery ? 1 : 0, execution_id],
  };
}

/** What an attempt's end writes to its execution. */
export interface AttemptEnd {
  execution_id: string;
  status: ExecutionStatus;
  /** Null while the execution waits to retry. */
  finished_at: number | null;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
  duration_ms: number;
  response_excerpt: string | null;
  worker_id: string | null;
  /** When the next attempt is due; null unless retrying. */
  next_attempt_at: number | null;
}

/** Records the end of an attempt (the outcome of `exec.finish`). */
export function endAttempt(e: AttemptEnd): InStatement {
  return {
    sql:
      "UPDATE executions SET status = ?, finished_at = ?, status_code = ?, error_class = ?, error = ?, duration_ms = ?, response_excerpt = ?, worker_id = ?, next_attempt_at = ? WHERE id = ?",
    args: [
      e.status,
      e.finished_at,
      e.status_code,
      e.error_class,
      e.error,
      e.duration_ms,
      e.response_excerpt,
      e.worker_id,
      e.next_attempt_at,
      e.execution_id,
    ],
  };
}

/** Ends active executions that were stopped (their job cancelled, or replaced by a newer run). */
export function stopExecutions(
  ids: readonly string[],
  status: "cancelled" | "replaced",
  at: number,
  error: string,
): InStatement[] {
  return ids.map((id) => ({
    sql:
      "UPDATE executions SET status = ?, finished_at = ?, error = ?, next_attempt_at = NULL WHERE id = ?",
    args: [status, at, error, id],
  }));
}

/**
 * Deletes finished executions older than `before`, and beyond the newest `per_job_max` of each
 * job (by scheduled time); active executions stay.
 */
export function pruneExecutions(before: number, per_job_max: number): InStatement[] {
  return [
    {
      sql: "DELETE FROM executions WHERE finished_at IS NOT NULL AND finished_at < ?",
      args: [before],
    },
    {
      sql:
        "DELETE FROM executions WHERE id IN (SELECT id FROM (SELECT id, finished_at, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY scheduled_at DESC, id DESC) AS n FROM executions) WHERE n > ? AND finished_at IS NOT NULL)",
      args: [per_job_max],
    },
  ];
}

// ------------------------------------------------------------------------------------ load

/** Rows read per query when the index is rebuilt. */
const LOAD_PAGE_ROWS = 10_000;

const INTERNED = new Map<string, string>(
  ["once", "cron", "interval", "allow", "forbid", "replace", ...JOB_STATUSES].map((s) => [s, s]),
);

/**
 * The shared instance of a known enum string of the `column` of job `id`; anything else is a
 * row apply never wrote.
 */
function intern<T extends string>(value: unknown, column: string, id: string): T {
  const known = typeof value === "string" ? INTERNED.get(value) : undefined;
  if (known === undefined) {
    throw new CorruptDataError(
      { file: "node.db", what: `job ${id}` },
      `${column} is ${JSON.stringify(value)}`,
      FIX_STATE,
    );
  }
  return known as T;
}

/**
 * Refuses a `meta.applied_index` that is not a decimal index. The logs write it with each
 * group (src/log/, src/cluster/); the state file is only trusted when it is well-formed.
 */
export async function checkAppliedIndex(db: Database): Promise<void> {
  const applied = await db.client.execute("SELECT value FROM meta WHERE key = 'applied_index'");
  if (applied.rows.length > 0 && !/^(0|[1-9][0-9]{0,15})$/.test(String(applied.rows[0].value))) {
    throw new CorruptDataError(
      { file: "node.db", what: "the applied index (meta.applied_index)" },
      `it is ${JSON.stringify(applied.rows[0].value)}`,
      FIX_STATE,
    );
  }
}

/** The scheduling columns of one `jobs` row, its enum strings interned. */
export interface JobIndexRow {
  id: string;
  type: JobType;
  status: JobStatus;
  next_fire_at: number | null;
  overlap_policy: OverlapPolicy;
  idempotency_key: string | null;
}

/**
 * Every job's scheduling columns, in pages of {@link LOAD_PAGE_ROWS} by id. Paged, and the
 * repeated names interned: one query over a million rows would hold a million row objects at
 * once, and every row's "pending" would be a string of its own.
 */
export async function* jobIndexPages(db: Database): AsyncGenerator<JobIndexRow[]> {
  let after = "";
  for (;;) {
    const rows = await db.client.execute({
      sql:
        "SELECT id, type, status, next_fire_at, overlap_policy, idempotency_key FROM jobs WHERE id > ? ORDER BY id LIMIT ?",
      args: [after, LOAD_PAGE_ROWS],
    });
    yield rows.rows.map((row) => {
      const id = row.id as string;
      return {
        id,
        type: intern<JobType>(row.type, "type", id),
        status: intern<JobStatus>(row.status, "status", id),
        next_fire_at: row.next_fire_at === null ? null : Number(row.next_fire_at),
        overlap_policy: intern<OverlapPolicy>(row.overlap_policy, "overlap_policy", id),
        idempotency_key: row.idempotency_key as string | null,
      };
    });
    if (rows.rows.length < LOAD_PAGE_ROWS) return;
    after = rows.rows[rows.rows.length - 1].id as string;
  }
}

/** One execution that is in progress or waiting for a retry. */
export interface ActiveExecutionRow {
  id: string;
  job_id: string;
  status: "in_progress" | "retrying";
  attempt: number;
  scheduled_at: number;
  trigger: Trigger;
  next_attempt_at: number | null;
}

/** Every execution that is in progress or waiting for a retry. */
export async function activeExecutionRows(db: Database): Promise<ActiveExecutionRow[]> {
  const execs = await db.client.execute(
    "SELECT id, job_id, status, attempt, scheduled_at, trigger, next_attempt_at FROM executions WHERE status IN ('in_progress', 'retrying')",
  );
  return execs.rows.map((row) => ({
    id: row.id as string,
    job_id: row.job_id as string,
    status: row.status as "in_progress" | "retrying",
    attempt: Number(row.attempt),
    scheduled_at: Number(row.scheduled_at),
    trigger: row.trigger as Trigger,
    next_attempt_at: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
  }));
}
