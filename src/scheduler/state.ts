/**
 * The scheduler's state machine. Applying a command is deterministic: it reads only the
 * in-memory index (rebuilt from the tables at start) and the command, and returns the SQL that
 * makes the change durable, the result for the proposer, and the effects the timing engine must
 * follow once the change is committed. The caller writes the SQL of a whole group of commands in
 * one transaction; if that write fails the index no longer matches the disk and the node must
 * stop (see `LocalLog`).
 *
 * Error model. `apply` takes a command that passed `validateCommands`
 * (`src/scheduler/command_codec.ts`: every log validates a proposal before it is queued and every
 * decoded entry before it is applied), and never throws for one:
 * - a command that does not fit the state returns `{ok: false, code, message}` and changes
 *   nothing, neither the index nor the tables (every check runs before the first change):
 *   `not_found` (no such job), `conflict` (the job's status forbids it, its id or idempotency key
 *   exists, an execution id is active already), `capacity` (QUEUE_JOB_LIMIT), `stale` (the fence
 *   of `job.advance`, `exec.attempt` or `exec.finish` no longer holds). The result depends only
 *   on the index and the command, so it is the same on every node and at every replay;
 * - the SQL it returns cannot fail on a constraint: job ids and idempotency keys are checked
 *   against the index, which holds every job; an execution id is checked against the active
 *   executions, and a new execution row replaces a finished one with the same id (only a forged
 *   entry can reuse one; replacing it keeps the index and the table equal);
 * - values are in range for what apply computes from them (times within `Date`'s range, so the
 *   text of a missed run cannot throw).
 * What is left is the write itself (disk full, I/O error): the caller stops the node.
 * `load` reads back what apply wrote and throws `CorruptDataError` (`src/db/corrupt.ts`) for a
 * row it cannot index.
 */
import type { InStatement } from "@libsql/client/node";
import { CorruptDataError, FIX_SINGLE_NODE, isSqliteCorruption } from "../db/corrupt.ts";
import type { Database } from "../db/open.ts";
import { fixedChunks } from "../db/statement_cache.ts";
import type { Applied as LogApplied, ApplyErrorCode, StateMachine } from "../log/state_machine.ts";
import { validateCommands } from "./command_codec.ts";
import { type Command, JOB_COMMAND_TYPES } from "./commands.ts";
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

/** What the timing engine and the executor must do after a commit. */
export type Effect =
  | { kind: "job_timer"; job_id: string; due_ms: number | null }
  | { kind: "retry_timer"; execution_id: string; due_ms: number | null }
  | { kind: "deliver"; execution_id: string }
  | { kind: "abort"; execution_ids: string[]; reason: "cancelled" | "replaced" };

/** The scheduling facts of one job kept in memory. */
export interface JobIndexEntry {
  type: JobType;
  status: JobStatus;
  next_fire_at: number | null;
  overlap_policy: OverlapPolicy;
  idempotency_key: string | null;
  /**
   * Ids of the job's executions that are in progress or waiting to retry; null when none (most
   * jobs, most of the time: an empty collection per job would cost ~140 MB per million jobs).
   */
  active: string[] | null;
}

/** An execution that is in progress or waiting for a retry. */
export interface ActiveExecution {
  job_id: string;
  status: "in_progress" | "retrying";
  attempt: number;
  scheduled_at: number;
  trigger: Trigger;
  next_attempt_at: number | null;
}

/** Ids of a job's active executions (a copy). */
export function activeIds(job: JobIndexEntry): string[] {
  return job.active === null ? [] : [...job.active];
}

/** How many of a job's executions are in progress or waiting to retry. */
export function runningCount(job: JobIndexEntry): number {
  return job.active?.length ?? 0;
}

/** Output of applying one command. */
type Applied = LogApplied<Effect>;

/** How to recover from a corrupt `node.db`, alone or in a cluster. */
const FIX_STATE =
  `${FIX_SINGLE_NODE}; in a cluster, move the data directory aside and rejoin to copy the state from a peer`;

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
] as const;

const JOB_INSERT_ROWS_MAX = 50;

function jobArgs(job: JobRecord): (string | number | null)[] {
  return JOB_COLUMNS.map((column) => {
    const value = job[column];
    if (column === "headers" || column === "payload") return JSON.stringify(value ?? null);
    return value as string | number | null;
  });
}

function insertJobs(records: JobRecord[]): InStatement[] {
  const statements: InStatement[] = [];
  const placeholders = `(${JOB_COLUMNS.map(() => "?").join(",")})`;
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

function fail(code: ApplyErrorCode, message: string): Applied {
  return { result: { ok: false, code, message }, statements: [], effects: [] };
}

/** The replicated scheduling state: an index in memory over the tables in libSQL. */
export class SchedulerState implements StateMachine<Command, Effect> {
  readonly command_types = JOB_COMMAND_TYPES;

  check(commands: readonly unknown[]): Command[] {
    validateCommands(commands);
    return commands;
  }
  readonly jobs = new Map<string, JobIndexEntry>();
  readonly idempotency = new Map<string, string>();
  readonly active = new Map<string, ActiveExecution>();

  /** Rebuilds the index from the tables (at start, or after a snapshot is installed). */
  async load(db: Database): Promise<void> {
    try {
      await this.#load(db);
    } catch (error) {
      if (!isSqliteCorruption(error)) throw error;
      throw new CorruptDataError(
        { file: "node.db", what: "the file" },
        (error as Error).message,
        FIX_STATE,
      );
    }
  }

  async #load(db: Database): Promise<void> {
    const applied = await db.client.execute("SELECT value FROM meta WHERE key = 'applied_index'");
    if (applied.rows.length > 0 && !/^(0|[1-9][0-9]{0,15})$/.test(String(applied.rows[0].value))) {
      throw new CorruptDataError(
        { file: "node.db", what: "the applied index (meta.applied_index)" },
        `it is ${JSON.stringify(applied.rows[0].value)}`,
        FIX_STATE,
      );
    }
    this.jobs.clear();
    this.idempotency.clear();
    this.active.clear();
    // Paged by id, and the repeated names interned: one query over a million rows would hold a
    // million row objects at once, and every row's "pending" would be a string of its own.
    let after = "";
    for (;;) {
      const rows = await db.client.execute({
        sql:
          "SELECT id, type, status, next_fire_at, overlap_policy, idempotency_key FROM jobs WHERE id > ? ORDER BY id LIMIT ?",
        args: [after, LOAD_PAGE_ROWS],
      });
      for (const row of rows.rows) {
        const id = row.id as string;
        const key = row.idempotency_key as string | null;
        this.jobs.set(id, {
          type: intern<JobType>(row.type, "type", id),
          status: intern<JobStatus>(row.status, "status", id),
          next_fire_at: row.next_fire_at === null ? null : Number(row.next_fire_at),
          overlap_policy: intern<OverlapPolicy>(row.overlap_policy, "overlap_policy", id),
          idempotency_key: key,
          active: null,
        });
        if (key !== null) this.idempotency.set(key, id);
      }
      if (rows.rows.length < LOAD_PAGE_ROWS) break;
      after = rows.rows[rows.rows.length - 1].id as string;
    }
    const execs = await db.client.execute(
      "SELECT id, job_id, status, attempt, scheduled_at, trigger, next_attempt_at FROM executions WHERE status IN ('in_progress', 'retrying')",
    );
    for (const row of execs.rows) {
      const id = row.id as string;
      const job_id = row.job_id as string;
      this.active.set(id, {
        job_id,
        status: row.status as "in_progress" | "retrying",
        attempt: Number(row.attempt),
        scheduled_at: Number(row.scheduled_at),
        trigger: row.trigger as Trigger,
        next_attempt_at: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
      });
      const job = this.jobs.get(job_id);
      if (job !== undefined) (job.active ??= []).push(id);
    }
  }

  /** Applies one command. Never throws for a command that does not fit the state: it says why. */
  apply(cmd: Command): Applied {
    switch (cmd.type) {
      case "job.create":
        return this.#create(cmd);
      case "job.delete":
        return this.#delete(cmd);
      case "job.cancel":
        return this.#cancel(cmd);
      case "job.pause":
        return this.#pause(cmd);
      case "job.resume":
        return this.#resume(cmd);
      case "job.advance":
        return this.#advance(cmd);
      case "job.trigger":
        return this.#trigger(cmd);
      case "exec.attempt":
        return this.#attempt(cmd);
      case "exec.finish":
        return this.#finish(cmd);
      case "history.prune":
        return this.#prune(cmd);
    }
  }

  #create(cmd: Extract<Command, { type: "job.create" }>): Applied {
    const created: { id: string; created: boolean }[] = [];
    const fresh: JobRecord[] = [];
    const freshIds = new Set<string>();
    const keysInCommand = new Map<string, string>();
    for (const job of cmd.jobs) {
      const key = job.idempotency_key;
      const existing = key === null
        ? undefined
        : this.idempotency.get(key) ?? keysInCommand.get(key);
      if (existing !== undefined) {
        created.push({ id: existing, created: false });
        continue;
      }
      if (this.jobs.has(job.id) || freshIds.has(job.id)) {
        return fail("conflict", `a job with id ${job.id} exists already`);
      }
      if (key !== null) keysInCommand.set(key, job.id);
      fresh.push(job);
      freshIds.add(job.id);
      created.push({ id: job.id, created: true });
    }
    if (this.jobs.size + fresh.length > cmd.job_limit) {
      return fail(
        "capacity",
        `the job limit QUEUE_JOB_LIMIT=${cmd.job_limit} would be exceeded (${this.jobs.size} stored, ${fresh.length} new): delete finished jobs or raise the limit`,
      );
    }
    const effects: Effect[] = [];
    for (const job of fresh) {
      this.jobs.set(job.id, {
        type: job.type,
        status: job.status,
        next_fire_at: job.next_fire_at,
        overlap_policy: job.overlap_policy,
        idempotency_key: job.idempotency_key,
        active: null,
      });
      if (job.idempotency_key !== null) this.idempotency.set(job.idempotency_key, job.id);
      if (job.next_fire_at !== null) {
        effects.push({ kind: "job_timer", job_id: job.id, due_ms: job.next_fire_at });
      }
    }
    return { result: { ok: true, created }, statements: insertJobs(fresh), effects };
  }

  #delete(cmd: Extract<Command, { type: "job.delete" }>): Applied {
    const job = this.jobs.get(cmd.job_id);
    if (job === undefined) return fail("not_found", `job ${cmd.job_id} does not exist`);
    const effects = this.#stopActive(job, "cancelled");
    this.jobs.delete(cmd.job_id);
    if (job.idempotency_key !== null) this.idempotency.delete(job.idempotency_key);
    effects.push({ kind: "job_timer", job_id: cmd.job_id, due_ms: null });
    return {
      result: { ok: true },
      statements: [
        { sql: "DELETE FROM executions WHERE job_id = ?", args: [cmd.job_id] },
        { sql: "DELETE FROM jobs WHERE id = ?", args: [cmd.job_id] },
      ],
      effects,
    };
  }

  #cancel(cmd: Extract<Command, { type: "job.cancel" }>): Applied {
    const job = this.jobs.get(cmd.job_id);
    if (job === undefined) return fail("not_found", `job ${cmd.job_id} does not exist`);
    if (job.status === "cancelled") {
      return fail("conflict", `job ${cmd.job_id} is cancelled already`);
    }
    if (job.status === "completed" || job.status === "failed" || job.status === "missed") {
      return fail("conflict", `job ${cmd.job_id} has finished (${job.status}); nothing to cancel`);
    }
    const stoppedIds = activeIds(job);
    const effects = this.#stopActive(job, "cancelled");
    job.status = "cancelled";
    job.next_fire_at = null;
    effects.push({ kind: "job_timer", job_id: cmd.job_id, due_ms: null });
    return {
      result: { ok: true },
      statements: [
        {
          sql:
            "UPDATE jobs SET status = 'cancelled', next_fire_at = NULL, cancel_reason = ?, updated_at = ? WHERE id = ?",
          args: [cmd.reason, cmd.at, cmd.job_id],
        },
        ...this.#finishStatements(stoppedIds, "cancelled", cmd.at, "job cancelled"),
      ],
      effects,
    };
  }

  #pause(cmd: Extract<Command, { type: "job.pause" }>): Applied {
    const job = this.jobs.get(cmd.job_id);
    if (job === undefined) return fail("not_found", `job ${cmd.job_id} does not exist`);
    if (job.status !== "pending" && job.status !== "in_progress") {
      return fail("conflict", `job ${cmd.job_id} is ${job.status}; only a scheduled job pauses`);
    }
    job.status = "paused";
    job.next_fire_at = null;
    return {
      result: { ok: true },
      statements: [{
        sql: "UPDATE jobs SET status = 'paused', next_fire_at = NULL, updated_at = ? WHERE id = ?",
        args: [cmd.at, cmd.job_id],
      }],
      effects: [{ kind: "job_timer", job_id: cmd.job_id, due_ms: null }],
    };
  }

  #resume(cmd: Extract<Command, { type: "job.resume" }>): Applied {
    const job = this.jobs.get(cmd.job_id);
    if (job === undefined) return fail("not_found", `job ${cmd.job_id} does not exist`);
    if (job.status !== "paused") {
      return fail("conflict", `job ${cmd.job_id} is ${job.status}, not paused`);
    }
    job.next_fire_at = cmd.next_fire_at;
    // Leave `paused` first: #settledStatus keeps a paused status as it is.
    job.status = "pending";
    job.status = this.#settledStatus(job, "completed");
    return {
      result: { ok: true },
      statements: [{
        sql: "UPDATE jobs SET status = ?, next_fire_at = ?, updated_at = ? WHERE id = ?",
        args: [job.status, cmd.next_fire_at, cmd.at, cmd.job_id],
      }],
      effects: [{ kind: "job_timer", job_id: cmd.job_id, due_ms: cmd.next_fire_at }],
    };
  }

  #advance(cmd: Extract<Command, { type: "job.advance" }>): Applied {
    const job = this.jobs.get(cmd.job_id);
    if (job === undefined) return fail("not_found", `job ${cmd.job_id} does not exist`);
    if (job.next_fire_at !== cmd.expected_fire_at) {
      return fail(
        "stale",
        `job ${cmd.job_id} is no longer due at ${cmd.expected_fire_at} (next ${job.next_fire_at})`,
      );
    }
    for (const part of [cmd.missed, cmd.skipped, cmd.start]) {
      if (part !== null && this.active.has(part.execution_id)) {
        return fail("conflict", `execution ${part.execution_id} exists already`);
      }
    }
    const statements: InStatement[] = [];
    const effects: Effect[] = [];
    if (cmd.missed !== null) {
      statements.push(insertExecution({
        id: cmd.missed.execution_id,
        job_id: cmd.job_id,
        scheduled_at: cmd.missed.last_at,
        trigger: "schedule",
        status: "missed",
        attempt: 0,
        started_at: cmd.at,
        finished_at: cmd.at,
        error: cmd.missed.count === 1
          ? "missed: not fired within the job's catch-up window (the node was down or overloaded)"
          : `missed ${cmd.missed.count} occurrences from ${
            new Date(cmd.missed.first_at).toISOString()
          } to ${new Date(cmd.missed.last_at).toISOString()}`,
        missed_count: cmd.missed.count,
      }));
    }
    if (cmd.skipped !== null) {
      statements.push(insertExecution({
        id: cmd.skipped.execution_id,
        job_id: cmd.job_id,
        scheduled_at: cmd.skipped.scheduled_at,
        trigger: "schedule",
        status: "skipped",
        attempt: 0,
        started_at: cmd.at,
        finished_at: cmd.at,
        error: cmd.skipped.reason,
      }));
    }
    job.next_fire_at = cmd.next_fire_at;
    let runIncrement = 0;
    if (cmd.start !== null) {
      if (job.overlap_policy === "replace" && runningCount(job) > 0) {
        const replaced = activeIds(job);
        effects.push(...this.#stopActive(job, "replaced"));
        statements.push(
          ...this.#finishStatements(replaced, "replaced", cmd.at, "replaced by a newer occurrence"),
        );
      }
      this.#startExecution(job, cmd.job_id, cmd.start, cmd.at, statements, effects);
      runIncrement = 1;
    }
    if (cmd.start === null && cmd.missed !== null && job.type === "once") job.status = "missed";
    else job.status = this.#settledStatus(job, "completed");
    statements.push({
      sql:
        `UPDATE jobs SET status = ?, next_fire_at = ?, updated_at = ?, run_count = run_count + ?, attempt_count = attempt_count + ?, last_run_at = CASE WHEN ? = 1 THEN ? ELSE last_run_at END${
          cmd.start === null ? ", last_status = ?" : ""
        } WHERE id = ?`,
      args: [
        job.status,
        job.next_fire_at,
        cmd.at,
        runIncrement,
        runIncrement,
        runIncrement,
        cmd.at,
        ...(cmd.start === null ? [cmd.skipped !== null ? "skipped" : "missed"] : []),
        cmd.job_id,
      ],
    });
    effects.push({ kind: "job_timer", job_id: cmd.job_id, due_ms: job.next_fire_at });
    return { result: { ok: true }, statements, effects };
  }

  #trigger(cmd: Extract<Command, { type: "job.trigger" }>): Applied {
    const job = this.jobs.get(cmd.job_id);
    if (job === undefined) return fail("not_found", `job ${cmd.job_id} does not exist`);
    if (job.status === "cancelled") {
      return fail("conflict", `job ${cmd.job_id} is cancelled; create a new job instead`);
    }
    if (job.overlap_policy === "forbid" && runningCount(job) > 0) {
      return fail(
        "conflict",
        `job ${cmd.job_id} has an execution running and its overlap policy is forbid`,
      );
    }
    if (this.active.has(cmd.execution_id)) {
      return fail("conflict", `execution ${cmd.execution_id} exists already`);
    }
    const statements: InStatement[] = [];
    const effects: Effect[] = [];
    if (job.overlap_policy === "replace" && runningCount(job) > 0) {
      const replaced = activeIds(job);
      effects.push(...this.#stopActive(job, "replaced"));
      statements.push(
        ...this.#finishStatements(replaced, "replaced", cmd.at, "replaced by a manual run"),
      );
    }
    this.#startExecution(
      job,
      cmd.job_id,
      {
        execution_id: cmd.execution_id,
        scheduled_at: cmd.at,
        trigger: "manual",
      },
      cmd.at,
      statements,
      effects,
    );
    if (job.status !== "paused") job.status = "in_progress";
    statements.push({
      sql:
        "UPDATE jobs SET status = ?, updated_at = ?, run_count = run_count + 1, attempt_count = attempt_count + 1, last_run_at = ? WHERE id = ?",
      args: [job.status, cmd.at, cmd.at, cmd.job_id],
    });
    return { result: { ok: true }, statements, effects };
  }

  #attempt(cmd: Extract<Command, { type: "exec.attempt" }>): Applied {
    const exec = this.active.get(cmd.execution_id);
    if (exec === undefined) {
      return fail("stale", `execution ${cmd.execution_id} is not active`);
    }
    const expected = cmd.redelivery ? exec.attempt : exec.attempt + 1;
    const expectedStatus = cmd.redelivery ? "in_progress" : "retrying";
    if (cmd.attempt !== expected || exec.status !== expectedStatus) {
      return fail(
        "stale",
        `execution ${cmd.execution_id} is ${exec.status} at attempt ${exec.attempt}`,
      );
    }
    exec.status = "in_progress";
    exec.attempt = cmd.attempt;
    exec.next_attempt_at = null;
    return {
      result: { ok: true },
      statements: [
        {
          sql:
            "UPDATE executions SET status = 'in_progress', attempt = ?, next_attempt_at = NULL, redeliveries = redeliveries + ? WHERE id = ?",
          args: [cmd.attempt, cmd.redelivery ? 1 : 0, cmd.execution_id],
        },
        {
          sql: "UPDATE jobs SET attempt_count = attempt_count + 1, updated_at = ? WHERE id = ?",
          args: [cmd.at, exec.job_id],
        },
      ],
      effects: [
        { kind: "retry_timer", execution_id: cmd.execution_id, due_ms: null },
        { kind: "deliver", execution_id: cmd.execution_id },
      ],
    };
  }

  #finish(cmd: Extract<Command, { type: "exec.finish" }>): Applied {
    const exec = this.active.get(cmd.execution_id);
    if (exec === undefined || exec.status !== "in_progress" || exec.attempt !== cmd.attempt) {
      return fail("stale", `execution ${cmd.execution_id} attempt ${cmd.attempt} is not running`);
    }
    const job = this.jobs.get(exec.job_id);
    const o = cmd.outcome;
    const retrying = !o.ok && cmd.retry_at !== null;
    const status: ExecutionStatus = o.ok ? "completed" : retrying ? "retrying" : "failed";
    const statements: InStatement[] = [{
      sql:
        "UPDATE executions SET status = ?, finished_at = ?, status_code = ?, error_class = ?, error = ?, duration_ms = ?, response_excerpt = ?, next_attempt_at = ? WHERE id = ?",
      args: [
        status,
        retrying ? null : cmd.at,
        o.status_code,
        o.error_class,
        o.error,
        o.duration_ms,
        o.response_excerpt,
        retrying ? cmd.retry_at : null,
        cmd.execution_id,
      ],
    }];
    const effects: Effect[] = [];
    if (retrying) {
      exec.status = "retrying";
      exec.next_attempt_at = cmd.retry_at;
      effects.push({ kind: "retry_timer", execution_id: cmd.execution_id, due_ms: cmd.retry_at });
    } else {
      this.active.delete(cmd.execution_id);
      if (job !== undefined) {
        job.active = job.active?.filter((id) => id !== cmd.execution_id) ?? null;
        if (job.active?.length === 0) job.active = null;
        job.status = this.#settledStatus(job, o.ok ? "completed" : "failed");
      }
    }
    if (job !== undefined) {
      statements.push({
        sql: "UPDATE jobs SET status = ?, last_status = ?, updated_at = ? WHERE id = ?",
        args: [job.status, status, cmd.at, exec.job_id],
      });
    }
    return { result: { ok: true }, statements, effects };
  }

  #prune(cmd: Extract<Command, { type: "history.prune" }>): Applied {
    return {
      result: { ok: true },
      statements: [
        {
          sql: "DELETE FROM executions WHERE finished_at IS NOT NULL AND finished_at < ?",
          args: [cmd.before],
        },
        {
          sql:
            "DELETE FROM executions WHERE id IN (SELECT id FROM (SELECT id, finished_at, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY scheduled_at DESC, id DESC) AS n FROM executions) WHERE n > ? AND finished_at IS NOT NULL)",
          args: [cmd.per_job_max],
        },
      ],
      effects: [],
    };
  }

  /** Status of a job with nothing left in flight; `onceOutcome` is a finished one-off's. */
  #settledStatus(job: JobIndexEntry, onceOutcome: JobStatus): JobStatus {
    if (job.status === "paused" || job.status === "cancelled") return job.status;
    if (runningCount(job) > 0) return "in_progress";
    if (job.next_fire_at !== null) return "pending";
    return job.type === "once" ? onceOutcome : "completed";
  }

  #startExecution(
    job: JobIndexEntry,
    job_id: string,
    start: { execution_id: string; scheduled_at: number; trigger: Trigger },
    at: number,
    statements: InStatement[],
    effects: Effect[],
  ): void {
    this.active.set(start.execution_id, {
      job_id,
      status: "in_progress",
      attempt: 1,
      scheduled_at: start.scheduled_at,
      trigger: start.trigger,
      next_attempt_at: null,
    });
    (job.active ??= []).push(start.execution_id);
    statements.push(insertExecution({
      id: start.execution_id,
      job_id,
      scheduled_at: start.scheduled_at,
      trigger: start.trigger,
      status: "in_progress",
      attempt: 1,
      started_at: at,
    }));
    effects.push({ kind: "deliver", execution_id: start.execution_id });
  }

  /** Forgets a job's active executions; returns the effects that stop their timers and calls. */
  #stopActive(job: JobIndexEntry, reason: "cancelled" | "replaced"): Effect[] {
    const ids = activeIds(job);
    if (ids.length === 0) return [];
    for (const id of ids) this.active.delete(id);
    job.active = null;
    return [
      ...ids.map((id): Effect => ({ kind: "retry_timer", execution_id: id, due_ms: null })),
      { kind: "abort", execution_ids: ids, reason },
    ];
  }

  #finishStatements(
    ids: string[],
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
}

/** Fields of a new execution row; the rest start empty. */
type NewExecution =
  & Pick<
    ExecutionRecord,
    "id" | "job_id" | "scheduled_at" | "trigger" | "status" | "attempt" | "started_at"
  >
  & Partial<Pick<ExecutionRecord, "finished_at" | "error" | "missed_count">>;

function insertExecution(e: NewExecution): InStatement {
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
