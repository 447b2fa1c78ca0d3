/**
 * Worker sets as bitsets (one bit per row, 32 rows a word), so a static filter over a thousand
 * workers is 32 word operations, not a thousand checks: a request's required constraints and
 * untolerated taints become one "statically feasible" set when it compiles, and an explanation
 * counts each filter's removals with population counts.
 */

/** Words of a bitset over `n` rows. */
export function wordsFor(n: number): number {
  return (n + 31) >>> 5;
}

/** Whether row `w` is in the set at `bits[offset ..]`. */
export function has(bits: Int32Array, offset: number, w: number): boolean {
  return ((bits[offset + (w >>> 5)] >>> (w & 31)) & 1) === 1;
}

/** Adds row `w`. */
export function add(bits: Int32Array, offset: number, w: number): void {
  bits[offset + (w >>> 5)] |= 1 << (w & 31);
}

/** Removes row `w`. */
export function remove(bits: Int32Array, offset: number, w: number): void {
  bits[offset + (w >>> 5)] &= ~(1 << (w & 31));
}

/** Set bits of a 32-bit word. */
export function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Index (0..31) of the lowest set bit of a non-zero word. */
export function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** A set of the given rows. */
export function setOf(n: number, rows: Iterable<number>): Int32Array {
  const bits = new Int32Array(wordsFor(n));
  for (const w of rows) add(bits, 0, w);
  return bits;
}

/**
 * Bump allocation of bitsets for the compiled requests of one engine call: one arena per fleet
 * columns, reset at the start of every `place`, `placeBatch` and `rank`, so compiling allocates no
 * typed array (a small one off the heap costs more than the filter it serves).
 */
export class BitArena {
  #array = new Int32Array(1024);
  #used = 0;

  /** Forgets every allocation: the compiled requests of the previous call are gone. */
  reset(): void {
    this.#used = 0;
  }

  /** `words` zeroed words; returns the array and the offset they start at. */
  take(words: number): { bits: Int32Array; offset: number } {
    if (this.#used + words > this.#array.length) {
      // Earlier takers keep the old array; it lives as long as they do.
      this.#array = new Int32Array(Math.max(this.#array.length * 2, words));
      this.#used = 0;
    }
    const offset = this.#used;
    this.#used += words;
    this.#array.fill(0, offset, offset + words);
    return { bits: this.#array, offset };
  }
}
