/**
 * Order statistics of the benchmark: nearest-rank percentiles over samples and the median of
 * repeated runs.
 *
 * @module
 */

/** Nearest-rank percentile (`q` in [0, 1]) of samples sorted ascending; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

/** p50, p99 and max of `samples` (not modified). */
export function summarize(samples: ArrayLike<number>): { p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort();
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1],
  };
}

/** Median of `values` (mean of the middle two for an even count); NaN when empty. */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
