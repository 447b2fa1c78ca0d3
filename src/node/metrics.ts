/**
 * Prometheus metrics of one node, in a registry of its own (several nodes can share a process in
 * tests). Names follow Prometheus conventions: `tickraft_` prefix, base units, `_total` counters.
 */
import client from "prom-client";
import { LatenessRing } from "../scheduler/lateness.ts";
import type { ProposalKind, SchedulerMetrics } from "../scheduler/scheduler.ts";
import type { WorkersMetrics } from "../workers/leader.ts";
import type { LogObserver } from "../log/local_log.ts";

/** Attempts the /health failure ratio looks back over. */
const RECENT_OUTCOMES_MAX = 1_000;

/** A ring of the last `size` attempt outcomes (true: failed). */
export class OutcomeWindow {
  readonly #failed: boolean[] = [];
  #next = 0;
  #failures = 0;

  constructor(readonly size: number) {}

  record(failed: boolean): void {
    if (this.#failed.length < this.size) this.#failed.push(failed);
    else {
      if (this.#failed[this.#next]) this.#failures--;
      this.#failed[this.#next] = failed;
    }
    if (failed) this.#failures++;
    this.#next = (this.#next + 1) % this.size;
  }

  /** Attempts in the window and the share that failed (0 when there were none). */
  get summary(): { attempts: number; failure_ratio: number } {
    const attempts = this.#failed.length;
    return { attempts, failure_ratio: attempts === 0 ? 0 : this.#failures / attempts };
  }
}

export class NodeMetrics implements SchedulerMetrics, LogObserver, WorkersMetrics {
  readonly registry = new client.Registry();
  readonly jobsCreated = new client.Counter({
    name: "tickraft_jobs_created_total",
    help: "Jobs created",
    registers: [this.registry],
  });
  readonly jobsDeleted = new client.Counter({
    name: "tickraft_jobs_deleted_total",
    help: "Jobs deleted",
    registers: [this.registry],
  });
  readonly proposalRetries = new client.Counter({
    name: "tickraft_proposal_retries_total",
    help:
      "Scheduler proposals that failed (log overloaded, leadership moving) and were made again after a backoff, by what they proposed (advance, attempt, finish)",
    labelNames: ["what"],
    registers: [this.registry],
  });
  readonly rejections = new client.Counter({
    name: "tickraft_job_rejections_total",
    help: "Job creations refused, by reason (job_limit, memory_limit, overloaded, invalid)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly deliveries = new client.Counter({
    name: "tickraft_deliveries_total",
    help: "Webhook attempts by outcome (success, failure, aborted) and error class",
    labelNames: ["outcome", "error_class"],
    registers: [this.registry],
  });
  readonly occurrences = new client.Counter({
    name: "tickraft_occurrences_total",
    help: "Occurrences that came due, by what became of them (fired, skipped, missed)",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  readonly firingLateness = new client.Histogram({
    name: "tickraft_firing_lateness_seconds",
    help: "Delay from an occurrence's scheduled time to the start of its first webhook attempt",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly placements = new client.Counter({
    name: "tickraft_placements_total",
    help:
      "Worker allocations placed, by outcome (placed, pending: no worker fits, replaced: placed again after a loss, invalid)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly placementSeconds = new client.Histogram({
    name: "tickraft_placement_seconds",
    help: "Time from a placement decision to its commit through the log",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly dispatchLatencySeconds = new client.Histogram({
    name: "tickraft_dispatch_latency_seconds",
    help: "Delay from a worker job occurrence's scheduled time to its start on a worker",
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly workersByStatus = new client.Gauge({
    name: "tickraft_workers",
    help: "Registered workers by status (ready, draining, lost)",
    labelNames: ["status"],
    registers: [this.registry],
  });
  readonly pendingAllocations = new client.Gauge({
    name: "tickraft_allocations_pending",
    help: "Allocations waiting for a worker that fits",
    registers: [this.registry],
  });
  readonly workerCapacity = new client.Gauge({
    name: "tickraft_worker_capacity",
    help: "Capacity of the registered workers per pool and resource",
    labelNames: ["pool", "resource"],
    registers: [this.registry],
  });
  readonly workerAllocated = new client.Gauge({
    name: "tickraft_worker_allocated",
    help: "What allocations hold on the registered workers per pool and resource",
    labelNames: ["pool", "resource"],
    registers: [this.registry],
  });
  readonly inflightDeliveries = new client.Gauge({
    name: "tickraft_deliveries_in_flight",
    help: "Webhook calls in flight",
    registers: [this.registry],
  });
  readonly queueSize = new client.Gauge({
    name: "tickraft_queue_size",
    help: "Entries in the timing engine (next fire times and pending retries)",
    registers: [this.registry],
  });
  readonly jobsStored = new client.Gauge({
    name: "tickraft_queue_jobs",
    help: "Jobs stored",
    registers: [this.registry],
  });
  readonly jobLimit = new client.Gauge({
    name: "tickraft_queue_job_limit",
    help: "Most jobs stored (QUEUE_JOB_LIMIT)",
    registers: [this.registry],
  });
  readonly memoryBytes = new client.Gauge({
    name: "tickraft_queue_memory_bytes",
    help: "Resident memory of the process",
    registers: [this.registry],
  });
  readonly memoryLimit = new client.Gauge({
    name: "tickraft_queue_memory_limit_bytes",
    help: "Resident memory above which creates are refused",
    registers: [this.registry],
  });
  readonly logIndex = new client.Gauge({
    name: "tickraft_log_applied_index",
    help: "Index of the last applied log entry",
    registers: [this.registry],
  });
  readonly proposalsQueued = new client.Gauge({
    name: "tickraft_log_proposals_queued",
    help: "Commands waiting for the next group commit",
    registers: [this.registry],
  });
  readonly commitBatch = new client.Histogram({
    name: "tickraft_log_commit_commands",
    help: "Commands per group commit (one transaction, one fsync)",
    buckets: [1, 2, 5, 10, 50, 100, 500, 1_000, 5_000, 20_000],
    registers: [this.registry],
  });
  readonly commitDuration = new client.Histogram({
    name: "tickraft_log_commit_seconds",
    help: "Duration of one group commit",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly raftUnauthorized = new client.Counter({
    name: "tickraft_raft_unauthorized_total",
    help: "Raft RPCs refused for a missing or wrong cluster secret, by route",
    labelNames: ["route"],
    registers: [this.registry],
  });
  readonly apiUnauthorized = new client.Counter({
    name: "tickraft_api_unauthorized_total",
    help: "API requests refused by token: missing, invalid (401) or read_only on a write (403)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly raftRole = new client.Gauge({
    name: "tickraft_raft_is_leader",
    help: "1 while this node is the Raft leader",
    registers: [this.registry],
  });
  readonly raftTerm = new client.Gauge({
    name: "tickraft_raft_term",
    help: "Current Raft term",
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: "tickraft_http_request_duration_seconds",
    help: "HTTP request durations by method, route and status",
    labelNames: ["method", "route", "status"],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** The last 10 minutes of firing lateness, for the console's chart. */
  readonly recentLateness = new LatenessRing();

  lateness(seconds: number): void {
    this.firingLateness.observe(seconds);
    this.recentLateness.record(seconds);
  }

  delivery(outcome: "success" | "failure" | "aborted", error_class: string | null): void {
    this.deliveries.inc({ outcome, error_class: error_class ?? "none" });
    if (outcome !== "aborted") this.recentOutcomes.record(outcome === "failure");
  }

  /** Outcomes of the most recent webhook attempts, for /health's failure ratio. */
  readonly recentOutcomes = new OutcomeWindow(RECENT_OUTCOMES_MAX);

  timerEntries(count: number): void {
    this.queueSize.set(count);
  }

  inflight(count: number): void {
    this.inflightDeliveries.set(count);
  }

  occurrence(kind: "fired" | "skipped" | "missed", count: number): void {
    this.occurrences.inc({ kind }, count);
  }

  proposalRetry(what: ProposalKind): void {
    this.proposalRetries.inc({ what });
  }

  placement(outcome: "placed" | "pending" | "replaced" | "invalid", seconds: number): void {
    this.placements.inc({ outcome });
    if (outcome !== "invalid") this.placementSeconds.observe(seconds);
  }

  dispatchLatency(seconds: number): void {
    this.dispatchLatencySeconds.observe(seconds);
  }

  committed(commands: number, duration_ms: number, index: number): void {
    this.commitBatch.observe(commands);
    this.commitDuration.observe(duration_ms / 1_000);
    this.logIndex.set(index);
  }

  queued(commands: number): void {
    this.proposalsQueued.set(commands);
  }
}
