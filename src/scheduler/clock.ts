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

/** The real clock: `Date.now()` and the runtime's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
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
