/**
 * What a run records: client operations with invoke and complete times and their results,
 * webhook deliveries as the sink saw them, nemesis events, and the leader as the nodes reported
 * it. Times are milliseconds since the run started, on one monotonic clock of the harness.
 *
 * @module
 */
import type { HostileRecord } from "./hostile.ts";

/** Milliseconds since `origin` on the harness's monotonic clock. */
export function stopwatch(): () => number {
  const origin = performance.now();
  return () => Math.round((performance.now() - origin) * 1_000) / 1_000;
}

/** One job a create asked for, by idempotency key. */
export interface CreateItem {
  key: string;
  recurring: boolean;
  /** A one-off's time, or a recurring job's starts_at (ms since the run started). */
  due_ms: number;
  /**
   * A worker job (its executor is a worker, not a webhook; a recurring one is a cron job): what
   * each run takes and holds. Absent: a webhook job.
   */
  worker?: WorkerItem;
}

/** What a worker job's occurrences do: sleep this long, holding these resources. */
export interface WorkerItem {
  sleep_ms: number;
  cpu_millis: number;
  memory_mb: number;
}

/** The result of one create item. */
export interface CreatedJob {
  id: string;
  created: boolean;
}

/** `ok` answered; `fail` definitely had no effect; `info` unknown (timeout, 5xx, reset). */
export type Outcome = "ok" | "fail" | "info";

/** One client operation. */
export interface HistoryOp {
  index: number;
  /** The client (-1: the harness's own final operations). */
  client: number;
  /** The node the request went to. */
  node: string;
  f: "create" | "batch" | "get" | "get_local" | "cancel" | "delete";
  /** create and batch: the jobs asked for. */
  items?: CreateItem[];
  /** get, get_local, cancel, delete: the job. */
  id?: string;
  invoke_ms: number;
  complete_ms: number;
  type: Outcome;
  /** The HTTP status, when one came back. */
  status?: number;
  /** create and batch (ok): one per item. */
  jobs?: CreatedJob[];
  /** get and get_local (ok): the job's status, or null when 404. */
  job_status?: string | null;
  /** Why it failed or is unknown. */
  error?: string;
}

/** One webhook request the sink received. */
export interface Delivery {
  arrival_ms: number;
  /** The idempotency key of the job (the webhook path). */
  key: string;
  job_id: string;
  /** The occurrence's time from the body (ms since the run started). */
  scheduled_at_ms: number;
  attempt: number;
  idempotency_key: string | null;
  redelivery: boolean;
  /**
   * The node whose socket sent it, found from the TCP source port through /proc (Linux); null
   * when it could not be told (the request itself does not name the node).
   */
  sender: string | null;
}

/** A fault, from its start to its heal. */
export interface NemesisEvent {
  kind:
    | "kill"
    | "pause"
    | "partition"
    | "transfer"
    | "member"
    | "clock"
    | "crash"
    | "worker-kill"
    | "worker-pause"
    | "worker-partition";
  /** Which partition, which node, and so on. */
  detail: string;
  nodes: string[];
  start_ms: number;
  end_ms: number;
  /** Whether the fault was applied as planned (a transfer or removal can be refused). */
  applied: boolean;
  note?: string;
}

/** The leader a node reported at one moment. */
export interface LeaderSample {
  at_ms: number;
  node: string;
  leader: string | null;
  term: number;
}

/** A node (or worker agent) process that ended without the harness stopping it. */
export interface NodeExit {
  /** The node's name (or the worker's, in `worker_exits`). */
  node: string;
  at_ms: number;
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: string | null;
}

/** What a node answered when the harness looked at it after the final heal. */
export interface NodeProbe {
  node: string;
  /** The status of GET /health, or null when it did not answer. */
  health_status: number | null;
  /** The `status` field of that answer ("ok", "degraded", ...). */
  health: string | null;
  /** Its applied index when last seen, or null when /debug/cluster did not answer. */
  applied_index: number | null;
  /** The commit index of the leader it had to catch up with (null: no leader known). */
  target_index: number | null;
  /** Lines of its log saying a loop it cannot run without stopped (at most 3). */
  fatal_lines: string[];
}

/** Everything a run records, written as history.json. */
export interface History {
  seed: number;
  nodes: string[];
  /** Unix ms of the run's time 0. */
  started_at: number;
  ops: HistoryOp[];
  deliveries: Delivery[];
  nemesis: NemesisEvent[];
  leaders: LeaderSample[];
  /** The end of the last fault (all healed). */
  healed_ms: number;
  /** When the workload stopped. */
  workload_end_ms: number;
  /** Fault kinds asked for but not run, with why ("clock: skipped: ..."). */
  skipped?: string[];
  /** The hostile client's requests and their answers. */
  hostile: HostileRecord[];
  /** Node processes that ended on their own. */
  node_exits: NodeExit[];
  /** Every node as seen after the final heal. */
  probes: NodeProbe[];
  /** The worker agents' ids (none when the run has no workers). */
  workers: string[];
  /** `GET /workers` on every node, sampled during the run and once at the end. */
  worker_samples: WorkerSample[];
  /** What the workers' command recorded, one entry per run of an allocation. */
  worker_runs: WorkerRun[];
  /** Worker agents that ended on their own. */
  worker_exits: NodeExit[];
  /** The worker jobs' executions and allocations as the leader holds them at the end. */
  worker_jobs: WorkerJobFinal[];
  /** Every allocation still placed or running at the end, on the leader. */
  active_allocations: AllocationFinal[];
}

/** One worker as one node's applied state showed it. */
export interface WorkerView {
  id: string;
  status: string;
  capacity: Record<string, number>;
  allocated: Record<string, number>;
}

/** One answer of `GET /workers` from one node. */
export interface WorkerSample {
  at_ms: number;
  node: string;
  /** The final read after the heal (every node caught up), not a sample during the run. */
  final: boolean;
  workers: WorkerView[];
}

/**
 * One run of an allocation as the worker's command recorded it: its start line, and its end line
 * unless the command was stopped first (its lease ran out, or the run ended).
 */
export interface WorkerRun {
  worker: string;
  allocation_id: string;
  idempotency_key: string;
  start_ms: number;
  end_ms: number | null;
}

/** An allocation of a worker job at the end. */
export interface AllocationFinal {
  id: string;
  worker_id: string | null;
  status: string;
  scheduled_at_ms: number;
  attempt: number;
  idempotency_key: string;
  started_at_ms: number | null;
  finished_at_ms: number | null;
  resources: Record<string, number>;
  explanation: string | null;
}

/** An execution (occurrence) of a worker job at the end. */
export interface ExecutionFinal {
  scheduled_at_ms: number;
  status: string;
  trigger: string;
  missed_count: number;
}

/** A worker job as the leader holds it at the end. */
export interface WorkerJobFinal {
  id: string;
  key: string | null;
  kind: string;
  status: string;
  created_at_ms: number;
  executions: ExecutionFinal[];
  allocations: AllocationFinal[];
}
