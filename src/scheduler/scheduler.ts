/**
 * The firing loop. A timer over next fire times (a cache of the replicated state, rebuilt at
 * start) wakes the scheduler when something is due; it settles the due occurrence through the
 * log (the claim: `job.advance`, fenced on the job's next fire time), and only once that is
 * committed does it call the webhook. Outcomes and retries go through the log too, so a crash
 * loses no retry and a restart resends what was in flight with the same Idempotency-Key.
 */
import type { Database } from "../db/open.ts";
import type { Logger } from "../logger.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { ApplyResult, Command } from "./commands.ts";
import {
  backoffDelayMs,
  deliver,
  type DeliveryRequest,
  type DeliveryResult,
  type WebhookMethod,
} from "./delivery.ts";
import { ulid } from "./ids.ts";
import { type CommandLog, LogFailedError } from "./log.ts";
import type { JobRecord } from "./model.ts";
import { nextOccurrence, occurrencesBetween, type Schedule } from "./recurrence.ts";
import { rowToJob } from "./rows.ts";
import { type Effect, runningCount, type SchedulerState } from "./state.ts";
import { TimerQueue } from "./timer.ts";

/** What the scheduler reports for metrics. */
export interface SchedulerMetrics {
  lateness(seconds: number): void;
  delivery(outcome: "success" | "failure" | "aborted", error_class: string | null): void;
  inflight(count: number): void;
  timerEntries(count: number): void;
  occurrence(kind: "fired" | "skipped" | "missed", count: number): void;
}

export interface SchedulerOptions {
  clock: Clock;
  log: CommandLog;
  state: SchedulerState;
  db: Database;
  logger: Logger;
  metrics?: SchedulerMetrics;
  max_inflight: number;
  secrets: string[];
  backoff: { base_ms: number; max_ms: number };
  history: { retention_ms: number; per_job_max: number };
  /** Uniform [0, 1) source for retry jitter; the value is fixed in the command. */
  random?: () => number;
  /** Substitute for the global `fetch` (tests). */
  fetch?: typeof fetch;
  /** `WEBHOOK_DENY_PRIVATE`: refuse private and loopback targets at delivery (`deliver`). */
  deny_private_targets?: boolean;
}

/** Most past occurrences enumerated when a job is found late; more are counted as one record. */
const MISSED_SCAN_MAX = 10_000;
/** Lateness beyond which a fired occurrence is marked `catch_up` rather than `schedule`. */
const CATCH_UP_MARK_MS = 1_000;
const PRUNE_EVERY_MS = 60_000;
const JOB_KEY = "j:";
/** The outcome of an occurrence of a job without a webhook: it completes at once. */
const NO_WEBHOOK: DeliveryResult = {
  ok: true,
  status_code: null,
  error_class: null,
  error: null,
  retryable: false,
  aborted: false,
  duration_ms: 0,
  response_excerpt: null,
};
const RETRY_KEY = "r:";

/** The schedule a stored job follows. */
export function scheduleOf(job: JobRecord): Schedule {
  switch (job.type) {
    case "once":
      return { kind: "once", at_ms: job.run_at! };
    case "cron":
      return { kind: "cron", expression: job.cron_expression!, timezone: job.timezone };
    case "interval":
      return {
        kind: "interval",
        every_ms: job.interval_ms!,
        anchor_ms: job.starts_at ?? job.created_at,
      };
  }
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #timer: TimerQueue;
  readonly #inflight = new Map<string, AbortController>();
  readonly #redelivering = new Set<string>();
  /** Rows of jobs whose occurrences are being settled: their deliveries start from these. */
  readonly #settlingRows = new Map<string, JobRecord>();
  /** Due items taken from the timer whose command is not yet committed. */
  #settling = 0;
  #running = false;
  #pruneTimer: TimerHandle | null = null;
  #idle: (() => void)[] = [];
  readonly #unsubscribe: () => void;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#timer = new TimerQueue(options.clock, () => this.#pump());
    this.#unsubscribe = options.log.onEffects((effects) => this.#onEffects(effects));
  }

  /** Deliveries in flight now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** Due entries being settled plus deliveries in flight: zero when the scheduler is idle. */
  get busy(): number {
    return this.#settling + this.#inflight.size;
  }

  /** Entries in the timer (job fire times and retries). */
  get timerSize(): number {
    return this.#timer.size;
  }

  /**
   * Rebuilds the timer from the replicated state and starts firing: due and overdue occurrences
   * are settled at once (misfire policy), pending retries resume at their time, and deliveries
   * that were in flight when the node stopped are sent again with the same Idempotency-Key.
   */
  start(): void {
    this.#running = true;
    for (const [id, job] of this.#o.state.jobs) {
      if (job.next_fire_at !== null) this.#timer.set(JOB_KEY + id, job.next_fire_at);
    }
    for (const [id, exec] of this.#o.state.active) {
      if (exec.status === "retrying" && exec.next_attempt_at !== null) {
        this.#timer.set(RETRY_KEY + id, exec.next_attempt_at);
      } else if (exec.status === "in_progress") {
        this.#redelivering.add(id);
        this.#timer.set(RETRY_KEY + id, this.#o.clock.now());
      }
    }
    this.#o.metrics?.timerEntries(this.#timer.size);
    this.#schedulePrune(0);
    this.#pump();
  }

  /**
   * Stops firing: no new deliveries start; in-flight ones get `grace_ms` to finish and record
   * their outcome, then are aborted (they will be redelivered after restart).
   */
  async stop(grace_ms = 5_000): Promise<void> {
    this.#running = false;
    this.#unsubscribe();
    this.#timer.stop();
    if (this.#pruneTimer !== null) this.#o.clock.clearTimeout(this.#pruneTimer);
    if (this.#inflight.size === 0) return;
    const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, grace_ms));
    await Promise.race([idle, timeout]);
    for (const controller of this.#inflight.values()) controller.abort("node shutting down");
  }

  #onEffects(effects: Effect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case "job_timer":
          if (effect.due_ms === null) this.#timer.delete(JOB_KEY + effect.job_id);
          else this.#timer.set(JOB_KEY + effect.job_id, effect.due_ms);
          break;
        case "retry_timer":
          if (effect.due_ms === null) this.#timer.delete(RETRY_KEY + effect.execution_id);
          else this.#timer.set(RETRY_KEY + effect.execution_id, effect.due_ms);
          break;
        case "deliver":
          if (this.#running && this.#o.log.canFire()) void this.#deliver(effect.execution_id);
          break;
        case "abort":
          for (const id of effect.execution_ids) this.#inflight.get(id)?.abort(effect.reason);
          break;
      }
    }
    this.#o.metrics?.timerEntries(this.#timer.size);
  }

  /** Takes as many due entries as there is delivery capacity for, and settles them. */
  #pump(): void {
    if (!this.#running || !this.#o.log.canFire()) return;
    const capacity = this.#o.max_inflight - this.#inflight.size - this.#settling;
    if (capacity <= 0) return;
    const due = this.#timer.takeDue(capacity);
    if (due.length === 0) return;
    this.#settling += due.length;
    const jobs: { job_id: string; due_ms: number }[] = [];
    for (const item of due) {
      if (item.key.startsWith(JOB_KEY)) {
        jobs.push({ job_id: item.key.slice(JOB_KEY.length), due_ms: item.due_ms });
      } else void this.#settleRetry(item.key.slice(RETRY_KEY.length));
    }
    if (jobs.length > 0) void this.#settleJobs(jobs);
  }

  #settled(count: number): void {
    this.#settling -= count;
    this.#pump();
  }

  async #settleJobs(due: { job_id: string; due_ms: number }[]): Promise<void> {
    try {
      const rows = await this.#loadJobs(due.map((d) => d.job_id));
      const commands: Command[] = [];
      for (const { job_id, due_ms } of due) {
        const job = rows.get(job_id);
        const entry = this.#o.state.jobs.get(job_id);
        if (job === undefined || entry === undefined || entry.next_fire_at !== due_ms) continue;
        commands.push(this.#advanceCommand(job, due_ms, runningCount(entry) > 0));
      }
      if (commands.length === 0) return;
      for (const job of rows.values()) this.#settlingRows.set(job.id, job);
      try {
        const results = await this.#o.log.propose(commands);
        this.#countOccurrences(commands, results);
      } finally {
        for (const job_id of rows.keys()) this.#settlingRows.delete(job_id);
      }
    } catch (error) {
      this.#reportProposeError("settling due jobs", error);
    } finally {
      this.#settled(due.length);
    }
  }

  /** Decides what becomes of a due job's occurrence(s): fire, skip, or record missed. */
  #advanceCommand(job: JobRecord, due_ms: number, running: boolean): Command {
    const now = this.#o.clock.now();
    const schedule = scheduleOf(job);
    const window = { starts_at_ms: job.starts_at, ends_at_ms: job.ends_at };
    const later = due_ms < now
      ? occurrencesBetween(schedule, due_ms, now, MISSED_SCAN_MAX, window)
      : { times_ms: [], truncated: false };
    const all = [due_ms, ...later.times_ms];
    const latest = all[all.length - 1];
    const next = nextOccurrence(schedule, later.truncated ? now : latest, window);
    // An occurrence fired within the normal firing delay is on time, whatever the window.
    const inWindow = now - latest <= Math.max(job.catchup_window_ms, CATCH_UP_MARK_MS);
    const missedTimes = inWindow ? all.slice(0, -1) : all;
    const missedCount = missedTimes.length + (later.truncated ? 1 : 0);
    const missed = missedTimes.length === 0 ? null : {
      execution_id: ulid(now),
      first_at: missedTimes[0],
      last_at: missedTimes[missedTimes.length - 1],
      count: missedCount,
    };
    let start: Extract<Command, { type: "job.advance" }>["start"] = null;
    let skipped: Extract<Command, { type: "job.advance" }>["skipped"] = null;
    if (inWindow) {
      if (running && job.overlap_policy === "forbid") {
        skipped = {
          execution_id: ulid(now),
          scheduled_at: latest,
          reason: "skipped: the previous occurrence was still running (overlap policy forbid)",
        };
      } else {
        start = {
          execution_id: ulid(now),
          scheduled_at: latest,
          trigger: missed !== null || now - latest > CATCH_UP_MARK_MS ? "catch_up" : "schedule",
        };
      }
    }
    return {
      type: "job.advance",
      at: now,
      job_id: job.id,
      expected_fire_at: due_ms,
      next_fire_at: next,
      missed,
      skipped,
      start,
    };
  }

  #countOccurrences(commands: Command[], results: ApplyResult[]): void {
    const metrics = this.#o.metrics;
    if (metrics === undefined) return;
    commands.forEach((command, i) => {
      if (command.type !== "job.advance" || !results[i].ok) return;
      if (command.start !== null) metrics.occurrence("fired", 1);
      if (command.skipped !== null) metrics.occurrence("skipped", 1);
      if (command.missed !== null) metrics.occurrence("missed", command.missed.count);
    });
  }

  async #settleRetry(execution_id: string): Promise<void> {
    try {
      const exec = this.#o.state.active.get(execution_id);
      if (exec === undefined) return;
      const redelivery = this.#redelivering.has(execution_id) && exec.status === "in_progress";
      const [result] = await this.#o.log.propose([{
        type: "exec.attempt",
        at: this.#o.clock.now(),
        execution_id,
        attempt: redelivery ? exec.attempt : exec.attempt + 1,
        redelivery,
      }]);
      if (!result.ok) this.#redelivering.delete(execution_id);
    } catch (error) {
      this.#reportProposeError("starting a retry", error);
    } finally {
      this.#settled(1);
    }
  }

  async #deliver(execution_id: string): Promise<void> {
    const exec = this.#o.state.active.get(execution_id);
    if (exec === undefined || this.#inflight.has(execution_id)) return;
    const controller = new AbortController();
    this.#inflight.set(execution_id, controller);
    this.#o.metrics?.inflight(this.#inflight.size);
    const redelivery = this.#redelivering.delete(execution_id);
    const attempt = exec.attempt;
    try {
      const job = this.#settlingRows.get(exec.job_id) ??
        (await this.#loadJobs([exec.job_id])).get(exec.job_id);
      if (job === undefined) return;
      const started = this.#o.clock.now();
      if (attempt === 1 && !redelivery && exec.trigger !== "manual") {
        this.#o.metrics?.lateness(Math.max(0, started - exec.scheduled_at) / 1_000);
      }
      if (job.webhook_url === null) {
        await this.#recordOutcome(execution_id, attempt, job, NO_WEBHOOK);
        return;
      }
      const request: DeliveryRequest = {
        job_id: job.id,
        execution_id,
        scheduled_at_ms: exec.scheduled_at,
        attempt,
        redelivery,
        payload: job.payload,
        url: job.webhook_url,
        method: job.method as WebhookMethod,
        headers: job.headers,
        secrets: job.secret !== null ? [job.secret] : this.#o.secrets,
        timeout_ms: job.timeout_ms,
      };
      const result = await deliver(request, {
        clock: this.#o.clock,
        signal: controller.signal,
        fetch: this.#o.fetch,
        deny_private: this.#o.deny_private_targets,
      });
      this.#o.metrics?.delivery(
        result.ok ? "success" : result.aborted ? "aborted" : "failure",
        result.error_class,
      );
      if (result.aborted) return;
      await this.#recordOutcome(execution_id, attempt, job, result);
    } catch (error) {
      this.#reportProposeError("recording a delivery", error);
    } finally {
      this.#inflight.delete(execution_id);
      this.#o.metrics?.inflight(this.#inflight.size);
      if (this.#inflight.size === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
      this.#pump();
    }
  }

  async #recordOutcome(
    execution_id: string,
    attempt: number,
    job: JobRecord,
    result: DeliveryResult,
  ): Promise<void> {
    const now = this.#o.clock.now();
    const retry = !result.ok && result.retryable && attempt < job.max_attempts;
    const delay_ms = retry
      ? backoffDelayMs(attempt, this.#o.backoff, (this.#o.random ?? Math.random)())
      : 0;
    if (!result.ok) {
      this.#o.logger.warn("delivery failed", {
        job_id: job.id,
        execution_id,
        attempt,
        error_class: result.error_class,
        status_code: result.status_code,
        retry_in_ms: retry ? delay_ms : null,
      });
    }
    await this.#o.log.propose([{
      type: "exec.finish",
      at: now,
      execution_id,
      attempt,
      outcome: {
        ok: result.ok,
        status_code: result.status_code,
        error_class: result.error_class,
        error: result.error,
        duration_ms: Math.round(result.duration_ms),
        response_excerpt: result.response_excerpt,
      },
      retry_at: retry ? now + delay_ms : null,
    }]);
  }

  async #loadJobs(ids: string[]): Promise<Map<string, JobRecord>> {
    const found = new Map<string, JobRecord>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await this.#o.db.client.execute({
        sql: `SELECT * FROM jobs WHERE id IN (${chunk.map(() => "?").join(",")})`,
        args: chunk,
      });
      for (const row of rows.rows) {
        const job = rowToJob(row);
        found.set(job.id, job);
      }
    }
    return found;
  }

  #schedulePrune(delay_ms: number): void {
    this.#pruneTimer = this.#o.clock.setTimeout(() => {
      if (!this.#running) return;
      const now = this.#o.clock.now();
      this.#o.log.propose([{
        type: "history.prune",
        at: now,
        before: now - this.#o.history.retention_ms,
        per_job_max: this.#o.history.per_job_max,
      }]).catch((error) => this.#reportProposeError("pruning history", error));
      this.#schedulePrune(PRUNE_EVERY_MS);
    }, delay_ms);
  }

  #reportProposeError(what: string, error: unknown): void {
    if (error instanceof LogFailedError) return;
    this.#o.logger.error(`failed ${what}`, { error: (error as Error).message });
  }
}
