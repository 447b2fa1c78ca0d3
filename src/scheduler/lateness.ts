/**
 * Recent firing lateness of one node, for the console's chart: a ring of fixed time buckets
 * (by default 60 of 10 s, the last 10 minutes), each keeping its count, its max and a bounded
 * uniform sample (reservoir) from which p50 and p99 are read. Memory is bounded whatever the
 * firing rate: at most `buckets × sample_max` numbers.
 */

/** One bucket of the summary: lateness in seconds; null where nothing fired. */
export interface LatenessBucket {
  start_ms: number;
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface LatenessRingOptions {
  bucket_ms?: number;
  buckets?: number;
  /** Samples kept per bucket for the percentiles. */
  sample_max?: number;
  /** Wall clock, Unix ms. */
  now?: () => number;
  /** Uniform in [0, 1), for the reservoir. */
  random?: () => number;
}

interface Slot {
  start_ms: number;
  count: number;
  max: number;
  samples: number[];
}

export class LatenessRing {
  readonly bucket_ms: number;
  readonly buckets: number;
  readonly #sample_max: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #slots: (Slot | undefined)[];

  constructor(opts: LatenessRingOptions = {}) {
    this.bucket_ms = opts.bucket_ms ?? 10_000;
    this.buckets = opts.buckets ?? 60;
    this.#sample_max = opts.sample_max ?? 512;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#slots = new Array(this.buckets);
  }

  /** Records one occurrence that started `seconds` after its scheduled time. */
  record(seconds: number): void {
    const start_ms = this.#bucketStart(this.#now());
    const index = (start_ms / this.bucket_ms) % this.buckets;
    let slot = this.#slots[index];
    if (slot === undefined || slot.start_ms !== start_ms) {
      slot = { start_ms, count: 0, max: 0, samples: [] };
      this.#slots[index] = slot;
    }
    slot.count++;
    slot.max = Math.max(slot.max, seconds);
    if (slot.samples.length < this.#sample_max) {
      slot.samples.push(seconds);
    } else {
      const j = Math.floor(this.#random() * slot.count);
      if (j < this.#sample_max) slot.samples[j] = seconds;
    }
  }

  /** The window's buckets, oldest first, the current (partial) bucket last. */
  summary(): LatenessBucket[] {
    const last = this.#bucketStart(this.#now());
    const out: LatenessBucket[] = [];
    for (let i = this.buckets - 1; i >= 0; i--) {
      const start_ms = last - i * this.bucket_ms;
      const slot = this.#slots[(start_ms / this.bucket_ms) % this.buckets];
      if (slot === undefined || slot.start_ms !== start_ms) {
        out.push({ start_ms, count: 0, p50: null, p99: null, max: null });
        continue;
      }
      const sorted = [...slot.samples].sort((a, b) => a - b);
      out.push({
        start_ms,
        count: slot.count,
        p50: quantile(sorted, 0.5),
        p99: quantile(sorted, 0.99),
        max: slot.max,
      });
    }
    return out;
  }

  #bucketStart(ms: number): number {
    return Math.floor(ms / this.bucket_ms) * this.bucket_ms;
  }
}

/** Nearest-rank quantile of ascending `sorted` (not empty). */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
