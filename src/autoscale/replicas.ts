/**
 * The replica count one target wants, the way Kubernetes' HPA replica calculator finds it:
 * `ceil(current × observed / target)`, no change while the ratio is within the tolerance band, and
 * workers without a report filled in so they never drive a scale-down (counted at the target, or
 * fully busy for cpu and memory) and only cautiously drive a scale-up (counted idle).
 */
import type { MetricName, MetricSample, TargetMetric } from "./types.ts";

/** Float slack: `3 × 0.6 / 0.6` must stay 3, and a ratio of exactly `1 + tolerance` is in band. */
const EPSILON = 1e-9;

/**
 * Each listed worker's average of `metric` over the samples in `(now_ms - window_ms, now_ms]`;
 * workers with no such sample are left out. Samples of other workers are ignored.
 */
export function workerAverages(
  samples: readonly MetricSample[],
  workers: readonly string[],
  metric: MetricName,
  now_ms: number,
  window_ms: number,
): number[] {
  const listed = new Set(workers);
  const sums = new Map<string, { total: number; count: number }>();
  for (const sample of samples) {
    const value = sample[metric];
    if (value === undefined || !Number.isFinite(value) || value < 0) continue;
    if (!listed.has(sample.worker_id)) continue;
    if (sample.at_ms <= now_ms - window_ms || sample.at_ms > now_ms) continue;
    const sum = sums.get(sample.worker_id) ?? { total: 0, count: 0 };
    sum.total += value;
    sum.count += 1;
    sums.set(sample.worker_id, sum);
  }
  return [...sums.values()].map((s) => s.total / s.count);
}

/** `ceil` that does not round a float's last-bit error up to one more worker. */
export function ceilCount(x: number): number {
  return Math.max(0, Math.ceil(x - EPSILON));
}

/**
 * The count one target wants from the per-worker averages of the reporting workers. With no
 * report at all the target has no opinion (`observed: null`, wanted = current); the controller
 * then refuses to scale down on the other targets alone, as HPA does.
 */
export function targetReplicas(
  metric: MetricName,
  target: number,
  averages: readonly number[],
  current: number,
  tolerance: number,
): TargetMetric {
  const reporting = averages.length;
  const missing = Math.max(0, current - reporting);
  const base = { metric, target, workers_reporting: reporting, workers_missing: missing };
  if (reporting === 0) return { ...base, observed: null, wanted: current };
  const sum = averages.reduce((a, b) => a + b, 0);
  const observed = sum / reporting;
  const ratio = observed / target;
  const inBand = (r: number) => Math.abs(1 - r) <= tolerance + EPSILON;
  if (missing === 0) {
    return { ...base, observed, wanted: inBand(ratio) ? current : ceilCount(ratio * reporting) };
  }
  // HPA: on the way down a missing worker counts as busy (cpu and memory: all of its capacity,
  // other metrics: at the target), on the way up as idle, and at exactly the target as on target.
  // Either way it pulls toward no change.
  const busy = metric === "rps" ? target : Math.max(100, target);
  const fill = ratio < 1 ? busy : ratio > 1 ? 0 : target;
  const counted = reporting + missing;
  const filled = (sum + fill * missing) / (counted * target);
  const flipped = (ratio < 1 && filled > 1) || (ratio > 1 && filled < 1);
  const wanted = inBand(filled) || flipped ? current : ceilCount(filled * counted);
  return { ...base, observed, wanted };
}
