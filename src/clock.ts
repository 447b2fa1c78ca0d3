/**
 * Time as a dependency. Everything that reads the time or waits takes a `Clock`, so tests can
 * run weeks of schedules in simulated time and production uses the system clock.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(Date.UTC(2026, 0, 1));
 * clock.setTimeout(() => console.log("fired at", clock.now()), 1_000);
 * clock.advance(1_000); // runs the callback
 * ```
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once, `delay_ms` from now. */
  setTimeout(fn: () => void, delay_ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque handle of a pending clock timer. */
export type TimerHandle = number;

/** Wall-clock corrections up to this size are followed at once. */
const STEP_TOLERANCE_MS = 1_000;
/** Beyond it, the clock catches up with (or waits for) the wall clock at this share of real time. */
const SLEW_RATE = 0.1;

/**
 * Wall-clock time that does not jump: small corrections are followed at once, but a step of
 * the wall clock (an NTP step, a manual change) larger than `STEP_TOLERANCE_MS` relative to the
 * monotonic clock is absorbed by running up to 10% fast or slow until the two agree again, and
 * the value never goes back. A forward step would otherwise fire every occurrence inside the
 * step at once (found by the Jepsen clock nemesis: a +7 s step on the leader delivered jobs 7 s
 * early); a backward step would hold them back.
 */
export class SteadyWallClock {
  #last_ms: number;
  #last_mono_ms: number;

  constructor(
    private readonly wall: () => number = Date.now,
    private readonly mono: () => number = () => performance.now(),
  ) {
    this.#last_ms = wall();
    this.#last_mono_ms = mono();
  }

  now(): number {
    const mono_ms = this.mono();
    const elapsed_ms = Math.max(0, mono_ms - this.#last_mono_ms);
    const steady_ms = this.#last_ms + elapsed_ms;
    const drift_ms = this.wall() - steady_ms;
    const slew_ms = elapsed_ms * SLEW_RATE;
    const next_ms = Math.abs(drift_ms) <= STEP_TOLERANCE_MS
      ? Math.max(this.#last_ms, steady_ms + drift_ms)
      : steady_ms + Math.sign(drift_ms) * slew_ms;
    this.#last_ms = next_ms;
    this.#last_mono_ms = mono_ms;
    return Math.floor(next_ms);
  }
}

const steady = new SteadyWallClock();

/** The real clock: wall-clock time without steps (`SteadyWallClock`), and the runtime's timers. */
export const systemClock: Clock = {
  now: () => steady.now(),
  // Deno returns a number; the Number() keeps the type when Node typings are in the graph.
  setTimeout: (fn, delay_ms) => Number(setTimeout(fn, Math.max(0, delay_ms))),
  clearTimeout: (handle) => clearTimeout(handle),
};

interface ManualTimer {
  handle: TimerHandle;
  due_ms: number;
  fn: () => void;
}

/**
 * A simulated clock: time moves only when a test calls `advance` or `advanceTo`, and timers run
 * in due order (ties in the order they were set) as time passes them.
 */
export class ManualClock implements Clock {
  #now_ms: number;
  #timers: ManualTimer[] = [];
  #next_handle = 1;

  constructor(start_ms: number) {
    this.#now_ms = start_ms;
  }

  now(): number {
    return this.#now_ms;
  }

  setTimeout(fn: () => void, delay_ms: number): TimerHandle {
    const handle = this.#next_handle++;
    this.#timers.push({ handle, due_ms: this.#now_ms + Math.max(0, delay_ms), fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.handle !== handle);
  }

  /** Number of timers not yet run. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `delta_ms`, running every timer that falls due on the way. */
  advance(delta_ms: number): void {
    this.advanceTo(this.#now_ms + delta_ms);
  }

  /** Moves time to `target_ms`, running due timers in order; timers they set also run if due. */
  advanceTo(target_ms: number): void {
    if (target_ms < this.#now_ms) throw new Error("ManualClock cannot go back in time");
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.due_ms <= target_ms && (next === undefined || t.due_ms < next.due_ms)) next = t;
      }
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now_ms = Math.max(this.#now_ms, next.due_ms);
      next.fn();
    }
    this.#now_ms = target_ms;
  }
}
