/**
 * The checkers of a run with worker agents (issue 11), over what the workers' command recorded,
 * the `GET /workers` samples and the worker jobs' executions and allocations at the end:
 *
 * w1. every due occurrence of a worker job started (an allocation of it reached `running` and
 *     its command recorded a start) and completed (an allocation `completed`, whose run has an
 *     end line), unless the run's end cut it short: a one-off that no cancel or delete was sent
 *     for, due before the workload ended; a cron job's occurrences due after it was created and
 *     more than `cut_short_ms` before the first cancel or delete sent for it (the harness cancels
 *     the recurring jobs when the workload ends). An occurrence with no execution counts as
 *     accounted for only within the `missed_count` of the job's `missed` executions (the misfire
 *     policy, when no leader could fire it);
 * w2. no occurrence ran twice at once (two runs, on two workers or as two allocations, whose
 *     start-to-end intervals overlap) unless the earlier one's allocation was `lost` (its lease
 *     ran out, or its worker was lost); every allocation of one occurrence carries the same
 *     idempotency key, and a run names the key of its allocation;
 * w3. no worker's capacity over-allocated in any state a node showed (allocated ≤ capacity per
 *     resource in every sample of `GET /workers`), every node ends with the same allocated
 *     resources per worker, and the leader's `allocated` equals the sum of its placed and running
 *     allocations' resources;
 * w4. no worker agent ended on its own.
 *
 * @module
 */
import type { CheckResult } from "./checks.ts";
import type { AllocationFinal, History, WorkerJobFinal, WorkerRun } from "./history.ts";
import { WORKER_CRON_PERIOD_MS } from "./workload.ts";

const LIMIT = 20;

/** Measures of the workers reported besides the verdicts. */
export interface WorkerStats {
  occurrences_expected: number;
  started: number;
  completed: number;
  /** Occurrences the run's end (a cancel or delete) may have cut short: not checked. */
  cut_short: number;
  /** Expected cron occurrences with no execution, within the jobs' missed counts. */
  missed: number;
  runs: number;
  /** Runs whose command was stopped before its end line (the lease ran out, or the run ended). */
  runs_unfinished: number;
  allocations: number;
  allocations_lost: number;
  /** Pairs of runs of one occurrence that overlapped after the earlier allocation was lost. */
  overlaps_after_loss: number;
  /** Runs of jobs deleted during the run (no allocation left to tell them by). */
  runs_of_deleted_jobs: number;
  samples: number;
  /** Highest allocated/capacity share seen in any sample, per resource. */
  peak_share: Record<string, number>;
  /** Longest delay from an occurrence's time to its first start on a worker. */
  longest_start_delay_ms: number;
}

/** The runs of each allocation id. */
function runsByAllocation(runs: WorkerRun[]): Map<string, WorkerRun[]> {
  const out = new Map<string, WorkerRun[]>();
  for (const r of runs) {
    const list = out.get(r.allocation_id);
    if (list === undefined) out.set(r.allocation_id, [r]);
    else list.push(r);
  }
  return out;
}

/** The ids a cancel or delete was sent for, with the earliest such invoke time. */
function stoppedAt(h: History): Map<string, number> {
  const out = new Map<string, number>();
  for (const op of h.ops) {
    if ((op.f !== "cancel" && op.f !== "delete") || op.type === "fail") continue;
    out.set(op.id!, Math.min(out.get(op.id!) ?? Infinity, op.invoke_ms));
  }
  return out;
}

/** The occurrence times a job had to run, and how many of them no execution accounts for. */
function expectedOccurrences(
  h: History,
  job: WorkerJobFinal,
  due_ms: number,
  recurring: boolean,
  stop_ms: number | undefined,
  cut_short_ms: number,
): { due: number[]; cut: number } {
  if (!recurring) {
    // A one-off's one occurrence, at the time the cluster recorded for it.
    const at = job.executions[0]?.scheduled_at_ms ?? job.allocations[0]?.scheduled_at_ms ?? due_ms;
    return stop_ms !== undefined || due_ms > h.workload_end_ms
      ? { due: [], cut: 1 }
      : { due: [at], cut: 0 };
  }
  const until = Math.min(stop_ms ?? h.workload_end_ms, h.workload_end_ms) - cut_short_ms;
  const from = Math.max(due_ms, job.created_at_ms);
  const period = WORKER_CRON_PERIOD_MS;
  const due: number[] = [];
  // Cron ticks are on the wall clock: multiples of the period in Unix ms.
  const first = Math.floor((h.started_at + from) / period) * period + period - h.started_at;
  for (let t = first; t <= until; t += period) due.push(t);
  const cut = job.executions.filter((e) => e.scheduled_at_ms > until).length;
  return { due, cut };
}

/** w1 and w2 (they read the same records), and the counts of the report. */
export function checkWorkerRuns(
  h: History,
  cut_short_ms: number,
): { results: CheckResult[]; stats: Omit<WorkerStats, "samples" | "peak_share"> } {
  const items = new Map<string, { due_ms: number; recurring: boolean; worker: boolean }>();
  for (const op of h.ops) {
    for (const item of op.items ?? []) {
      items.set(item.key, { ...item, worker: item.worker !== undefined });
    }
  }
  const stops = stoppedAt(h);
  const byAlloc = runsByAllocation(h.worker_runs);
  const missing: string[] = [];
  let expected = 0;
  let started = 0;
  let completed = 0;
  let cutShort = 0;
  let missedTotal = 0;
  let longestStart = 0;
  for (const job of h.worker_jobs) {
    const item = job.key === null ? undefined : items.get(job.key);
    if (item === undefined || !item.worker) continue;
    const { due, cut } = expectedOccurrences(
      h,
      job,
      item.due_ms,
      item.recurring,
      stops.get(job.id),
      cut_short_ms,
    );
    cutShort += cut;
    const missedBudget = job.executions.filter((e) => e.status === "missed")
      .reduce((n, e) => n + e.missed_count, 0);
    let unaccounted = 0;
    for (const at of due) {
      const execution = job.executions.find((e) => e.scheduled_at_ms === at);
      const allocs = job.allocations.filter((a) => a.scheduled_at_ms === at);
      if (execution === undefined && allocs.length === 0) {
        unaccounted++;
        if (unaccounted > missedBudget) {
          missing.push(`job ${job.id} (${job.kind}): occurrence ${at} ms has no execution`);
        }
        continue;
      }
      if (execution?.status === "missed" || execution?.status === "skipped") {
        missing.push(`job ${job.id}: occurrence ${at} ms recorded ${execution.status}`);
        continue;
      }
      expected++;
      const ran = allocs.filter((a) =>
        a.started_at_ms !== null && (byAlloc.get(a.id) ?? []).length > 0
      );
      const done = allocs.find((a) =>
        a.status === "completed" && (byAlloc.get(a.id) ?? []).some((r) => r.end_ms !== null)
      );
      const what = () =>
        `${allocs.map((a) => `${a.id} ${a.status} on ${a.worker_id ?? "-"}`).join(", ") || "none"}`;
      if (ran.length === 0) {
        missing.push(
          `job ${job.id}: occurrence ${at} ms never started (execution ${
            execution?.status ?? "none"
          }; allocations: ${what()})`,
        );
        continue;
      }
      started++;
      const firstRun = Math.min(
        ...ran.flatMap((a) => byAlloc.get(a.id)!.map((r) => r.start_ms)),
      );
      longestStart = Math.max(longestStart, firstRun - at);
      if (done === undefined) {
        missing.push(
          `job ${job.id}: occurrence ${at} ms started but never completed (execution ${
            execution?.status ?? "none"
          }; allocations: ${what()})`,
        );
        continue;
      }
      completed++;
    }
    missedTotal += Math.min(unaccounted, missedBudget);
  }

  const { violations: overlap, stats: runStats } = overlaps(h);
  return {
    results: [
      {
        name: "every due worker occurrence started and completed",
        ok: missing.length === 0,
        summary:
          `${expected} worker occurrences had to run; ${started} started, ${completed} completed, ${missing.length} violations; ${cutShort} cut short by a cancel, a delete or the run's end; ${missedTotal} missed by the misfire policy`,
        violations: missing.slice(0, LIMIT),
      },
      {
        name: "no worker occurrence ran twice at once",
        ok: overlap.length === 0,
        summary:
          `${runStats.runs} runs of ${runStats.allocations} allocations (${runStats.allocations_lost} lost); ${runStats.overlaps_after_loss} overlaps after a lost allocation (allowed), ${overlap.length} violations`,
        violations: overlap.slice(0, LIMIT),
      },
    ],
    stats: {
      occurrences_expected: expected,
      started,
      completed,
      cut_short: cutShort,
      missed: missedTotal,
      longest_start_delay_ms: Math.round(longestStart),
      ...runStats,
    },
  };
}

/** w2: overlapping runs of one occurrence, and keys. */
function overlaps(h: History): {
  violations: string[];
  stats: Pick<
    WorkerStats,
    | "runs"
    | "runs_unfinished"
    | "allocations"
    | "allocations_lost"
    | "overlaps_after_loss"
    | "runs_of_deleted_jobs"
  >;
} {
  const violations: string[] = [];
  const allocById = new Map<string, AllocationFinal>();
  const occurrenceOf = new Map<string, string>();
  const keysOf = new Map<string, Set<string>>();
  for (const job of h.worker_jobs) {
    for (const a of job.allocations) {
      allocById.set(a.id, a);
      const occurrence = `${job.id}@${a.scheduled_at_ms}`;
      occurrenceOf.set(a.id, occurrence);
      const keys = keysOf.get(occurrence) ?? new Set();
      keys.add(a.idempotency_key);
      keysOf.set(occurrence, keys);
    }
  }
  for (const [occurrence, keys] of keysOf) {
    if (keys.size > 1) violations.push(`${occurrence}: allocations with keys ${[...keys]}`);
  }
  const runsOf = new Map<string, WorkerRun[]>();
  let deleted = 0;
  for (const run of h.worker_runs) {
    const a = allocById.get(run.allocation_id);
    if (a === undefined) {
      deleted++;
      continue;
    }
    if (run.idempotency_key !== a.idempotency_key) {
      violations.push(
        `run of ${a.id} on ${run.worker} had key ${run.idempotency_key}, its allocation ${a.idempotency_key}`,
      );
    }
    if (a.worker_id !== run.worker) {
      violations.push(`allocation ${a.id} of ${a.worker_id ?? "no worker"} ran on ${run.worker}`);
    }
    const occurrence = occurrenceOf.get(a.id)!;
    const list = runsOf.get(occurrence) ?? [];
    list.push(run);
    runsOf.set(occurrence, list);
  }
  let afterLoss = 0;
  const endOf = (r: WorkerRun) =>
    r.end_ms ?? allocById.get(r.allocation_id)?.finished_at_ms ?? Infinity;
  for (const [occurrence, runs] of runsOf) {
    runs.sort((a, b) => a.start_ms - b.start_ms);
    for (let i = 0; i < runs.length; i++) {
      for (let j = i + 1; j < runs.length; j++) {
        const [a, b] = [runs[i], runs[j]];
        if (b.start_ms >= endOf(a)) continue;
        if (allocById.get(a.allocation_id)?.status === "lost") {
          afterLoss++;
          continue;
        }
        violations.push(
          `${occurrence}: ${a.allocation_id} on ${a.worker} (${a.start_ms}-${
            a.end_ms ?? "no end"
          } ms, ${
            allocById.get(a.allocation_id)?.status
          }) overlaps ${b.allocation_id} on ${b.worker} (${b.start_ms}-${b.end_ms ?? "no end"} ms)`,
        );
      }
    }
  }
  return {
    violations,
    stats: {
      runs: h.worker_runs.length,
      runs_unfinished: h.worker_runs.filter((r) => r.end_ms === null).length,
      allocations: allocById.size,
      allocations_lost: [...allocById.values()].filter((a) => a.status === "lost").length,
      overlaps_after_loss: afterLoss,
      runs_of_deleted_jobs: deleted,
    },
  };
}

/** w3. */
export function checkWorkerCapacity(
  h: History,
): { result: CheckResult; samples: number; peak_share: Record<string, number> } {
  const violations: string[] = [];
  const peak: Record<string, number> = {};
  for (const s of h.worker_samples) {
    for (const w of s.workers) {
      for (const [resource, capacity] of Object.entries(w.capacity)) {
        const allocated = w.allocated[resource] ?? 0;
        if (capacity > 0) peak[resource] = Math.max(peak[resource] ?? 0, allocated / capacity);
        if (allocated > capacity) {
          violations.push(
            `${s.node} at ${s.at_ms} ms${
              s.final ? " (final)" : ""
            }: worker ${w.id} ${resource} allocated ${allocated} > capacity ${capacity}`,
          );
        }
      }
    }
  }
  const finals = h.worker_samples.filter((s) => s.final);
  const line = (s: (typeof finals)[number]) =>
    s.workers.map((w) => `${w.id} ${w.status} ${JSON.stringify(w.allocated)}`).sort().join("; ");
  for (const s of finals.slice(1)) {
    if (line(s) !== line(finals[0])) {
      violations.push(`final: ${finals[0].node} shows ${line(finals[0])}; ${s.node} ${line(s)}`);
    }
  }
  const lead = finals[0];
  if (lead === undefined) violations.push("no node's final GET /workers could be read");
  for (const w of lead?.workers ?? []) {
    const held: Record<string, number> = {};
    for (const a of h.active_allocations.filter((a) => a.worker_id === w.id)) {
      for (const [k, v] of Object.entries(a.resources)) held[k] = (held[k] ?? 0) + v;
    }
    for (const resource of Object.keys(w.capacity)) {
      if ((held[resource] ?? 0) !== (w.allocated[resource] ?? 0)) {
        violations.push(
          `final: worker ${w.id} ${resource} allocated ${
            w.allocated[resource] ?? 0
          }, its placed and running allocations hold ${held[resource] ?? 0}`,
        );
      }
    }
  }
  const samples = h.worker_samples.length;
  return {
    result: {
      name: "no worker's capacity over-allocated",
      ok: violations.length === 0,
      summary: `${samples} samples of GET /workers (${finals.length} final); ${
        Object.entries(peak).map(([k, v]) => `${k} peak ${Math.round(v * 100)}%`).join(", ") ||
        "nothing allocated"
      }; ${violations.length} violations`,
      violations: violations.slice(0, LIMIT),
    },
    samples,
    peak_share: peak,
  };
}

/** w4. */
export function checkWorkersSurvive(h: History): CheckResult {
  return {
    name: "no worker agent ended on its own",
    ok: h.worker_exits.length === 0,
    summary: `${h.workers.length} agents, ${h.worker_exits.length} ended on their own`,
    violations: h.worker_exits.slice(0, LIMIT).map((e) =>
      `${e.node} ended at ${e.at_ms} ms (${
        e.signal === null ? `exit code ${e.code}` : `signal ${e.signal}`
      })`
    ),
  };
}
