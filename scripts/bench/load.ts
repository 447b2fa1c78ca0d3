/**
 * A closed-loop load generator: `concurrency` workers each run one operation at a time until
 * `total` operations have been started, so every run of the same size does the same work.
 *
 * @module
 */
import { summarize } from "./stats.ts";

/** What one closed-loop run measured. */
export interface LoadResult {
  /** Operations completed per second of wall time. */
  per_s: number;
  /** Latency of one operation, milliseconds. */
  p50_ms: number;
  p99_ms: number;
}

/**
 * Runs `op(i)` for i in [0, total) with `concurrency` in flight. `op` returns how many items it
 * did (a batch counts its jobs), and throws on any failure, which ends the run.
 */
export async function closedLoop(
  concurrency: number,
  total: number,
  op: (i: number) => Promise<number>,
): Promise<LoadResult> {
  const latencies_ms = new Float64Array(total);
  let next = 0;
  let items = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      const done = await op(i);
      latencies_ms[i] = performance.now() - t0;
      // Not `items += await op(i)`: that reads `items` before awaiting and loses updates.
      items += done;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - started) / 1_000;
  const { p50, p99 } = summarize(latencies_ms);
  return { per_s: items / seconds, p50_ms: p50, p99_ms: p99 };
}

/**
 * The {@link closedLoop} of a batched load: `items` split into batches of `batch_size` (the last
 * one smaller), `concurrency` batches in flight; `op(first, size)` does items `first` ..
 * `first + size - 1` and returns how many it did. Latency is per batch.
 */
export function batchedLoop(
  concurrency: number,
  items: number,
  batch_size: number,
  op: (first: number, size: number) => Promise<number>,
): Promise<LoadResult> {
  const batches = Math.ceil(items / batch_size);
  return closedLoop(
    concurrency,
    batches,
    (b) => op(b * batch_size, Math.min(batch_size, items - b * batch_size)),
  );
}
