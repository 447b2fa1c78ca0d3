/**
 * The workers' commands: registrations and changes of a worker's state, and every step of an
 * allocation. Heartbeats are not commands (the leader keeps them in memory); only the changes
 * they cause are. Everything that could differ between nodes (ids, times, the placement
 * decision) is fixed by the proposer, so applying is deterministic.
 *
 * @module
 */
import type { Resources, WorkerStatus } from "../placement/types.ts";
import type { AllocationOutcome, AllocationStatus, WorkerSpec } from "./model.ts";

/** A new allocation: placed on `worker_id`, or pending (null) with the explanation. */
export interface NewAllocation {
  id: string;
  job_id: string;
  execution_id: string;
  attempt: number;
  scheduled_at: number;
  resources: Resources;
  job_labels: Record<string, string>;
  lease_ms: number;
  idempotency_key: string;
  worker_id: string | null;
  score: number | null;
  explanation: string | null;
}

export type WorkerCommand =
  /** Registers a worker, or updates the spec of a registered one; it becomes ready. */
  | { type: "worker.register"; at: number; worker: WorkerSpec }
  /** Drain (`draining`), lost (`lost`: its allocations are lost), or ready again. */
  | { type: "worker.status"; at: number; worker_id: string; status: WorkerStatus; reason: string }
  /** Forgets a worker; its active allocations are lost. */
  | { type: "worker.remove"; at: number; worker_id: string }
  /** Records a placement decision (applied only while the worker still fits). */
  | { type: "alloc.create"; at: number; alloc: NewAllocation }
  /** Places a pending allocation on `worker_id` (applied only while the worker still fits). */
  | { type: "alloc.place"; at: number; alloc_id: string; worker_id: string; score: number }
  /** The worker started it: the lease runs again from now. */
  | { type: "alloc.start"; at: number; alloc_id: string; worker_id: string }
  /** The worker reports its end. */
  | {
    type: "alloc.finish";
    at: number;
    alloc_id: string;
    worker_id: string;
    outcome: AllocationOutcome;
  }
  /** Its lease ran out (applied only if it did by `at`). */
  | { type: "alloc.expire"; at: number; alloc_id: string; expected_status: AllocationStatus }
  /** The execution it belongs to stopped (job cancelled, deleted, replaced, shutdown). */
  | { type: "alloc.cancel"; at: number; execution_id: string; reason: string };

export type WorkerCommandType = WorkerCommand["type"];

/** The command types the workers state machine applies. */
export const WORKER_COMMAND_TYPES: readonly WorkerCommandType[] = [
  "worker.register",
  "worker.status",
  "worker.remove",
  "alloc.create",
  "alloc.place",
  "alloc.start",
  "alloc.finish",
  "alloc.expire",
  "alloc.cancel",
];

/** What the leader (placement, leases, dispatch) and every node (long polls) follow. */
export type WorkerEffect =
  /** An allocation changed status (or lease). */
  | {
    kind: "alloc_changed";
    alloc_id: string;
    execution_id: string;
    attempt: number;
    worker_id: string | null;
    status: AllocationStatus;
    lease_expires_at: number | null;
    outcome: AllocationOutcome | null;
  }
  /** Capacity appeared (a worker registered or became ready, an allocation ended). */
  | { kind: "capacity_freed" }
  /** A worker's status changed, or it was removed. */
  | { kind: "worker_changed"; worker_id: string; status: WorkerStatus | "removed" };

/** The effect kinds of the workers state machine. */
export const WORKER_EFFECT_KINDS: ReadonlySet<WorkerEffect["kind"]> = new Set([
  "alloc_changed",
  "capacity_freed",
  "worker_changed",
]);
