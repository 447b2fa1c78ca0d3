/**
 * A counting semaphore that bounds concurrent work, such as in-flight webhook deliveries.
 * Waiters are served first in, first out, and a released permit passes straight to the oldest
 * waiter, so a steady stream of `tryAcquire` calls cannot starve them.
 *
 * @example
 * ```ts
 * const inFlight = new Semaphore(64);
 * await inFlight.acquire();
 * try {
 *   await work();
 * } finally {
 *   inFlight.release();
 * }
 * ```
 *
 * @module
 */

/** Hands a permit to a queued `acquire`. */
type Waiter = () => void;

/** Bounds the number of permits held at once to `max`. */
export class Semaphore {
  readonly max: number;
  #in_use = 0;
  #waiters: Waiter[] = [];

  /** `max` must be an integer >= 1. */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`Semaphore max must be an integer >= 1, got ${max}`);
    }
    this.max = max;
  }

  /** Takes a permit if one is free now and nobody is waiting; true when taken. */
  tryAcquire(): boolean {
    if (this.#in_use >= this.max || this.#waiters.length > 0) return false;
    this.#in_use++;
    return true;
  }

  /**
   * Resolves once a permit is held. Aborting `signal` while waiting rejects with its reason and
   * leaves the queue; an already aborted signal rejects without taking a permit.
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Returns a permit; throws when none is held. */
  release(): void {
    if (this.#in_use === 0) throw new Error("Semaphore.release without a held permit");
    const next = this.#waiters.shift();
    if (next === undefined) {
      this.#in_use--;
    } else {
      next();
    }
  }

  /** Permits held now. */
  get inUse(): number {
    return this.#in_use;
  }

  /** Callers queued in `acquire`. */
  get waiting(): number {
    return this.#waiters.length;
  }
}
