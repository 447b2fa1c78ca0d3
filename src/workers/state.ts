/**
 * The workers' state machine: the registered workers, the active allocations, and the placement
 * engine's `Fleet` kept in step with them, so every node holds the same free capacity per worker
 * (capacity minus what its placed and running allocations hold) and the leader places on it
 * without rescanning allocations.
 *
 * Error model: `apply` never throws for a command that does not fit the state. Each check comes
 * before any change, and a command that fails one is a deterministic result: `not_found` (no such
 * worker or allocation), `conflict` (the allocation is not this worker's to start or finish any
 * more: the agent skips it), `stale` (the placement was decided on a fleet that has changed: the
 * leader places again). A throw from here is a bug, and the node stops (`src/node/vitals.ts`).
 *
 * @module
 */
import type { InStatement } from "@libsql/client/node";
import type { Database } from "../db/open.ts";
import type { Applied, ApplyErrorCode, StateMachine } from "../log/state_machine.ts";
import { Fleet } from "../placement/fleet.ts";
import { type Hold, RESOURCE_NAMES, type Resources, type WorkerView } from "../placement/types.ts";
import { checkWorkerCommands } from "./command_codec.ts";
import {
  type NewAllocation,
  WORKER_COMMAND_TYPES,
  type WorkerCommand,
  type WorkerEffect,
} from "./commands.ts";
import type {
  AllocationOutcome,
  AllocationRecord,
  AllocationStatus,
  WorkerRecord,
} from "./model.ts";
import {
  deleteWorker,
  endAllocation,
  insertAllocation,
  loadWorkersIndex,
  placeAllocation,
  setWorkerStatus,
  startAllocation,
  upsertWorker,
} from "./tables.ts";

type Result = Applied<WorkerEffect>;

function fail(code: ApplyErrorCode, message: string): Result {
  return { result: { ok: false, code, message }, statements: [], effects: [] };
}

const holdOf = (a: AllocationRecord): Hold => ({
  worker_id: a.worker_id!,
  job_id: a.job_id,
  job_labels: a.job_labels,
  resources: a.resources,
});

function changed(a: AllocationRecord): WorkerEffect {
  return {
    kind: "alloc_changed",
    alloc_id: a.id,
    execution_id: a.execution_id,
    attempt: a.attempt,
    worker_id: a.worker_id,
    status: a.status,
    lease_expires_at: a.lease_expires_at,
    outcome: a.outcome,
  };
}

export class WorkersState implements StateMachine<WorkerCommand, WorkerEffect> {
  readonly command_types = WORKER_COMMAND_TYPES;
  readonly workers = new Map<string, WorkerRecord>();
  /** Allocations that are pending, placed or running, in creation order. */
  readonly active = new Map<string, AllocationRecord>();
  /** Active allocation ids per worker. */
  readonly #on_worker = new Map<string, Set<string>>();
  /** Active allocation ids per execution. */
  readonly #of_execution = new Map<string, Set<string>>();
  /** The placement engine's view of the workers, kept in step by every command. */
  fleet = new Fleet();

  check(commands: readonly unknown[]): WorkerCommand[] {
    return checkWorkerCommands(commands);
  }

  async load(db: Database): Promise<void> {
    this.workers.clear();
    this.active.clear();
    this.#on_worker.clear();
    this.#of_execution.clear();
    const { workers, active } = await loadWorkersIndex(db);
    for (const w of workers) this.workers.set(w.id, w);
    for (const a of active) {
      this.#activate(a);
      if (a.worker_id !== null && a.status !== "pending") this.#onWorker(a.worker_id).add(a.id);
    }
    this.fleet = new Fleet(workers.map((w) => this.#view(w)));
  }

  /** The active allocations of an execution. */
  activeOf(execution_id: string): AllocationRecord[] {
    return [...this.#of_execution.get(execution_id) ?? []].map((id) => this.active.get(id)!);
  }

  /** How many placed or running allocations a worker has. */
  heldOn(worker_id: string): number {
    return this.#on_worker.get(worker_id)?.size ?? 0;
  }

  /** The allocations placed on `worker_id` and waiting for it to start them. */
  placedOn(worker_id: string): AllocationRecord[] {
    const ids = this.#on_worker.get(worker_id);
    if (ids === undefined) return [];
    return [...ids].map((id) => this.active.get(id)!).filter((a) => a.status === "placed");
  }

  /** What the workers' allocations hold, summed per worker: capacity minus free. */
  allocated(worker_id: string): Resources {
    const sum: Resources = { cpu_millis: 0, memory_mb: 0, disk_mb: 0, slots: 0 };
    for (const id of this.#on_worker.get(worker_id) ?? []) {
      const a = this.active.get(id)!;
      for (const r of RESOURCE_NAMES) sum[r] += a.resources[r];
    }
    return sum;
  }

  apply(cmd: WorkerCommand): Result {
    switch (cmd.type) {
      case "worker.register":
        return this.#register(cmd);
      case "worker.status":
        return this.#status(cmd);
      case "worker.remove":
        return this.#remove(cmd);
      case "alloc.create":
        return this.#create(cmd.alloc, cmd.at);
      case "alloc.place":
        return this.#place(cmd);
      case "alloc.start":
        return this.#start(cmd);
      case "alloc.finish":
        return this.#finish(cmd);
      case "alloc.expire":
        return this.#expire(cmd);
      case "alloc.cancel":
        return this.#cancel(cmd);
    }
  }

  /**
   * A registration makes the worker ready with its (new) spec. A worker that registers again is
   * a new agent: what it ran before is lost and placed again.
   */
  #register(cmd: Extract<WorkerCommand, { type: "worker.register" }>): Result {
    const existing = this.workers.get(cmd.worker.id);
    const statements: InStatement[] = [];
    const effects: WorkerEffect[] = [];
    if (existing !== undefined) {
      this.#loseAll(cmd.worker.id, "the worker registered again", cmd.at, statements, effects);
    }
    const record: WorkerRecord = {
      ...cmd.worker,
      status: "ready",
      status_reason: null,
      registered_at: existing?.registered_at ?? cmd.at,
      updated_at: cmd.at,
    };
    this.workers.set(record.id, record);
    this.fleet.upsert(this.#view(record));
    statements.push(upsertWorker(cmd.worker, cmd.at, record.registered_at));
    effects.push({ kind: "worker_changed", worker_id: record.id, status: "ready" });
    effects.push({ kind: "capacity_freed" });
    return { result: { ok: true }, statements, effects };
  }

  #status(cmd: Extract<WorkerCommand, { type: "worker.status" }>): Result {
    const worker = this.workers.get(cmd.worker_id);
    if (worker === undefined) return fail("not_found", `worker ${cmd.worker_id} is not registered`);
    if (worker.status === cmd.status) {
      return fail("conflict", `worker ${cmd.worker_id} is ${cmd.status} already`);
    }
    const statements: InStatement[] = [];
    const effects: WorkerEffect[] = [];
    if (cmd.status === "lost") {
      this.#loseAll(cmd.worker_id, `worker lost: ${cmd.reason}`, cmd.at, statements, effects);
    }
    worker.status = cmd.status;
    worker.status_reason = cmd.reason;
    worker.updated_at = cmd.at;
    this.fleet.setStatus(cmd.worker_id, cmd.status);
    statements.push(setWorkerStatus(cmd.worker_id, cmd.status, cmd.reason, cmd.at));
    effects.push({ kind: "worker_changed", worker_id: cmd.worker_id, status: cmd.status });
    if (cmd.status === "ready") effects.push({ kind: "capacity_freed" });
    return { result: { ok: true }, statements, effects };
  }

  #remove(cmd: Extract<WorkerCommand, { type: "worker.remove" }>): Result {
    if (!this.workers.has(cmd.worker_id)) {
      return fail("not_found", `worker ${cmd.worker_id} is not registered`);
    }
    const statements: InStatement[] = [];
    const effects: WorkerEffect[] = [];
    this.#loseAll(cmd.worker_id, "the worker was removed", cmd.at, statements, effects);
    this.workers.delete(cmd.worker_id);
    this.#on_worker.delete(cmd.worker_id);
    this.fleet.remove(cmd.worker_id);
    statements.push(deleteWorker(cmd.worker_id));
    effects.push({ kind: "worker_changed", worker_id: cmd.worker_id, status: "removed" });
    return { result: { ok: true }, statements, effects };
  }

  #create(alloc: NewAllocation, at: number): Result {
    if (this.active.has(alloc.id)) return fail("conflict", `allocation ${alloc.id} exists`);
    if (alloc.worker_id !== null) {
      const unfit = this.#unfit(alloc.worker_id, alloc.resources);
      if (unfit !== null) return fail("stale", unfit);
    }
    const placed = alloc.worker_id !== null;
    const record: AllocationRecord = {
      ...alloc,
      status: placed ? "placed" : "pending",
      lease_expires_at: placed ? at + alloc.lease_ms : null,
      created_at: at,
      placed_at: placed ? at : null,
      started_at: null,
      finished_at: null,
      outcome: null,
    };
    this.#activate(record);
    if (placed) this.#hold(record);
    return {
      result: { ok: true },
      statements: [insertAllocation(alloc, at)],
      effects: [changed(record)],
    };
  }

  #place(cmd: Extract<WorkerCommand, { type: "alloc.place" }>): Result {
    const a = this.active.get(cmd.alloc_id);
    if (a === undefined || a.status !== "pending") {
      return fail("stale", `allocation ${cmd.alloc_id} is not pending`);
    }
    const unfit = this.#unfit(cmd.worker_id, a.resources);
    if (unfit !== null) return fail("stale", unfit);
    a.status = "placed";
    a.worker_id = cmd.worker_id;
    a.score = cmd.score;
    a.placed_at = cmd.at;
    a.lease_expires_at = cmd.at + a.lease_ms;
    this.#hold(a);
    return {
      result: { ok: true },
      statements: [
        placeAllocation(a.id, cmd.worker_id, cmd.score, a.lease_expires_at, cmd.at),
      ],
      effects: [changed(a)],
    };
  }

  #start(cmd: Extract<WorkerCommand, { type: "alloc.start" }>): Result {
    const a = this.active.get(cmd.alloc_id);
    if (a === undefined) {
      return fail("conflict", `allocation ${cmd.alloc_id} is not active any more: skip it`);
    }
    // A start sent again (its first answer was lost while leadership moved) finds the
    // allocation running on the same worker: it is the same start, and the worker runs it.
    if (a.status === "running" && a.worker_id === cmd.worker_id) {
      return { result: { ok: true }, statements: [], effects: [] };
    }
    if (a.status !== "placed" || a.worker_id !== cmd.worker_id) {
      return fail(
        "conflict",
        `allocation ${cmd.alloc_id} is ${a.status} on ${
          a.worker_id ?? "no worker"
        }, not placed on ${cmd.worker_id}: skip it`,
      );
    }
    a.status = "running";
    a.started_at = cmd.at;
    a.lease_expires_at = cmd.at + a.lease_ms;
    return {
      result: { ok: true },
      statements: [startAllocation(a.id, a.lease_expires_at, cmd.at)],
      effects: [changed(a)],
    };
  }

  #finish(cmd: Extract<WorkerCommand, { type: "alloc.finish" }>): Result {
    const a = this.active.get(cmd.alloc_id);
    if (a === undefined || a.status !== "running" || a.worker_id !== cmd.worker_id) {
      return fail(
        "conflict",
        `allocation ${cmd.alloc_id} is not running on ${cmd.worker_id} (lost or reassigned): its outcome is not recorded`,
      );
    }
    const statements: InStatement[] = [];
    const effects: WorkerEffect[] = [];
    this.#end(
      a,
      cmd.outcome.ok ? "completed" : "failed",
      cmd.outcome,
      null,
      cmd.at,
      statements,
      effects,
    );
    return { result: { ok: true }, statements, effects };
  }

  #expire(cmd: Extract<WorkerCommand, { type: "alloc.expire" }>): Result {
    const a = this.active.get(cmd.alloc_id);
    if (
      a === undefined || a.status !== cmd.expected_status || a.lease_expires_at === null ||
      a.lease_expires_at > cmd.at
    ) {
      return fail("stale", `allocation ${cmd.alloc_id}'s lease has not run out`);
    }
    const statements: InStatement[] = [];
    const effects: WorkerEffect[] = [];
    const why = a.status === "placed"
      ? `not started within its lease of ${a.lease_ms} ms on worker ${a.worker_id}`
      : `not finished within its lease of ${a.lease_ms} ms on worker ${a.worker_id}`;
    this.#end(a, "lost", null, why, cmd.at, statements, effects);
    return { result: { ok: true }, statements, effects };
  }

  #cancel(cmd: Extract<WorkerCommand, { type: "alloc.cancel" }>): Result {
    const allocs = this.activeOf(cmd.execution_id);
    if (allocs.length === 0) {
      return fail("stale", `execution ${cmd.execution_id} has no active allocation`);
    }
    const statements: InStatement[] = [];
    const effects: WorkerEffect[] = [];
    for (const a of allocs) {
      this.#end(a, "cancelled", null, cmd.reason, cmd.at, statements, effects);
    }
    return { result: { ok: true }, statements, effects };
  }

  /** Why `resources` cannot go on `worker_id` now, or null when they fit. */
  #unfit(worker_id: string, resources: Resources): string | null {
    const worker = this.workers.get(worker_id);
    if (worker === undefined) return `worker ${worker_id} is not registered`;
    if (worker.status !== "ready") return `worker ${worker_id} is ${worker.status}`;
    const free = this.fleet.freeOf(worker_id)!;
    for (const r of RESOURCE_NAMES) {
      if (resources[r] > free[r]) {
        return `worker ${worker_id} has ${free[r]} ${r} free, ${resources[r]} wanted`;
      }
    }
    return null;
  }

  #hold(a: AllocationRecord): void {
    this.#onWorker(a.worker_id!).add(a.id);
    this.fleet.hold(holdOf(a));
  }

  /** Ends an active allocation, giving back what it held. */
  #end(
    a: AllocationRecord,
    status: AllocationStatus,
    outcome: AllocationOutcome | null,
    explanation: string | null,
    at: number,
    statements: InStatement[],
    effects: WorkerEffect[],
  ): void {
    const held = a.status !== "pending";
    if (held) {
      this.#on_worker.get(a.worker_id!)?.delete(a.id);
      this.fleet.release(holdOf(a));
    }
    this.active.delete(a.id);
    const ofExecution = this.#of_execution.get(a.execution_id);
    ofExecution?.delete(a.id);
    if (ofExecution?.size === 0) this.#of_execution.delete(a.execution_id);
    a.status = status;
    a.outcome = outcome;
    a.finished_at = at;
    a.lease_expires_at = null;
    if (explanation !== null) a.explanation = explanation;
    statements.push(endAllocation(a.id, status, outcome, explanation, at));
    effects.push(changed(a));
    if (held) effects.push({ kind: "capacity_freed" });
  }

  #loseAll(
    worker_id: string,
    why: string,
    at: number,
    statements: InStatement[],
    effects: WorkerEffect[],
  ): void {
    for (const id of [...(this.#on_worker.get(worker_id) ?? [])]) {
      this.#end(this.active.get(id)!, "lost", null, why, at, statements, effects);
    }
  }

  #activate(a: AllocationRecord): void {
    this.active.set(a.id, a);
    let ids = this.#of_execution.get(a.execution_id);
    if (ids === undefined) this.#of_execution.set(a.execution_id, ids = new Set());
    ids.add(a.id);
  }

  #onWorker(worker_id: string): Set<string> {
    let ids = this.#on_worker.get(worker_id);
    if (ids === undefined) this.#on_worker.set(worker_id, ids = new Set());
    return ids;
  }

  /** The engine's view of a worker: capacity minus what its active allocations hold. */
  #view(w: WorkerRecord): WorkerView {
    const held = this.allocated(w.id);
    const free = { ...w.capacity };
    const running_by_label: Record<string, number> = {};
    const running_by_job: Record<string, number> = {};
    for (const r of RESOURCE_NAMES) free[r] = Math.max(0, free[r] - held[r]);
    for (const id of this.#on_worker.get(w.id) ?? []) {
      const a = this.active.get(id)!;
      running_by_job[a.job_id] = (running_by_job[a.job_id] ?? 0) + 1;
      for (const [k, v] of Object.entries(a.job_labels)) {
        running_by_label[`${k}=${v}`] = (running_by_label[`${k}=${v}`] ?? 0) + 1;
      }
    }
    return {
      id: w.id,
      pool: w.pool,
      region: w.region,
      zone: w.zone,
      labels: w.labels,
      taints: w.taints,
      status: w.status,
      capacity: w.capacity,
      free,
      running_by_label,
      running_by_job,
    };
  }
}
