/**
 * What only the leader does for workers, started and stopped with firing:
 *
 * - dispatch: the scheduler hands each attempt of a worker job here (`Dispatcher.run`); it is
 *   placed with the placement engine on the replicated `Fleet` and recorded as `alloc.create`
 *   (placed, or pending with the engine's explanation), and the attempt resolves when the
 *   allocation's outcome is applied. A lost allocation (lease run out, worker lost or removed) is
 *   placed again with the same idempotency key, away from the worker that lost it when possible.
 *   A new leader picks up the allocations of the executions it redelivers instead of placing them
 *   twice, and answers at once for one that ended while leadership moved.
 * - pending work: whenever capacity appears, pending allocations are placed, oldest first.
 * - leases: a timer per placed or running allocation proposes `alloc.expire` when it runs out.
 * - liveness: heartbeats stay in memory; a worker silent for `ttl_ms` is marked lost (a command).
 *   A new leader gives every worker one `ttl_ms` of grace first.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock.ts";
import { NotFoundError } from "../errors.ts";
import type { CommandLog } from "../log/command_log.ts";
import { explanationText, place } from "../placement/engine.ts";
import { PlacementRequestError } from "../placement/errors.ts";
import type { Constraint, PlacementRequest, Strategy } from "../placement/types.ts";
import type { Logger } from "../logger.ts";
import type { Attempt, AttemptResult, Dispatcher } from "../scheduler/dispatcher.ts";
import { ulid } from "../scheduler/ids.ts";
import type { JobRecord } from "../scheduler/model.ts";
import { TimerQueue } from "../scheduler/timer.ts";
import { idempotencyKey } from "../scheduler/webhook/signing.ts";
import type { WorkerCommand, WorkerEffect } from "./commands.ts";
import type { AllocationOutcome, AllocationRecord } from "./model.ts";
import type { WorkersState } from "./state.ts";
import { latestAllocationOf } from "./tables.ts";
import type { Database } from "../db/open.ts";

/** What the leader reports for metrics. */
export interface WorkersMetrics {
  placement(outcome: "placed" | "pending" | "replaced" | "invalid", seconds: number): void;
  dispatchLatency(seconds: number): void;
}

export interface WorkerLeaderOptions {
  clock: Clock;
  log: CommandLog<WorkerCommand, WorkerEffect>;
  state: WorkersState;
  db: Database;
  logger: Logger;
  metrics?: WorkersMetrics;
  /** Reads the jobs of pending allocations (their executor says where they may go). */
  loadJobs: (ids: string[]) => Promise<Map<string, JobRecord>>;
  /** `WORKER_TTL`: a worker silent this long is lost. */
  ttl_ms: number;
  /** `JOB_INPROGRESS_TIMEOUT`: the lease of an executor without `lease_seconds`. */
  default_lease_ms: number;
  /** `PLACEMENT_STRATEGY`: the strategy of an executor without one. */
  default_strategy: Strategy;
  /** Uniform [0, 1) source of placement seeds. */
  random?: () => number;
}

/** The latest heartbeat of a worker. */
export interface Heartbeat {
  at_ms: number;
  usage: { cpu_percent: number; memory_percent: number; rps: number; running: string[] };
}

/** An attempt waiting for its allocations. */
interface Waiting {
  attempt: Attempt;
  resolve: (result: AttemptResult) => void;
  /** Allocations wanted for the attempt (the executor's count; `all`: what fitted first). */
  wanted: number;
  /** Outcomes of its allocations that ended, by allocation id. */
  outcomes: Map<string, AllocationOutcome>;
  dispatched_ms: number;
}

/** Attempts placed again at most this often in a row before the leader waits for capacity. */
const REPLACE_TRIES_MAX = 3;
const LIVENESS_EVERY_MS_MAX = 1_000;

const aborted: AttemptResult = {
  ok: false,
  status_code: null,
  error_class: null,
  error: "stopped",
  retryable: false,
  aborted: true,
  duration_ms: 0,
  response_excerpt: null,
};

function resultOf(outcomes: AllocationOutcome[], worker_id: string | null): AttemptResult {
  const failed = outcomes.find((o) => !o.ok);
  const last = failed ?? outcomes[outcomes.length - 1];
  return {
    ok: failed === undefined,
    status_code: last.status_code,
    error_class: failed === undefined ? null : "worker_error",
    error: failed === undefined
      ? null
      : failed.error ?? (failed.exit_code !== null ? `exit code ${failed.exit_code}` : "failed"),
    retryable: failed !== undefined,
    aborted: false,
    duration_ms: Math.max(...outcomes.map((o) => o.duration_ms)),
    response_excerpt: last.output_excerpt,
    worker_id,
  };
}

const keyOf = (execution_id: string, attempt: number) => `${execution_id}:${attempt}`;

export class WorkerLeader implements Dispatcher {
  readonly #o: WorkerLeaderOptions;
  readonly #waiting = new Map<string, Waiting>();
  readonly #heartbeats = new Map<string, Heartbeat>();
  readonly #leases: TimerQueue;
  #unsubscribe: () => void = () => {};
  #liveness: TimerHandle | null = null;
  #started_ms = 0;
  #running = false;
  #placing_pending = false;
  #pending_again = false;

  constructor(options: WorkerLeaderOptions) {
    this.#o = options;
    this.#leases = new TimerQueue(options.clock, () => this.#expireDue());
  }

  /** Arms the leases of the active allocations, places what is pending, watches liveness. */
  start(): void {
    this.#running = true;
    this.#started_ms = this.#o.clock.now();
    this.#unsubscribe = this.#o.log.onEffects((effects) => this.#onEffects(effects));
    for (const a of this.#o.state.active.values()) {
      if (a.lease_expires_at !== null) this.#leases.set(a.id, a.lease_expires_at);
    }
    this.#scheduleLiveness();
    void this.#placePending();
  }

  /** Stops leading: waiting attempts resolve as aborted (the next leader redelivers them). */
  stop(): void {
    this.#running = false;
    this.#unsubscribe();
    this.#leases.stop();
    if (this.#liveness !== null) this.#o.clock.clearTimeout(this.#liveness);
    for (const w of this.#waiting.values()) w.resolve(aborted);
    this.#waiting.clear();
  }

  /** Records a heartbeat; a worker the cluster does not know (or lost) must register again. */
  heartbeat(worker_id: string, usage: Heartbeat["usage"]): { status: string; ttl_ms: number } {
    const worker = this.#o.state.workers.get(worker_id);
    if (worker === undefined || worker.status === "lost") {
      throw new NotFoundError(
        worker === undefined
          ? `worker ${worker_id} is not registered: register it (POST /workers)`
          : `worker ${worker_id} was marked lost (${worker.status_reason}): register it again`,
      );
    }
    this.#heartbeats.set(worker_id, { at_ms: this.#o.clock.now(), usage });
    return { status: worker.status, ttl_ms: this.#o.ttl_ms };
  }

  /** The latest heartbeat of a worker, as this leader saw it. */
  lastHeartbeat(worker_id: string): Heartbeat | undefined {
    return this.#heartbeats.get(worker_id);
  }

  run(attempt: Attempt, signal: AbortSignal): Promise<AttemptResult> {
    const key = keyOf(attempt.execution_id, attempt.attempt);
    return new Promise<AttemptResult>((resolve) => {
      const waiting: Waiting = {
        attempt,
        resolve: (result) => {
          this.#waiting.delete(key);
          signal.removeEventListener("abort", onAbort);
          resolve(result);
        },
        wanted: 1,
        outcomes: new Map(),
        dispatched_ms: this.#o.clock.now(),
      };
      const onAbort = () => {
        waiting.resolve(aborted);
        this.#o.log.propose([{
          type: "alloc.cancel",
          at: this.#o.clock.now(),
          execution_id: attempt.execution_id,
          reason: `the execution stopped (${String(signal.reason ?? "aborted")})`,
        }]).catch(() => {});
      };
      if (signal.aborted) return resolve(aborted);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.set(key, waiting);
      void this.#dispatch(waiting);
    });
  }

  /** Places the attempt unless allocations of it are active, or it ended meanwhile. */
  async #dispatch(w: Waiting): Promise<void> {
    const { attempt } = w;
    const active = this.#o.state.activeOf(attempt.execution_id)
      .filter((a) => a.attempt === attempt.attempt);
    if (active.length > 0) {
      w.wanted = active.length;
      return;
    }
    if (attempt.redelivery) {
      const last = await latestAllocationOf(this.#o.db, attempt.execution_id, attempt.attempt);
      if (last?.outcome != null && (last.status === "completed" || last.status === "failed")) {
        w.resolve(resultOf([last.outcome], last.worker_id));
        return;
      }
    }
    const count = attempt.job.executor!.count;
    await this.#placeNew(w, count, [], null);
  }

  /**
   * Places `count` new allocations of the attempt (`all`: every worker that fits), away from
   * `busy` workers (required) and `avoid` (preferred). What does not fit waits as pending.
   */
  async #placeNew(
    w: Waiting,
    count: number | "all",
    busy: string[],
    avoid: string | null,
  ): Promise<void> {
    const { attempt } = w;
    const started = performance.now();
    for (let tries = 0; tries < REPLACE_TRIES_MAX && this.#running; tries++) {
      const request = this.#request(attempt.job, count, busy, avoid);
      let decision;
      try {
        decision = place(this.#o.state.fleet, request, { seed: this.#seed() });
      } catch (error) {
        if (!(error instanceof PlacementRequestError)) throw error;
        this.#o.metrics?.placement("invalid", (performance.now() - started) / 1_000);
        w.resolve({
          ok: false,
          status_code: null,
          error_class: "worker_error",
          error: `the job's executor cannot be placed: ${error.message}`,
          retryable: false,
          aborted: false,
          duration_ms: 0,
          response_excerpt: null,
        });
        return;
      }
      const placements = decision.placements;
      const pending = count === "all" ? (placements.length === 0 ? 1 : 0) : decision.unplaced;
      if (w.outcomes.size === 0 && busy.length === 0) w.wanted = placements.length + pending;
      const explanation = pending > 0 ? explanationText(decision.explanation) : null;
      const commands: WorkerCommand[] = [
        ...placements.map((p) => this.#create(attempt, p.worker_id, p.score, null)),
        ...Array.from({ length: pending }, () => this.#create(attempt, null, null, explanation)),
      ];
      try {
        const results = await this.#o.log.propose(commands);
        if (results.every((r) => r.ok)) {
          const seconds = (performance.now() - started) / 1_000;
          for (let i = 0; i < placements.length; i++) {
            this.#o.metrics?.placement(busy.length > 0 ? "replaced" : "placed", seconds);
          }
          for (let i = 0; i < pending; i++) this.#o.metrics?.placement("pending", seconds);
          if (pending > 0) {
            this.#o.logger.info("allocation pending: no worker fits", {
              job_id: attempt.job.id,
              execution_id: attempt.execution_id,
              explanation,
            });
          }
          return;
        }
      } catch (error) {
        this.#o.logger.warn("placing an allocation failed; the next leader places it", {
          execution_id: attempt.execution_id,
          error: (error as Error).message,
        });
        return;
      }
      // Some placement met a fleet that had changed (a stale decision): place again.
    }
  }

  #create(
    attempt: Attempt,
    worker_id: string | null,
    score: number | null,
    explanation: string | null,
  ): WorkerCommand {
    const now = this.#o.clock.now();
    const e = attempt.job.executor!;
    return {
      type: "alloc.create",
      at: now,
      alloc: {
        id: ulid(now),
        job_id: attempt.job.id,
        execution_id: attempt.execution_id,
        attempt: attempt.attempt,
        scheduled_at: attempt.scheduled_at_ms,
        resources: e.resources,
        job_labels: e.labels,
        lease_ms: e.lease_seconds === null ? this.#o.default_lease_ms : e.lease_seconds * 1_000,
        idempotency_key: idempotencyKey(attempt.job.id, attempt.scheduled_at_ms),
        worker_id,
        score,
        explanation,
      },
    };
  }

  #request(
    job: JobRecord,
    count: number | "all",
    busy: string[],
    avoid: string | null,
  ): PlacementRequest {
    const e = job.executor!;
    const constraints: Constraint[] = [...e.constraints];
    if (busy.length > 0) {
      constraints.push({ attribute: "worker.id", operator: "not_in", values: busy });
    }
    if (avoid !== null) {
      constraints.push({
        attribute: "worker.id",
        operator: "!=",
        value: avoid,
        mode: "preferred",
        weight: 50,
      });
    }
    return {
      job_id: job.id,
      job_labels: e.labels,
      pool: e.pool ?? undefined,
      resources: e.resources,
      constraints,
      affinity: e.affinity,
      anti_affinity: e.anti_affinity,
      tolerations: e.tolerations,
      spread: e.spread ?? undefined,
      strategy: e.strategy ?? this.#o.default_strategy,
      count,
    };
  }

  #seed(): number {
    return Math.floor((this.#o.random ?? Math.random)() * 2 ** 32) >>> 0;
  }

  #onEffects(effects: readonly WorkerEffect[]): void {
    let capacity = false;
    for (const effect of effects) {
      if (effect.kind === "capacity_freed") capacity = true;
      if (effect.kind !== "alloc_changed") continue;
      if (effect.lease_expires_at !== null) {
        this.#leases.set(effect.alloc_id, effect.lease_expires_at);
      } else this.#leases.delete(effect.alloc_id);
      const w = this.#waiting.get(keyOf(effect.execution_id, effect.attempt));
      if (w === undefined) continue;
      if (effect.status === "running") {
        this.#o.metrics?.dispatchLatency(
          Math.max(0, this.#o.clock.now() - w.attempt.scheduled_at_ms) / 1_000,
        );
      }
      if (effect.status === "completed" || effect.status === "failed") {
        w.outcomes.set(effect.alloc_id, effect.outcome!);
        if (w.outcomes.size >= w.wanted) {
          w.resolve(resultOf([...w.outcomes.values()], effect.worker_id));
        }
      } else if (effect.status === "lost") {
        const busy = this.#o.state.activeOf(effect.execution_id)
          .filter((a) => a.attempt === effect.attempt && a.worker_id !== null)
          .map((a) => a.worker_id!);
        this.#o.logger.info("allocation lost; placing it again", {
          alloc_id: effect.alloc_id,
          execution_id: effect.execution_id,
          worker_id: effect.worker_id,
        });
        void this.#placeNew(w, 1, busy, effect.worker_id);
      } else if (effect.status === "cancelled") {
        w.resolve(aborted);
      }
    }
    if (capacity) void this.#placePending();
  }

  /** Places pending allocations, oldest first, while capacity lasts; one pass at a time. */
  async #placePending(): Promise<void> {
    if (this.#placing_pending) {
      this.#pending_again = true;
      return;
    }
    this.#placing_pending = true;
    try {
      do {
        this.#pending_again = false;
        await this.#placePendingOnce();
      } while (this.#pending_again && this.#running);
    } catch (error) {
      this.#o.logger.warn("placing pending allocations failed", {
        error: (error as Error).message,
      });
    } finally {
      this.#placing_pending = false;
    }
  }

  async #placePendingOnce(): Promise<void> {
    const pending = [...this.#o.state.active.values()].filter((a) => a.status === "pending");
    if (pending.length === 0 || !this.#running) return;
    const jobs = await this.#o.loadJobs([...new Set(pending.map((a) => a.job_id))]);
    const commands: WorkerCommand[] = [];
    const fleet = this.#o.state.fleet;
    const holds: { worker_id: string; job_id: string; resources: AllocationRecord["resources"] }[] =
      [];
    try {
      for (const a of pending) {
        const job = jobs.get(a.job_id);
        if (job?.executor == null) continue;
        const busy = this.#o.state.activeOf(a.execution_id)
          .filter((o) => o.attempt === a.attempt && o.worker_id !== null)
          .map((o) => o.worker_id!);
        const decision = place(fleet, this.#request(job, 1, busy, null), { seed: this.#seed() });
        const chosen = decision.placements[0];
        if (chosen === undefined) continue;
        // Held here until the commands are proposed, so the next pending one sees it taken.
        const hold = { worker_id: chosen.worker_id, job_id: a.job_id, resources: a.resources };
        fleet.hold(hold);
        holds.push(hold);
        commands.push({
          type: "alloc.place",
          at: this.#o.clock.now(),
          alloc_id: a.id,
          worker_id: chosen.worker_id,
          score: chosen.score,
        });
      }
    } finally {
      for (const hold of holds) fleet.release(hold);
    }
    if (commands.length > 0) await this.#o.log.propose(commands);
  }

  #expireDue(): void {
    if (!this.#running) return;
    const due = this.#leases.takeDue(1_000);
    const commands: WorkerCommand[] = [];
    for (const { key } of due) {
      const a = this.#o.state.active.get(key);
      if (a === undefined || a.lease_expires_at === null) continue;
      commands.push({
        type: "alloc.expire",
        at: Math.max(this.#o.clock.now(), a.lease_expires_at),
        alloc_id: a.id,
        expected_status: a.status,
      });
    }
    if (commands.length > 0) {
      this.#o.log.propose(commands).catch((error) =>
        this.#o.logger.warn("expiring leases failed; retried at the next change", {
          error: (error as Error).message,
        })
      );
    }
  }

  #scheduleLiveness(): void {
    const every = Math.min(LIVENESS_EVERY_MS_MAX, Math.max(50, Math.floor(this.#o.ttl_ms / 4)));
    this.#liveness = this.#o.clock.setTimeout(() => {
      if (!this.#running) return;
      this.#checkLiveness();
      this.#scheduleLiveness();
    }, every);
  }

  #checkLiveness(): void {
    const now = this.#o.clock.now();
    const commands: WorkerCommand[] = [];
    for (const worker of this.#o.state.workers.values()) {
      if (worker.status === "lost") continue;
      // Silent since its last heartbeat, its registration, or this leader's start (the grace).
      const last = Math.max(
        this.#heartbeats.get(worker.id)?.at_ms ?? 0,
        worker.updated_at,
        this.#started_ms,
      );
      if (now - last <= this.#o.ttl_ms) continue;
      commands.push({
        type: "worker.status",
        at: now,
        worker_id: worker.id,
        status: "lost",
        reason: `no heartbeat for ${now - last} ms (WORKER_TTL ${this.#o.ttl_ms} ms)`,
      });
    }
    if (commands.length === 0) return;
    this.#o.logger.warn("workers lost", { workers: commands.length });
    this.#o.log.propose(commands).catch((error) =>
      this.#o.logger.warn("marking workers lost failed; retried at the next check", {
        error: (error as Error).message,
      })
    );
  }
}
