/**
 * The placement engine's vocabulary. Field names are the wire names of issue 11 (`cpu_millis`,
 * `not_in`, `NoSchedule`, ...), so the HTTP layer maps a request body onto a
 * {@link PlacementRequest} one to one.
 */

/** An amount of every resource the engine places. Integers ≥ 0. */
export interface Resources {
  cpu_millis: number;
  memory_mb: number;
  disk_mb: number;
  slots: number;
}

/** The resources in the order the engine stores, checks and reports them. */
export const RESOURCE_NAMES = ["cpu_millis", "memory_mb", "disk_mb", "slots"] as const;

/** One of {@link RESOURCE_NAMES}. */
export type ResourceName = typeof RESOURCE_NAMES[number];

/** A worker's state as the registry sees it. Only `ready` takes new placements. */
export type WorkerStatus = "ready" | "draining" | "lost";

/** What a taint does to a request that does not tolerate it (Kubernetes' effects). */
export type TaintEffect = "NoSchedule" | "PreferNoSchedule";

/** A mark on a worker that keeps requests off it unless they tolerate it. */
export interface Taint {
  key: string;
  value: string;
  effect: TaintEffect;
}

/**
 * A worker as the placement engine needs it. `free` is what the caller computed as capacity minus
 * what allocations (and later reservations or quotas) hold; the engine never looks at allocations.
 */
export interface WorkerView {
  id: string;
  pool: string;
  region: string;
  zone: string;
  labels: Record<string, string>;
  taints: Taint[];
  status: WorkerStatus;
  capacity: Resources;
  free: Resources;
  /** Running allocations on this worker by job label, keyed `k=v` (for affinity). */
  running_by_label?: Record<string, number>;
  /** Running allocations on this worker by job id (for spread). */
  running_by_job?: Record<string, number>;
}

/** Constraint operators, as on the wire. */
export type ConstraintOperator = "=" | "!=" | "in" | "not_in" | "exists" | "not_exists";

/**
 * A condition on one attribute of a worker: a label name, or one of the built-in attributes
 * `region`, `zone`, `pool`, `worker.id` (which win over a label of the same name).
 * `required` (the default) filters; `preferred` scores with `weight` (-100..100, not 0).
 */
export interface Constraint {
  attribute: string;
  operator: ConstraintOperator;
  /** The operand of `=` and `!=`. */
  value?: string;
  /** The operands of `in` and `not_in`. */
  values?: string[];
  mode?: "required" | "preferred";
  weight?: number;
}

/**
 * Prefer (`affinity`) or avoid (`anti_affinity`) workers already running allocations of jobs
 * whose labels match `selector`. A worker matches when, for every `k: v` of the selector, it runs
 * at least one allocation of a job labelled `k=v` (the counts come per label, so the pairs of a
 * selector with several pairs may be met by different allocations).
 */
export interface AffinityTerm {
  selector: Record<string, string>;
  /** 1..100. */
  weight: number;
}

/** Kubernetes-style toleration: `Exists` with no key tolerates every taint. */
export interface Toleration {
  key?: string;
  operator?: "Equal" | "Exists";
  value?: string;
  /** No effect: tolerates the key (and value) with every effect. */
  effect?: TaintEffect;
}

/**
 * Spread a job's allocations over the values of an attribute: evenly, or by `targets`
 * (percent per value; values not listed share what the listed ones leave).
 */
export interface SpreadSpec {
  attribute: string;
  targets?: Record<string, number>;
}

/** How the fit score ranks workers: fullest first, emptiest first, or no preference. */
export type Strategy = "binpack" | "spread" | "random";

/** One placement request: `count` allocations of one job on distinct workers. */
export interface PlacementRequest {
  job_id: string;
  /** Carried for quotas (issue 12); unused by the engine today. */
  namespace?: string;
  /** Carried for reservations (issue 12); unused by the engine today. */
  reservation_id?: string;
  /** The labels of the job being placed, counted for later affinity once applied. */
  job_labels?: Record<string, string>;
  /** Absent: any pool. */
  pool?: string;
  resources: Resources;
  constraints?: Constraint[];
  affinity?: AffinityTerm[];
  anti_affinity?: AffinityTerm[];
  tolerations?: Toleration[];
  spread?: SpreadSpec;
  /** Default `binpack`. */
  strategy?: Strategy;
  /** N allocations on N distinct workers, or one on every feasible worker. Default 1. */
  count?: number | "all";
}

/** The score components a worker can get; each in [-1, 1], the final score is their mean. */
export type ScoreName = "fit" | "constraints" | "affinity" | "taints" | "spread";

/** A scored worker: its final score and the components that made it. */
export interface ScoredWorker {
  worker_id: string;
  score: number;
  components: Partial<Record<ScoreName, number>>;
}

/** Which filter stage removed workers. */
export type FilterStage = "pool" | "status" | "distinct" | "constraint" | "taint" | "resources";

/** Workers one filter removed, each worker counted under the first filter that removed it. */
export interface FilterCount {
  stage: FilterStage;
  /** What a user can act on: `region in [fra, ams]`, `memory exhausted`, `draining`. */
  reason: string;
  workers: number;
}

/**
 * Why the workers of the fleet were or were not candidates for one pick. The counts add up:
 * `sum(filtered[].workers) + feasible + (workers_total - workers_evaluated) === workers_total`.
 * Workers outside the request's pool count as evaluated (the pool index removes them unvisited).
 * In the bounded mode the engine stops after enough candidates, so on success
 * `workers_evaluated` may be less than `workers_total`; a failed pick has evaluated all of them.
 */
export interface Explanation {
  workers_total: number;
  workers_evaluated: number;
  feasible: number;
  filtered: FilterCount[];
}

/** The engine's answer to one request. */
export interface Decision {
  job_id: string;
  /** True when every wanted allocation found a worker (`all`: at least one). */
  ok: boolean;
  /** The chosen workers, in the order picked. */
  placements: ScoredWorker[];
  /** Allocations wanted but not placed (0 when ok; always 0 for `count: "all"`). */
  unplaced: number;
  /** The best candidates of the last pick that were not chosen, best first. */
  runners_up: ScoredWorker[];
  /** The filter counts of the last pick (the failing one when not ok). */
  explanation: Explanation;
  /** What {@link Fleet.apply} holds for each placement. */
  resources: Resources;
  job_labels: Record<string, string>;
}

/** What one allocation holds on one worker: applied with `Fleet.hold`, given back with `release`. */
export interface Hold {
  worker_id: string;
  job_id: string;
  job_labels?: Record<string, string>;
  resources: Resources;
}

/** Knobs of one placement call. */
export interface PlaceOptions {
  /** Seeds the candidate order and the tie-breaks: the same seed gives the same choice. */
  seed: number;
  /**
   * Score every feasible worker instead of the first `candidates_max` feasible ones in a seeded
   * random order. Requests with preferences (preferred constraints, affinity, spread) are
   * always exhaustive, as in Nomad.
   */
  exhaustive?: boolean;
  /** Feasible workers scored per pick in the bounded mode (default {@link CANDIDATES_MAX}). */
  candidates_max?: number;
  /** Runners-up kept per decision (default {@link RUNNERS_UP_MAX}). */
  runners_up_max?: number;
}

/** Default feasible candidates scored per pick in the bounded mode. */
export const CANDIDATES_MAX = 8;

/** Default runners-up reported per decision. */
export const RUNNERS_UP_MAX = 3;
