/**
 * The loops a node cannot run without (the log's flush, the Raft loop, apply, the timer, the
 * delivery dispatcher) report here when they stop. The first failure is kept: from then on
 * `/health` and `/ready` answer 503 with its reason, and the process exits non-zero so that
 * systemd, Fly or Kubernetes restarts it (see `src/main.ts`). A node never goes on half-alive.
 *
 * Fault points: the same loops call `fault(point)` at the places a test may make them fail. The
 * production node passes no hook; a test entry (tests/support/faulty_node.ts) passes one that
 * throws at the named point.
 *
 * @module
 */

/** A loop the node cannot run without. */
export type VitalLoop = "log_flush" | "raft_loop" | "apply" | "timer" | "dispatcher";

/** Where a test can make a vital loop fail. */
export type FaultPoint = "log.flush" | "raft.round" | "apply.effects" | "timer.wake" | "dispatch";

/** Called at each fault point; throws to inject a failure there. */
export type FaultHook = (point: FaultPoint) => void;

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
