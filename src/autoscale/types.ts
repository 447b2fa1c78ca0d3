/**
 * The autoscaling controller's vocabulary: a pool's scale spec, what the leader observed, the
 * controller's memory and its decisions. Everything here is plain data (JSON in, JSON out), so a
 * decision and the state behind it can be a command in the log and a new leader can continue
 * from them. Field names are the wire names of issue 13 (`cooldown_seconds`, `targets.cpu`).
 */

/** A fixed pool: exactly `replicas` workers, whatever the load. */
export interface FixedScale {
  mode: "fixed";
  replicas: number;
}

/**
 * What the controller aims at, per worker: `cpu` and `memory` in percent of a worker's capacity
 * (1..100), `rps` in requests per second per worker (> 0). At least one is set.
 */
export interface ScaleTargets {
  cpu?: number;
  memory?: number;
  rps?: number;
}

/** An adaptive pool: between `min` and `max` workers, steered by `targets`. */
export interface AdaptiveScale {
  mode: "adaptive";
  min: number;
  max: number;
  /** No two decisions closer than this. */
  cooldown_seconds: number;
  targets: ScaleTargets;
}

/** A pool's scale spec, as `PUT /pools/{name}` carries it. */
export type ScaleSpec = FixedScale | AdaptiveScale;

/**
 * An amount of resources. The same field names as the placement engine's `Resources`
 * (`src/placement/types.ts`), declared again because the two modules sit in one layer and may
 * not import each other; a placement `Resources` value is one of these as it is.
 */
export interface Resources {
  cpu_millis: number;
  memory_mb: number;
  disk_mb: number;
  slots: number;
}

/** The resources in the order the controller checks and packs them. */
export const RESOURCE_NAMES = ["cpu_millis", "memory_mb", "disk_mb", "slots"] as const;

/** A pool as the controller needs it: its name, its scale spec and what one worker holds. */
export interface PoolSpec {
  name: string;
  scale: ScaleSpec;
  /** The capacity of one worker of the pool (the pool's template), to turn demand into workers. */
  worker_capacity: Resources;
}

/** The metrics a target can follow, named as the workers' heartbeats name them. */
export type MetricName = "cpu_percent" | "memory_percent" | "rps";

/** The metric each target follows. */
export const TARGET_METRICS = {
  cpu: "cpu_percent",
  memory: "memory_percent",
  rps: "rps",
} as const satisfies Record<keyof ScaleTargets, MetricName>;

/**
 * One usage report of one worker (a heartbeat), taken at `at_ms`. A metric the worker did not
 * report is absent; a worker that reported nothing within the window is *missing* for it.
 */
export interface MetricSample {
  worker_id: string;
  at_ms: number;
  cpu_percent?: number;
  memory_percent?: number;
  rps?: number;
}

/** An allocation of the pool that fits no worker of it now, with what it asks for. */
export interface PendingAllocation {
  id: string;
  resources: Resources;
}

/**
 * A timeslot (a reservation ahead, issue 12's *capacity wanted*): `count` allocations of
 * `resources` that are not running yet. It needs workers from `start_ms - lead_ms` (so they are
 * up when it starts) until `end_ms`, on top of those the running load needs; as its allocations
 * start, the caller lowers `count` and their usage shows in the metrics instead.
 */
export interface PendingTimeslot {
  id: string;
  start_ms: number;
  end_ms: number;
  lead_ms: number;
  count: number;
  resources: Resources;
}

/** What the leader sees of a pool at one evaluation. */
export interface Observations {
  /**
   * The replica count the pool runs at: the last decided count (or the fixed count), which the
   * provider is bringing the pool to. Workers still starting count in it.
   */
  current: number;
  /** The pool's workers that count toward `current` (registered, not draining, not lost). */
  workers: readonly string[];
  /** Recent usage reports; those of other workers and those outside the window are ignored. */
  samples: readonly MetricSample[];
  /**
   * Allocations that fit no registered worker of the pool now. The caller lists them until they
   * are placed; the workers starting for them (in `current`, not in `workers`) are counted.
   */
  pending: readonly PendingAllocation[];
  /** Timeslots of the pool with allocations not yet running (the controller checks the lead time). */
  timeslots: readonly PendingTimeslot[];
}

/**
 * One recommendation kept for the stabilisation windows: at `at_ms` the pool wanted `replicas`
 * (already clamped to `[min, max]`).
 */
export interface Recommendation {
  at_ms: number;
  replicas: number;
}

/**
 * The controller's memory, plain JSON data: replicated with each decision, handed to the next
 * leader. The same state, observations and time give the same answer on any node.
 */
export interface ControllerState {
  /**
   * The recommendations that can still decide a stabilised count, oldest first. Only those that
   * may become the highest of the scale-down window or the lowest of the scale-up window are kept,
   * so the list stays shorter than twice `max - min + 1`.
   */
  recommendations: Recommendation[];
  /** The last decision made for the pool (null before the first). */
  last_decision: Decision | null;
  /** When the last decision was made (null before the first): the start of the cooldown. */
  last_decision_ms: number | null;
  /**
   * The time of the previous evaluation (null before the first). A later evaluation more than
   * {@link Behaviour.gap_ms} after it has not seen what happened in between (a new leader with
   * the state of the last decision) and holds the current count for a scale-down window.
   */
  evaluated_ms: number | null;
  /**
   * The count held at the first evaluation or after a gap: it counts as the highest
   * recommendation of the scale-down window until `at_ms` leaves that window, so a controller
   * that has not watched a whole window never scales down on what it did not see.
   */
  hold: Recommendation | null;
}

/** The measurement behind one target at one decision. */
export interface TargetMetric {
  metric: MetricName;
  /** The target per worker (percent, or requests per second). */
  target: number;
  /** The average per reporting worker over the window; null when no worker reported it. */
  observed: number | null;
  /** Workers that reported the metric within the window. */
  workers_reporting: number;
  /** Workers counted in `current` without a report (filled in as HPA does). */
  workers_missing: number;
  /** The replica count this target alone wants. */
  wanted: number;
}

/** The demand behind one decision: work that is not running and needs workers, in workers. */
export interface DemandMetric {
  pending_allocations: number;
  /** Workers of the pool's capacity the pending allocations fill. */
  pending_workers: number;
  /** Workers counted in `current` that have not registered yet: they will take pending work. */
  workers_starting: number;
  /** Timeslots within their lead time. */
  timeslots: number;
  /** Workers of the pool's capacity the timeslots' allocations fill. */
  timeslot_workers: number;
  /** Allocations or timeslot parts larger than one worker: no scaling can place them. */
  too_large: number;
}

/** The numbers behind a decision, so it can be read back from the log. */
export interface DecisionMetrics {
  targets: Partial<Record<keyof ScaleTargets, TargetMetric>>;
  demand: DemandMetric;
  /** The count the targets and demand want, before `[min, max]`. */
  wanted: number;
  /** After `[min, max]`. */
  clamped: number;
  /** After the stabilisation windows: the decided count. */
  stabilised: number;
}

/** What drove a decision, for metrics and for an operator. */
export type DecisionCause =
  | "fixed"
  | "cpu"
  | "memory"
  | "rps"
  | "pending"
  | "timeslots"
  | "min"
  | "max"
  | "stabilised";

/** One scaling decision: a command in the log before anything is done. */
export interface Decision {
  pool: string;
  from: number;
  to: number;
  /** What drove it. */
  cause: DecisionCause;
  /** The same in words an operator understands. */
  reason: string;
  metrics: DecisionMetrics;
}

/** The answer of one evaluation: a decision or none, and the state for the next one. */
export interface Outcome {
  decision: Decision | null;
  state: ControllerState;
}

/** The controller's knobs (HPA's flags and `behavior`), all with defaults. */
export interface Behaviour {
  /** No change while every target's ratio is within `1 ± tolerance`. Default 0.1. */
  tolerance: number;
  /** The window each metric is averaged over. Default 30 s. */
  metric_window_ms: number;
  /** A scale-down goes only to the highest recommendation of this window. Default 300 s. */
  scale_down_window_ms: number;
  /** A scale-up goes only to the lowest recommendation of this window. Default 0: at once. */
  scale_up_window_ms: number;
  /**
   * An evaluation this long after the previous one has missed the recommendations in between
   * and keeps the current count for a scale-down window. Default 60 s (four intervals of 15 s).
   */
  gap_ms: number;
}

/** HPA's defaults, with a 30 s metric window (the metrics server's) and a 60 s gap. */
export const DEFAULT_BEHAVIOUR: Readonly<Behaviour> = Object.freeze({
  tolerance: 0.1,
  metric_window_ms: 30_000,
  scale_down_window_ms: 300_000,
  scale_up_window_ms: 0,
  gap_ms: 60_000,
});

/** The state of a pool the controller has never evaluated. */
export function initialState(): ControllerState {
  return {
    recommendations: [],
    last_decision: null,
    last_decision_ms: null,
    evaluated_ms: null,
    hold: null,
  };
}
