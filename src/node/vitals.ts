/**
 * The loops a node cannot run without (the log's flush, the Raft loop, apply, the timer, the
 * delivery dispatcher) report here when they stop. The first failure is kept: from then on
 * `/health` and `/ready` answer 503 with its reason, and the process exits non-zero so that
 * systemd, Fly or Kubernetes restarts it (see `src/main.ts`). A node never goes on half-alive.
 *
 * The loops and their fault points are named in `src/faults.ts`.
 *
 * @module
 */
import type { VitalLoop } from "../faults.ts";

/** The first vital failure of a node. */
export interface VitalFailure {
  loop: VitalLoop;
  message: string;
  at_ms: number;
}

/** Records the first vital failure and tells whoever waits for it. */
export class Vitals {
  #failure: VitalFailure | null = null;
  #resolve: (failure: VitalFailure) => void = () => {};
  /** Resolves with the first failure. */
  readonly failed: Promise<VitalFailure> = new Promise((resolve) => this.#resolve = resolve);

  /** The first failure, or null while every vital loop runs. */
  get failure(): VitalFailure | null {
    return this.#failure;
  }

  /** Reports that `loop` stopped because of `error`; later reports are ignored. */
  fail(loop: VitalLoop, error: unknown): void {
    if (this.#failure !== null) return;
    const message = error instanceof Error ? error.message : String(error);
    this.#failure = { loop, message, at_ms: Date.now() };
    this.#resolve(this.#failure);
  }
}
