/**
 * The jobs service: what the API asks of the scheduler. Writes become commands proposed to the
 * log (ids, times and next fire times fixed here); reads come from the node's tables.
 */
import { and, desc, eq, gt, lt, or, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import type { Database } from "../db/open.ts";
import { executions, jobs } from "../db/schema.ts";
import type { Clock } from "../clock.ts";
import type { ApplyResult } from "../log/state_machine.ts";
import type { Command } from "./commands.ts";
import {
  CapacityError,
  ConflictError,
  type FieldIssue,
  NotFoundError,
  ValidationError,
} from "../errors.ts";
import { deniedTargetAtCreation } from "./webhook/target_policy.ts";
import { ulid } from "./ids.ts";
import type { CommandLog } from "../log/command_log.ts";
import type { ExecutionRecord, JobRecord, JobStatus, JobType } from "./model.ts";
import { nextOccurrence } from "./recurrence.ts";
import { rowToExecution, rowToJob } from "./rows.ts";
import { scheduleOf } from "./scheduler.ts";
import type { Effect, SchedulerState } from "./state.ts";

/**
 * A validated job definition from a client: the stored record's client-given fields, with
 * `null` for the limits that take the node's default.
 */
export type JobInput =
  & Pick<
    JobRecord,
    | "name"
    | "type"
    | "type_alias"
    | "run_at"
    | "cron_expression"
    | "interval_ms"
    | "timezone"
    | "starts_at"
    | "ends_at"
    | "webhook_url"
    | "method"
    | "headers"
    | "payload"
    | "secret"
    | "overlap_policy"
    | "idempotency_key"
    | "executor"
  >
  & { catchup_window_ms: number | null; max_attempts: number | null; timeout_ms: number | null };

/** Defaults and limits of job creation. */
export interface ServiceLimits {
  job_limit: number;
  default_catchup_window_ms: number;
  default_max_attempts: number;
  default_timeout_ms: number;
  /** Resident memory above which creates are refused, or null for no limit. */
  memory_limit_bytes: number | null;
  /** Current resident memory (sampled). */
  memory_bytes: () => number;
  /** `WEBHOOK_DENY_PRIVATE`: refuse a webhook URL whose literal address is private (400). */
  deny_private_targets?: boolean;
}

/** A one-off whose time is up to this far in the past is accepted and fires at once. */
export const PAST_GRACE_MS = 5_000;

/** Filters and page of a job listing. */
export interface JobListQuery {
  status?: JobStatus;
  type?: JobType;
  text?: string;
  cursor?: string;
  limit: number;
}

/** Outcome of creating one job: the stored job, and whether this call created it. */
export interface Created {
  job: JobRecord;
  created: boolean;
}

export class JobService {
  constructor(
    private readonly db: Database,
    private readonly log: CommandLog<Command, Effect>,
    private readonly state: SchedulerState,
    private readonly clock: Clock,
    private readonly limits: ServiceLimits,
  ) {}

  /**
   * Creates jobs, all or none. Per-item problems are reported together as one ValidationError
   * whose issue paths start with the item's index (`jobs.3.timestamp`) when `batch` is set.
   */
  async create(inputs: JobInput[], batch = false): Promise<Created[]> {
    this.#checkMemory();
    const now = this.clock.now();
    const records: JobRecord[] = [];
    const issues: FieldIssue[] = [];
    inputs.forEach((input, i) => {
      const prefix = batch ? `jobs.${i}.` : "";
      const result = this.#record(input, now);
      if ("path" in result) issues.push({ ...result, path: prefix + result.path });
      else records.push(result);
    });
    if (issues.length > 0) {
      throw new ValidationError(
        batch
          ? `${issues.length} of ${inputs.length} jobs are invalid; none was created`
          : issues[0].message,
        issues,
      );
    }
    const stored = this.state.jobs.size;
    // Replays of keys already stored add no job, so they do not count against the limit.
    const keys = new Set<string>();
    const fresh = records.filter((r) => {
      const key = r.idempotency_key;
      if (key === null) return true;
      if (this.state.idempotency.has(key) || keys.has(key)) return false;
      keys.add(key);
      return true;
    }).length;
    if (stored + fresh > this.limits.job_limit) {
      throw new CapacityError(
        `the job limit QUEUE_JOB_LIMIT=${this.limits.job_limit} is reached (${stored} stored): delete finished jobs or raise the limit`,
        "job_limit",
      );
    }
    const [result] = await this.log.propose([{
      type: "job.create",
      at: now,
      jobs: records,
      job_limit: this.limits.job_limit,
    }]);
    const outcome = this.#check(result);
    const byId = new Map(records.map((r) => [r.id, r]));
    const out: Created[] = [];
    for (const { id, created } of outcome.created ?? []) {
      const job = created ? byId.get(id)! : await this.get(id);
      out.push({ job, created });
    }
    return out;
  }

  async get(id: string): Promise<JobRecord> {
    const rows = await this.db.query("SELECT * FROM jobs WHERE id = ?", [id]);
    if (rows.length === 0) throw new NotFoundError(`job ${id} does not exist`);
    return rowToJob(rows[0] as unknown as Parameters<typeof rowToJob>[0]);
  }

  /** Jobs in creation order, filtered; `next_cursor` continues the listing. */
  async list(q: JobListQuery): Promise<{ jobs: JobRecord[]; next_cursor: string | null }> {
    const where: SQL[] = [];
    if (q.status !== undefined) where.push(eq(jobs.status, q.status));
    if (q.type !== undefined) where.push(eq(jobs.type, q.type));
    if (q.cursor !== undefined) where.push(gt(jobs.id, q.cursor));
    if (q.text !== undefined && q.text !== "") {
      const pattern = `%${q.text.replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
      // Without ESCAPE, SQLite's LIKE treats the backslash as an ordinary character.
      const contains = (column: SQLiteColumn) => sql`${column} LIKE ${pattern} ESCAPE '\\'`;
      where.push(
        or(
          contains(jobs.id),
          contains(jobs.name),
          contains(jobs.webhook_url),
          contains(jobs.cron_expression),
          contains(jobs.payload),
        )!,
      );
    }
    const rows = await this.db.orm.select().from(jobs).where(and(...where)).orderBy(jobs.id)
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit).map((row) =>
      rowToJob(row as unknown as Parameters<typeof rowToJob>[0])
    );
    return {
      jobs: page,
      next_cursor: rows.length > q.limit ? page[page.length - 1].id : null,
    };
  }

  /** A job's executions, newest first. */
  async executions(
    job_id: string,
    limit: number,
    cursor?: string,
  ): Promise<{ executions: ExecutionRecord[]; next_cursor: string | null }> {
    await this.get(job_id);
    const where = [eq(executions.job_id, job_id)];
    if (cursor !== undefined) where.push(lt(executions.id, cursor));
    const rows = await this.db.orm.select().from(executions).where(and(...where))
      .orderBy(desc(executions.id)).limit(limit + 1);
    const page = rows.slice(0, limit).map((row) =>
      rowToExecution(row as unknown as Parameters<typeof rowToExecution>[0])
    );
    return {
      executions: page,
      next_cursor: rows.length > limit ? page[page.length - 1].id : null,
    };
  }

  /** The in-flight execution (if any) and the latest finished one. */
  async current(job_id: string): Promise<{
    current: ExecutionRecord | null;
    last: ExecutionRecord | null;
  }> {
    const rows = await this.db.client.execute({
      sql:
        "SELECT * FROM executions WHERE job_id = ? AND status IN ('in_progress', 'retrying') ORDER BY id DESC LIMIT 1",
      args: [job_id],
    });
    const last = await this.db.client.execute({
      sql:
        "SELECT * FROM executions WHERE job_id = ? AND status NOT IN ('in_progress', 'retrying') ORDER BY id DESC LIMIT 1",
      args: [job_id],
    });
    return {
      current: rows.rows.length === 0 ? null : rowToExecution(rows.rows[0]),
      last: last.rows.length === 0 ? null : rowToExecution(last.rows[0]),
    };
  }

  async delete(job_id: string): Promise<void> {
    await this.#run({ type: "job.delete", at: this.clock.now(), job_id });
  }

  async cancel(job_id: string, reason: string): Promise<JobRecord> {
    await this.#run({ type: "job.cancel", at: this.clock.now(), job_id, reason });
    return await this.get(job_id);
  }

  async pause(job_id: string): Promise<JobRecord> {
    await this.#run({ type: "job.pause", at: this.clock.now(), job_id });
    return await this.get(job_id);
  }

  /** Resumes from now: occurrences that fell in the pause are not caught up. */
  async resume(job_id: string): Promise<JobRecord> {
    const job = await this.get(job_id);
    const now = this.clock.now();
    const next = job.type === "once"
      ? Math.max(job.run_at!, now)
      : nextOccurrence(scheduleOf(job), now, {
        starts_at_ms: job.starts_at,
        ends_at_ms: job.ends_at,
      });
    await this.#run({ type: "job.resume", at: now, job_id, next_fire_at: next });
    return await this.get(job_id);
  }

  /** Runs the job now, outside its schedule; returns the new execution's id. */
  async trigger(job_id: string): Promise<string> {
    this.#checkMemory();
    const now = this.clock.now();
    const execution_id = ulid(now);
    await this.#run({ type: "job.trigger", at: now, job_id, execution_id });
    return execution_id;
  }

  #checkMemory(): void {
    const limit = this.limits.memory_limit_bytes;
    if (limit === null) return;
    const used = this.limits.memory_bytes();
    if (used > limit) {
      throw new CapacityError(
        `memory use ${Math.round(used / 2 ** 20)} MiB is above QUEUE_MEMORY_LIMIT (${
          Math.round(limit / 2 ** 20)
        } MiB): delete finished jobs or raise the limit`,
        "memory_limit",
      );
    }
  }

  async #run(command: Command): Promise<void> {
    const [result] = await this.log.propose([command]);
    this.#check(result);
  }

  #check(result: ApplyResult): Extract<ApplyResult, { ok: true }> {
    if (result.ok) return result;
    switch (result.code) {
      case "not_found":
        throw new NotFoundError(result.message);
      case "capacity":
        throw new CapacityError(result.message, "job_limit");
      case "conflict":
      case "stale":
        throw new ConflictError(result.message);
      case "invalid":
        throw new ValidationError(result.message);
    }
  }

  /** The record for a new job, or the field that makes its schedule unusable and why. */
  #record(input: JobInput, now: number): JobRecord | FieldIssue {
    if (this.limits.deny_private_targets && input.webhook_url !== null) {
      const denied = deniedTargetAtCreation(input.webhook_url);
      if (denied !== null) return { path: "webhook_url", message: denied };
    }
    const base = {
      ...input,
      catchup_window_ms: input.catchup_window_ms ?? this.limits.default_catchup_window_ms,
      max_attempts: input.max_attempts ?? this.limits.default_max_attempts,
      timeout_ms: input.timeout_ms ?? this.limits.default_timeout_ms,
      id: ulid(now),
      status: "pending" as const,
      created_at: now,
      updated_at: now,
      cancel_reason: null,
      last_run_at: null,
      last_status: null,
      attempt_count: 0,
      run_count: 0,
      next_fire_at: null,
    };
    if (input.type === "once") {
      if (input.run_at! < now - PAST_GRACE_MS) {
        return {
          path: "timestamp",
          message: `timestamp ${new Date(input.run_at!).toISOString()} is in the past (now ${
            new Date(now).toISOString()
          }): give a future time`,
        };
      }
      return { ...base, next_fire_at: Math.max(input.run_at!, now) };
    }
    const next = nextOccurrence(scheduleOf(base), now, {
      starts_at_ms: input.starts_at,
      ends_at_ms: input.ends_at,
    });
    if (next === null) {
      return {
        path: "last_date",
        message:
          "the schedule has no occurrence between now (or starts_at) and last_date: check the dates",
      };
    }
    return { ...base, next_fire_at: next };
  }
}
