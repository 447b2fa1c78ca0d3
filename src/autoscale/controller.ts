/**
 * The autoscaling controller: one pure evaluation of one pool. The leader calls {@link decide}
 * every `AUTOSCALE_INTERVAL` with what it observed and the state the previous call (or the
 * previous leader, through the log) left; it proposes the decision, with the new state, as a
 * command before any worker is started or stopped. No I/O, no clock (time is `now_ms`), no
 * randomness: the same inputs give the same answer on every node.
 *
 * The steps, after Kubernetes' HPA: the count each target wants (`replicas.ts`), the largest of
 * them; plus the workers that pending work and timeslots fill (`demand.ts`); clamped to
 * `[min, max]`; stabilised (`stabilise.ts`); and no decision within the cooldown.
 */
import { demandWorkers, wantedWithDemand } from "./demand.ts";
import { checkPoolSpec, resolveBehaviour } from "./spec.ts";
import { remember, stabilised, windowBounds } from "./stabilise.ts";
import { targetReplicas, workerAverages } from "./replicas.ts";
import {
  type AdaptiveScale,
  type Behaviour,
  type ControllerState,
  type Decision,
  type DecisionCause,
  type DecisionMetrics,
  type DemandMetric,
  type Observations,
  type Outcome,
  type PoolSpec,
  type ScaleTargets,
  TARGET_METRICS,
  type TargetMetric,
} from "./types.ts";

const TARGET_KEYS = ["cpu", "memory", "rps"] as const;

const NO_DEMAND: DemandMetric = {
  pending_allocations: 0,
  pending_workers: 0,
  workers_starting: 0,
  timeslots: 0,
  timeslot_workers: 0,
  too_large: 0,
};

/**
 * Evaluates one pool at `now_ms`: a decision to change its replica count (or null) and the state
 * to keep. Throws a `ValidationError` when the pool spec or the behaviour is out of range, and a
 * `RangeError` when the observations are (a negative count, a time that is not a number).
 *
 * @example
 * ```ts
 * import { decide, initialState } from "./mod.ts";
 * const pool = {
 *   name: "batch",
 *   scale: { mode: "adaptive", min: 1, max: 10, cooldown_seconds: 60, targets: { cpu: 60 } },
 *   worker_capacity: { cpu_millis: 4000, memory_mb: 8192, disk_mb: 0, slots: 8 },
 * } as const;
 * const seen = {
 *   current: 2,
 *   workers: ["w1", "w2"],
 *   samples: [
 *     { worker_id: "w1", at_ms: 9_000, cpu_percent: 90 },
 *     { worker_id: "w2", at_ms: 9_000, cpu_percent: 90 },
 *   ],
 *   pending: [],
 *   timeslots: [],
 * };
 * const { decision } = decide(pool, seen, initialState(), 10_000);
 * // decision: { pool: "batch", from: 2, to: 3, cause: "cpu", reason: "cpu at 90% per worker …" }
 * ```
 */
export function decide(
  pool: PoolSpec,
  observed: Observations,
  state: ControllerState,
  now_ms: number,
  behaviour: Partial<Behaviour> = {},
): Outcome {
  checkPoolSpec(pool);
  const knobs = resolveBehaviour(behaviour);
  checkObservations(observed, now_ms);
  if (pool.scale.mode === "fixed") return decideFixed(pool, pool.scale.replicas, observed, now_ms);
  return decideAdaptive(pool, pool.scale, observed, state, now_ms, knobs);
}

function checkObservations(observed: Observations, now_ms: number): void {
  if (!Number.isFinite(now_ms)) throw new RangeError(`now_ms must be a time in ms, got ${now_ms}`);
  if (!(Number.isSafeInteger(observed.current) && observed.current >= 0)) {
    throw new RangeError(`current must be a replica count ≥ 0, got ${observed.current}`);
  }
  for (const slot of observed.timeslots) {
    if (!(Number.isSafeInteger(slot.count) && slot.count >= 0)) {
      throw new RangeError(`timeslot ${slot.id}: count must be a whole number ≥ 0`);
    }
  }
}

function decideFixed(
  pool: PoolSpec,
  replicas: number,
  observed: Observations,
  now_ms: number,
): Outcome {
  const state: ControllerState = {
    recommendations: [],
    last_decision: null,
    last_decision_ms: null,
    evaluated_ms: now_ms,
    hold: null,
  };
  if (observed.current === replicas) return { decision: null, state };
  const decision: Decision = {
    pool: pool.name,
    from: observed.current,
    to: replicas,
    cause: "fixed",
    reason: `the pool is fixed at ${workers(replicas)}`,
    metrics: {
      targets: {},
      demand: NO_DEMAND,
      wanted: replicas,
      clamped: replicas,
      stabilised: replicas,
    },
  };
  return { decision, state: { ...state, last_decision: decision, last_decision_ms: now_ms } };
}

function decideAdaptive(
  pool: PoolSpec,
  scale: AdaptiveScale,
  observed: Observations,
  state: ControllerState,
  now_ms: number,
  behaviour: Behaviour,
): Outcome {
  const current = observed.current;
  const targets = measureTargets(scale.targets, observed, now_ms, behaviour);
  const measured = Object.values(targets).filter((t) => t.observed !== null);
  let fromMetrics = measured.length === 0 ? current : Math.max(...measured.map((t) => t.wanted));
  // HPA: a target without data blocks a scale-down the others want; it never blocks a scale-up.
  const unmeasured = measured.length < Object.keys(targets).length;
  if (unmeasured && fromMetrics < current) fromMetrics = current;
  const demand = demandWorkers(
    observed.pending,
    observed.timeslots,
    pool.worker_capacity,
    now_ms,
    scale.max,
    Math.max(0, current - observed.workers.length),
  );
  const wanted = wantedWithDemand(fromMetrics, current, demand);
  const clamped = clamp(wanted, scale);

  const gap = state.evaluated_ms === null || now_ms - state.evaluated_ms > behaviour.gap_ms;
  const hold = gap ? { at_ms: now_ms, replicas: clamp(current, scale) } : state.hold;
  const recommendations = remember(
    state.recommendations,
    { at_ms: now_ms, replicas: clamped },
    behaviour,
  );
  const bounds = windowBounds(recommendations, hold, now_ms, behaviour);
  const to = stabilised(current, bounds);
  const next: ControllerState = { ...state, recommendations, evaluated_ms: now_ms, hold };

  const cooling = state.last_decision_ms !== null &&
    now_ms - state.last_decision_ms < scale.cooldown_seconds * 1000;
  if (to === current || cooling) return { decision: null, state: next };

  const metrics: DecisionMetrics = { targets, demand, wanted, clamped, stabilised: to };
  const { cause, reason } = explain(current, to, scale, metrics, behaviour);
  const decision: Decision = { pool: pool.name, from: current, to, cause, reason, metrics };
  return { decision, state: { ...next, last_decision: decision, last_decision_ms: now_ms } };
}

function measureTargets(
  targets: ScaleTargets,
  observed: Observations,
  now_ms: number,
  behaviour: Behaviour,
): Partial<Record<keyof ScaleTargets, TargetMetric>> {
  const out: Partial<Record<keyof ScaleTargets, TargetMetric>> = {};
  for (const key of TARGET_KEYS) {
    const target = targets[key];
    if (target === undefined) continue;
    const metric = TARGET_METRICS[key];
    const averages = workerAverages(
      observed.samples,
      observed.workers,
      metric,
      now_ms,
      behaviour.metric_window_ms,
    );
    out[key] = targetReplicas(metric, target, averages, observed.current, behaviour.tolerance);
  }
  return out;
}

function clamp(n: number, scale: AdaptiveScale): number {
  return Math.min(scale.max, Math.max(scale.min, n));
}

const workers = (n: number) => `${n} worker${n === 1 ? "" : "s"}`;

/** `92%`, `12.5 rps`: one decimal at most. */
function amount(key: keyof ScaleTargets, value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return key === "rps" ? `${rounded} rps` : `${rounded}%`;
}

function targetWords(key: keyof ScaleTargets, t: TargetMetric): string {
  const observed = t.observed === null ? "no report" : amount(key, t.observed);
  const missing = t.workers_missing > 0 ? `, ${workers(t.workers_missing)} not reporting` : "";
  return `${key} at ${observed} per worker against a target of ${amount(key, t.target)}${missing}`;
}

/** The target that wants the most (the first listed on a tie), or null when none was measured. */
function drivingTarget(metrics: DecisionMetrics): keyof ScaleTargets | null {
  let best: keyof ScaleTargets | null = null;
  for (const key of TARGET_KEYS) {
    const t = metrics.targets[key];
    if (t === undefined || t.observed === null) continue;
    if (best === null || t.wanted > (metrics.targets[best]?.wanted ?? -1)) best = key;
  }
  return best;
}

function demandWords(demand: DemandMetric): string {
  const parts: string[] = [];
  if (demand.pending_workers > 0) {
    const n = demand.pending_allocations;
    const starting = demand.workers_starting > 0 ? `, ${demand.workers_starting} starting` : "";
    parts.push(
      `${n} pending allocation${n === 1 ? "" : "s"} that fit no worker need ` +
        `${workers(demand.pending_workers)} more${starting}`,
    );
  }
  if (demand.timeslot_workers > 0) {
    const n = demand.timeslots;
    parts.push(
      `${n} timeslot${n === 1 ? "" : "s"} within ${n === 1 ? "its" : "their"} lead time ` +
        `need${n === 1 ? "s" : ""} ${workers(demand.timeslot_workers)}`,
    );
  }
  return parts.join(" and ");
}

/** What drove the change, and the sentence an operator reads. */
function explain(
  from: number,
  to: number,
  scale: AdaptiveScale,
  metrics: DecisionMetrics,
  behaviour: Behaviour,
): { cause: DecisionCause; reason: string } {
  const direction = to > from ? "up" : "down";
  const head = `scale ${direction} from ${from} to ${to}`;
  const key = drivingTarget(metrics);
  const load = key === null ? "" : targetWords(key, metrics.targets[key] as TargetMetric);
  let cause: DecisionCause;
  let why: string;
  const demand = metrics.demand;
  if (demand.pending_workers + demand.timeslot_workers > 0 && to > from) {
    cause = demand.pending_workers >= demand.timeslot_workers ? "pending" : "timeslots";
    why = demandWords(metrics.demand) + (load === "" ? "" : ` (${load})`);
  } else if (key !== null) {
    cause = key;
    why = `${load}: ${workers(metrics.wanted)} wanted`;
  } else {
    cause = direction === "up" ? "min" : "max";
    why = "no target reported";
  }
  if (metrics.clamped !== metrics.wanted) {
    const bound = metrics.clamped > metrics.wanted ? "min" : "max";
    if (metrics.clamped === to) cause = bound;
    why += `; held to ${bound} ${bound === "min" ? scale.min : scale.max}`;
  }
  if (to !== metrics.clamped) {
    cause = "stabilised";
    const window_s = Math.round(
      (direction === "down" ? behaviour.scale_down_window_ms : behaviour.scale_up_window_ms) / 1000,
    );
    const edge = direction === "down" ? "highest" : "lowest";
    why += `; ${to} is the ${edge} recommendation of the last ${window_s} s`;
  }
  return { cause, reason: `${head}: ${why}` };
}
