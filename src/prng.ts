/**
 * A small seeded pseudo-random generator (sfc32, from PractRand), so the core and the simulator
 * never call `Math.random()` and every run replays from one 32-bit seed.
 *
 * @example
 * ```ts
 * const random = sfc32(42);
 * const x = random(); // in [0, 1), the same for every run with seed 42
 * ```
 */
export function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // Mixing rounds: nearby seeds give unrelated streams.
  for (let i = 0; i < 15; i++) next();
  return next;
}

/** An integer in [lo, hi] drawn from `random`. */
export function randomInt(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}
