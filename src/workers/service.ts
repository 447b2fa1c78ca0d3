/**
 * What the API asks of the workers: registrations and changes of state become commands proposed
 * to the log; heartbeats go to the leader's memory; reads come from the applied state, on any
 * node, so a worker polls the node of its own region. `allocationsFor` is the long poll: it
 * answers at once when allocations wait for the worker, or when one is placed on it, or at the end
 * of the wait.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Database } from "../db/open.ts";
import { ConflictError, NotFoundError, ValidationError } from "../errors.ts";
import { type CommandLog, LogRefusedError } from "../log/command_log.ts";
import type { ApplyResult } from "../log/state_machine.ts";
import type { Resources } from "../placement/types.ts";
import type { WorkerCommand, WorkerEffect } from "./commands.ts";
import type { Heartbeat, WorkerLeader } from "./leader.ts";
import type { AllocationOutcome, AllocationRecord, WorkerRecord, WorkerSpec } from "./model.ts";
import type { WorkersState } from "./state.ts";
import {
  type AllocationQuery,
  getAllocation,
  latestAllocation,
  listAllocations,
} from "./tables.ts";

/** A worker with what is allocated on it and, on the leader, its latest heartbeat. */
export interface WorkerInfo {
  worker: WorkerRecord;
  allocated: Resources;
  allocations: number;
  heartbeat: Heartbeat | null;
}

export interface WorkersServiceOptions {
  /** The leader's worker duties, when this node leads now. */
  leader: () => WorkerLeader | null;
  /** `WORKER_TTL`, told to workers with every heartbeat answer. */
  ttl_ms: number;
}

/** How often a worker should heartbeat: three times per TTL. */
const HEARTBEATS_PER_TTL = 3;
/** Longest long poll. */
export const POLL_WAIT_MS_MAX = 60_000;

export class WorkersService {
  readonly #db: Database;
  readonly #log: CommandLog<WorkerCommand, WorkerEffect>;
  readonly #state: WorkersState;
  readonly #clock: Clock;
  readonly #o: WorkersServiceOptions;
  readonly #polls = new Map<string, Set<() => void>>();
  readonly #unsubscribe: () => void;

  constructor(
    db: Database,
    log: CommandLog<WorkerCommand, WorkerEffect>,
    state: WorkersState,
    clock: Clock,
    options: WorkersServiceOptions,
  ) {
    this.#db = db;
    this.#log = log;
    this.#state = state;
    this.#clock = clock;
    this.#o = options;
    this.#unsubscribe = log.onEffects((effects) => {
      for (const e of effects) {
        if (e.kind !== "alloc_changed" || e.status !== "placed" || e.worker_id === null) continue;
        for (const wake of this.#polls.get(e.worker_id) ?? []) wake();
      }
    });
  }

  /** Stops following the log (the node is stopping). */
  close(): void {
    this.#unsubscribe();
    for (const wakes of this.#polls.values()) for (const wake of wakes) wake();
  }

  async register(spec: WorkerSpec): Promise<{ worker: WorkerInfo; created: boolean }> {
    const created = !this.#state.workers.has(spec.id);
    await this.#run({ type: "worker.register", at: this.#clock.now(), worker: spec });
    return { worker: this.get(spec.id), created };
  }

  heartbeat(
    worker_id: string,
    usage: Heartbeat["usage"],
  ): { status: string; ttl_ms: number; heartbeat_ms: number } {
    const leader = this.#o.leader();
    if (leader === null) {
      throw new LogRefusedError(
        "this node does not lead workers yet (a new leader); retry shortly",
      );
    }
    const answer = leader.heartbeat(worker_id, usage);
    return { ...answer, heartbeat_ms: Math.floor(this.#o.ttl_ms / HEARTBEATS_PER_TTL) };
  }

  async drain(worker_id: string): Promise<WorkerInfo> {
    this.get(worker_id);
    if (this.#state.workers.get(worker_id)!.status !== "draining") {
      await this.#run({
        type: "worker.status",
        at: this.#clock.now(),
        worker_id,
        status: "draining",
        reason: "drained: no new placements, what runs finishes",
      });
    }
    return this.get(worker_id);
  }

  async remove(worker_id: string): Promise<void> {
    await this.#run({ type: "worker.remove", at: this.#clock.now(), worker_id });
  }

  list(): WorkerInfo[] {
    return [...this.#state.workers.keys()].sort().map((id) => this.get(id));
  }

  get(worker_id: string): WorkerInfo {
    const worker = this.#state.workers.get(worker_id);
    if (worker === undefined) throw new NotFoundError(`worker ${worker_id} is not registered`);
    const allocated = this.#state.allocated(worker_id);
    return {
      worker,
      allocated,
      allocations: this.#state.heldOn(worker_id),
      heartbeat: this.#o.leader()?.lastHeartbeat(worker_id) ?? null,
    };
  }

  /** The worker's allocations waiting to start; waits up to `wait_ms` for one. */
  async allocationsFor(
    worker_id: string,
    wait_ms: number,
    signal: AbortSignal,
  ): Promise<AllocationRecord[]> {
    this.get(worker_id);
    let placed = this.#state.placedOn(worker_id);
    if (placed.length > 0 || wait_ms <= 0) return placed;
    await new Promise<void>((resolve) => {
      const wakes = this.#polls.get(worker_id) ?? new Set();
      this.#polls.set(worker_id, wakes);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        wakes.delete(done);
        if (wakes.size === 0) this.#polls.delete(worker_id);
        resolve();
      };
      const timer = setTimeout(done, Math.min(wait_ms, POLL_WAIT_MS_MAX));
      signal.addEventListener("abort", done, { once: true });
      wakes.add(done);
    });
    placed = this.#state.placedOn(worker_id);
    return placed;
  }

  async start(alloc_id: string, worker_id: string): Promise<AllocationRecord> {
    await this.#run({ type: "alloc.start", at: this.#clock.now(), alloc_id, worker_id });
    return this.#state.active.get(alloc_id) ?? (await this.allocation(alloc_id));
  }

  async finish(alloc_id: string, worker_id: string, outcome: AllocationOutcome): Promise<void> {
    await this.#run({ type: "alloc.finish", at: this.#clock.now(), alloc_id, worker_id, outcome });
  }

  async allocation(alloc_id: string): Promise<AllocationRecord> {
    const a = this.#state.active.get(alloc_id) ?? await getAllocation(this.#db, alloc_id);
    if (a === null) throw new NotFoundError(`allocation ${alloc_id} does not exist`);
    return a;
  }

  allocations(query: AllocationQuery): Promise<AllocationRecord[]> {
    return listAllocations(this.#db, query);
  }

  /** The job's newest allocation: its last placement decision and its explanation. */
  latestPlacement(job_id: string): Promise<AllocationRecord | null> {
    return latestAllocation(this.#db, job_id);
  }

  async #run(command: WorkerCommand): Promise<void> {
    const [result] = await this.#log.propose([command]);
    check(result);
  }
}

function check(result: ApplyResult): void {
  if (result.ok) return;
  if (result.code === "not_found") throw new NotFoundError(result.message);
  if (result.code === "invalid") throw new ValidationError(result.message);
  throw new ConflictError(result.message);
}
