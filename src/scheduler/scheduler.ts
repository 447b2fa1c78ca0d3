/**
 * The firing loop. A timer over next fire times (a cache of the replicated state, rebuilt at
 * start) wakes the scheduler when something is due; it settles the due occurrence through the
 * log (the claim: `job.advance`, fenced on the job's next fire time), and only once that is
 * committed does it call the webhook. Outcomes and retries go through the log too, so a crash
 * loses no retry and a restart resends what was in flight with the same Idempotency-Key.
 *
 * A proposal that fails (the log is overloaded, leadership is moving) drops nothing: the due
 * occurrence, the retry or the outcome goes back into the timer and is proposed again with
 * backoff (`proposal_retry` in the metrics). A node whose log has failed stops anyway, and an
 * outcome that a deposed leader could not record is redelivered by the next one. Anything else
 * that breaks the timer or the dispatcher is reported through `onFatal`: the node must stop.
 */
import type { Database } from "../db/open.ts";
import { fixedChunks } from "../db/statement_cache.ts";
import type { Logger } from "../logger.ts";
import type { Clock, TimerHandle } from "../clock.ts";
import type { ApplyResult } from "../log/state_machine.ts";
import type { Command } from "./commands.ts";
import type { AttemptResult, Dispatcher } from "./dispatcher.ts";
import { nextAttemptAt } from "./retry.ts";
import { ulid } from "./ids.ts";
import {
  type CommandLog,
  LogFailedError,
  LogOverloadedError,
  LogRefusedError,
  NotLeaderError,
} from "../log/command_log.ts";
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
  /** A proposal failed and will be made again after a backoff. */
  proposalRetry(what: ProposalKind): void;
}

type FinishCommand = Extract<Command, { type: "exec.finish" }>;

/** An outcome queued for recording, and the delivery waiting for it to be recorded. */
interface PendingOutcome {
  command: FinishCommand;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** What the scheduler proposes: a due occurrence, a retry's start, an attempt's outcome. */
export type ProposalKind = "advance" | "attempt" | "finish";

export interface SchedulerOptions {
  clock: Clock;
  log: CommandLog<Command, Effect>;
  state: SchedulerState;
  db: Database;
  logger: Logger;
  metrics?: SchedulerMetrics;
  max_inflight: number;
  /** Runs each attempt (a webhook call, a worker allocation). */
  dispatcher: Dispatcher;
  backoff: { base_ms: number; max_ms: number };
  history: { retention_ms: number; per_job_max: number };
  /** Uniform [0, 1) source for retry jitter; the value is fixed in the command. */
  random?: () => number;
  /** Called once when the timer or the dispatcher fails on an error the scheduler cannot handle. */
  onFatal?: (loop: "timer" | "dispatcher", error: Error) => void;
  /** Test-only fault injection at `timer.wake` and `dispatch`. */
  fault?: (point: "timer.wake" | "dispatch") => void;
}

/** Most past occurrences enumerated when a job is found late; more are counted as one record. */
const MISSED_SCAN_MAX = 10_000;
/** Lateness beyond which a fired occurrence is marked `catch_up` rather than `schedule`. */
const CATCH_UP_MARK_MS = 1_000;
const PRUNE_EVERY_MS = 60_000;
const JOB_KEY = "j:";
const RETRY_KEY = "r:";
/** Timer key of an outcome whose `exec.finish` proposal failed and is waiting to be made again. */
const OUTCOME_KEY = "o:";
/** Backoff of a failed proposal: doubles from the first delay up to the longest. */
const PROPOSAL_RETRY_FIRST_MS = 50;
const PROPOSAL_RETRY_MAX_MS = 5_000;

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
  /** Failed proposals by timer key: how many times in a row, for the backoff. */
  readonly #proposalFailures = new Map<string, number>();
  /** `exec.finish` commands whose proposal failed, by execution id, waiting to be made again. */
  readonly #unrecorded = new Map<string, FinishCommand>();
  /** Outcomes of attempts that ended in this turn of the event loop: proposed together. */
  #outcomes: PendingOutcome[] = [];
  /** Wakes the outcome flush one turn after the first outcome of a batch (as the log does). */
  readonly #outcomeChannel = new MessageChannel();
  #outcomeChannelOpen = true;
  #fatal = false;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#timer = new TimerQueue(options.clock, () => this.#wake());
    this.#unsubscribe = options.log.onEffects((effects) => this.#onEffects(effects));
    this.#outcomeChannel.port1.onmessage = () => void this.#recordOutcomes();
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
    try {
      await this.#drain(grace_ms);
    } finally {
      this.#closeOutcomeChannel();
    }
  }

  async #drain(grace_ms: number): Promise<void> {
    if (this.#inflight.size === 0) return;
    const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, grace_ms));
    await Promise.race([idle, timeout]);
    for (const controller of this.#inflight.values()) controller.abort("node shutting down");
  }

  /** Closes the outcome flush's wake-up port (the channel would keep the process alive). */
  #closeOutcomeChannel(): void {
    if (!this.#outcomeChannelOpen) return;
    this.#outcomeChannelOpen = false;
    this.#outcomeChannel.port1.close();
    this.#outcomeChannel.port2.close();
    void this.#recordOutcomes();
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
    const jobs: string[] = [];
    for (const item of due) {
      if (item.key.startsWith(JOB_KEY)) jobs.push(item.key.slice(JOB_KEY.length));
      else if (item.key.startsWith(OUTCOME_KEY)) {
        void this.#settleOutcome(item.key.slice(OUTCOME_KEY.length));
      } else void this.#settleRetry(item.key.slice(RETRY_KEY.length));
    }
    if (jobs.length > 0) void this.#settleJobs(jobs);
  }

  /** The timer's wake-up: a throw here would end the timer for good, so it stops the node. */
  #wake(): void {
    try {
      this.#o.fault?.("timer.wake");
      this.#pump();
    } catch (error) {
      this.#die("timer", error);
    }
  }

  #die(loop: "timer" | "dispatcher", error: unknown): void {
    if (this.#fatal) return;
    this.#fatal = true;
    this.#running = false;
    this.#timer.stop();
    this.#o.onFatal?.(loop, error instanceof Error ? error : new Error(String(error)));
  }

  /**
   * A proposal for the timer entry `key` failed: log errors other than a failed log (the node
   * stops then), put the entry back with backoff so nothing is dropped, and count it.
   */
  #proposalFailed(what: ProposalKind, key: string, error: unknown): void {
    if (error instanceof LogFailedError || !this.#running) return;
    if (!isProposalError(error)) {
      this.#die("dispatcher", error);
      return;
    }
    const failures = (this.#proposalFailures.get(key) ?? 0) + 1;
    this.#proposalFailures.set(key, failures);
    const delay_ms = Math.min(
      PROPOSAL_RETRY_MAX_MS,
      PROPOSAL_RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 16),
    );
    this.#o.logger.warn(`proposal failed; retrying`, {
      what,
      key,
      failures,
      retry_in_ms: delay_ms,
      error: (error as Error).message,
    });
    this.#o.metrics?.proposalRetry(what);
    if (!this.#timer.has(key)) this.#timer.set(key, this.#o.clock.now() + delay_ms);
  }

  #settled(count: number): void {
    this.#settling -= count;
    this.#pump();
  }

  /**
   * Settles the due jobs `ids`. The replicated state says when each is due (the timer only wakes
   * the scheduler, and a retried entry wakes later than its fire time); one that is not due any
   * more was moved by a command the timer follows already.
   */
  async #settleJobs(ids: string[]): Promise<void> {
    const commands: Command[] = [];
    try {
      const now = this.#o.clock.now();
      const dueIds = ids.filter((id) => {
        const next = this.#o.state.jobs.get(id)?.next_fire_at ?? null;
        return next !== null && next <= now;
      });
      const rows = await this.#loadJobs(dueIds);
      for (const job of rows.values()) {
        const entry = this.#o.state.jobs.get(job.id);
        if (entry === undefined || entry.next_fire_at === null) continue;
        commands.push(this.#advanceCommand(job, entry.next_fire_at, runningCount(entry) > 0));
      }
      if (commands.length === 0) return;
      for (const job of rows.values()) this.#settlingRows.set(job.id, job);
      try {
        const results = await this.#o.log.propose(commands);
        this.#countOccurrences(commands, results);
        for (const job_id of rows.keys()) this.#proposalFailures.delete(JOB_KEY + job_id);
      } finally {
        for (const job_id of rows.keys()) this.#settlingRows.delete(job_id);
      }
    } catch (error) {
      if (commands.length === 0) this.#die("dispatcher", error);
      for (const command of commands) {
        if (command.type === "job.advance") {
          this.#proposalFailed("advance", JOB_KEY + command.job_id, error);
        }
      }
    } finally {
      this.#settled(ids.length);
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
      this.#proposalFailures.delete(RETRY_KEY + execution_id);
      if (!result.ok) this.#redelivering.delete(execution_id);
    } catch (error) {
      this.#proposalFailed("attempt", RETRY_KEY + execution_id, error);
    } finally {
      this.#settled(1);
    }
  }

  /** Proposes again an outcome whose first proposal failed. */
  async #settleOutcome(execution_id: string): Promise<void> {
    const command = this.#unrecorded.get(execution_id);
    try {
      if (command === undefined) return;
      await this.#o.log.propose([{ ...command, at: this.#o.clock.now() }]);
      this.#unrecorded.delete(execution_id);
      this.#proposalFailures.delete(OUTCOME_KEY + execution_id);
    } catch (error) {
      this.#proposalFailed("finish", OUTCOME_KEY + execution_id, error);
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
      this.#o.fault?.("dispatch");
      const job = this.#settlingRows.get(exec.job_id) ??
        (await this.#loadJobs([exec.job_id])).get(exec.job_id);
      if (job === undefined) return;
      const started = this.#o.clock.now();
      if (attempt === 1 && !redelivery && exec.trigger !== "manual") {
        this.#o.metrics?.lateness(Math.max(0, started - exec.scheduled_at) / 1_000);
      }
      const result = await this.#o.dispatcher.run({
        job,
        execution_id,
        scheduled_at_ms: exec.scheduled_at,
        attempt,
        redelivery,
      }, controller.signal);
      this.#o.metrics?.delivery(
        result.ok ? "success" : result.aborted ? "aborted" : "failure",
        result.error_class,
      );
      if (result.aborted) return;
      await this.#recordOutcome(execution_id, attempt, job, result);
    } catch (error) {
      this.#die("dispatcher", error);
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
    result: AttemptResult,
  ): Promise<void> {
    const now = this.#o.clock.now();
    const retry_at = nextAttemptAt(
      result,
      attempt,
      job.max_attempts,
      this.#o.backoff,
      (this.#o.random ?? Math.random)(),
      now,
    );
    if (!result.ok) {
      this.#o.logger.warn("delivery failed", {
        job_id: job.id,
        execution_id,
        attempt,
        error_class: result.error_class,
        status_code: result.status_code,
        retry_in_ms: retry_at === null ? null : retry_at - now,
      });
    }
    const command: FinishCommand = {
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
        worker_id: result.worker_id ?? null,
      },
      retry_at,
    };
    await new Promise<void>((resolve, reject) => {
      this.#outcomes.push({ command, resolve, reject });
      if (this.#outcomes.length > 1) return;
      if (this.#outcomeChannelOpen) this.#outcomeChannel.port2.postMessage(null);
      else void this.#recordOutcomes();
    });
  }

  /**
   * Records the outcomes of the attempts that ended in the last turn of the event loop, many
   * `exec.finish` in one proposal (at 1,000 deliveries a second, tens of responses are read in
   * one turn). It does not wait for an earlier outcome proposal to commit: the log groups
   * proposals into its next commit itself. An outcome whose proposal fails is kept and proposed
   * again with backoff (`#settleOutcome`).
   */
  async #recordOutcomes(): Promise<void> {
    const batch = this.#outcomes;
    this.#outcomes = [];
    if (batch.length === 0) return;
    try {
      await this.#o.log.propose(batch.map((pending) => pending.command));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) {
        if (!isProposalError(error)) {
          pending.reject(error);
          continue;
        }
        const execution_id = pending.command.execution_id;
        this.#unrecorded.set(execution_id, pending.command);
        this.#proposalFailed("finish", OUTCOME_KEY + execution_id, error);
        pending.resolve();
      }
    }
  }

  async #loadJobs(ids: string[]): Promise<Map<string, JobRecord>> {
    const found = new Map<string, JobRecord>();
    for (const chunk of fixedChunks(ids)) {
      const rows = await this.#o.db.query(
        `SELECT * FROM jobs WHERE id IN (${chunk.map(() => "?").join(",")})`,
        chunk,
      );
      for (const row of rows) {
        const job = rowToJob(row as unknown as Parameters<typeof rowToJob>[0]);
        found.set(job.id, job);
      }
    }
    return found;
  }

  #schedulePrune(delay_ms: number): void {
    this.#pruneTimer = this.#o.clock.setTimeout(() => {
      if (!this.#running) return;
      const now = this.#o.clock.now();
      // A failed prune is made again at the next one: nothing is lost meanwhile.
      this.#o.log.propose([{
        type: "history.prune",
        at: now,
        before: now - this.#o.history.retention_ms,
        per_job_max: this.#o.history.per_job_max,
      }]).catch((error) => {
        if (!(error instanceof LogFailedError)) {
          this.#o.logger.warn("pruning history failed", { error: (error as Error).message });
        }
      });
      this.#schedulePrune(PRUNE_EVERY_MS);
    }, delay_ms);
  }
}

/** An error a proposal meets when the log cannot take it now, and may later. */
function isProposalError(error: unknown): boolean {
  return error instanceof LogOverloadedError || error instanceof NotLeaderError ||
    error instanceof LogRefusedError || error instanceof LogFailedError;
}
