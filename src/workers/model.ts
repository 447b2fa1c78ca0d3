/**
 * The workers' records as their state machine stores them: the registered workers, and the
 * allocations that place occurrences of worker jobs on them. Times are epoch milliseconds.
 *
 * @module
 */
import type { Resources, Taint, WorkerStatus } from "../placement/types.ts";

/** What a worker says of itself when it registers. */
export interface WorkerSpec {
  id: string;
  pool: string;
  region: string;
  zone: string;
  labels: Record<string, string>;
  taints: Taint[];
  capacity: Resources;
}

/** A registered worker. */
export interface WorkerRecord extends WorkerSpec {
  status: WorkerStatus;
  /** Why it is in its status (`drained by an operator`, `no heartbeat for 15 s`, ...). */
  status_reason: string | null;
  registered_at: number;
  updated_at: number;
}

/**
 * Allocation lifecycle: `pending` (no worker fits yet) → `placed` (on a worker, waiting for it to
 * start) → `running` → `completed` | `failed`; an active allocation becomes `lost` when its lease
 * runs out or its worker is lost or removed (the occurrence is placed again), `cancelled` when its
 * execution is stopped (job cancelled, deleted, replaced).
 */
export type AllocationStatus =
  | "pending"
  | "placed"
  | "running"
  | "completed"
  | "failed"
  | "lost"
  | "cancelled";

/** The statuses of an allocation that still holds (or waits for) capacity. */
export const ACTIVE_ALLOCATION_STATUSES: ReadonlySet<AllocationStatus> = new Set([
  "pending",
  "placed",
  "running",
]);

/** What a worker reports when an allocation ends. */
export interface AllocationOutcome {
  ok: boolean;
  exit_code: number | null;
  status_code: number | null;
  error: string | null;
  output_excerpt: string | null;
  duration_ms: number;
}

/** One attempt of one occurrence of a worker job, on one worker. */
export interface AllocationRecord {
  id: string;
  job_id: string;
  execution_id: string;
  attempt: number;
  scheduled_at: number;
  worker_id: string | null;
  status: AllocationStatus;
  resources: Resources;
  /** The job's labels: what affinity and anti-affinity of other jobs match against. */
  job_labels: Record<string, string>;
  lease_ms: number;
  /** When a placed allocation must have started, or a running one finished; null when pending. */
  lease_expires_at: number | null;
  idempotency_key: string;
  /** The placement's score, when placed. */
  score: number | null;
  /** Why no worker fits (pending), or why it was placed again (lost). */
  explanation: string | null;
  created_at: number;
  placed_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  outcome: AllocationOutcome | null;
}
