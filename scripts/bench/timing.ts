/**
 * Timing of synchronous code for the micro-benchmarks (codec, command codec, input limits,
 * timers): warm-up calls first, then timed rounds, and the middle round reported, since the build
 * machines are shared and a single round catches whatever else ran.
 *
 * @module
 */

/** How {@link perCallMs} times a function. */
export interface TimingPlan {
  /** Untimed calls before the first round (JIT warm-up). */
  warmup_calls: number;
  /** Timed rounds; the middle one is reported. */
  rounds: number;
  /** Calls per round. */
  calls: number;
}

/**
 * Milliseconds per call of `fn` (given the call's index within its round, from 0): the middle of
 * the sorted rounds (for an even count, the upper of the two middle ones).
 */
export function perCallMs(fn: (i: number) => void, plan: TimingPlan): number {
  for (let i = 0; i < plan.warmup_calls; i++) fn(i);
  const per_call_ms: number[] = [];
  for (let round = 0; round < plan.rounds; round++) {
    const t0 = performance.now();
    for (let i = 0; i < plan.calls; i++) fn(i);
    per_call_ms.push((performance.now() - t0) / plan.calls);
  }
  per_call_ms.sort((a, b) => a - b);
  return per_call_ms[Math.floor(per_call_ms.length / 2)];
}
