/**
 * The autoscaling controller's public surface: {@link decide} evaluates one pool from its spec,
 * what the leader observed and the state the last evaluation left, and returns a decision (or
 * none) with the next state. Pure: no I/O, no clock, no randomness; every value is plain data.
 *
 * @example
 * ```ts
 * import { decide, initialState } from "./mod.ts";
 * let state = initialState();
 * const outcome = decide(pool, observed, state, now_ms);
 * if (outcome.decision) propose({ type: "pool.scale", decision: outcome.decision, state: outcome.state });
 * state = outcome.state;
 * ```
 */
export { decide } from "./controller.ts";
export { demandWorkers, timeslotActive, wantedWithDemand } from "./demand.ts";
export { targetReplicas, workerAverages } from "./replicas.ts";
export {
  checkPoolSpec,
  COOLDOWN_SECONDS_MAX,
  REPLICAS_MAX,
  resolveBehaviour,
  scaleSpecIssues,
} from "./spec.ts";
export { remember, stabilised, windowBounds } from "./stabilise.ts";
export * from "./types.ts";
