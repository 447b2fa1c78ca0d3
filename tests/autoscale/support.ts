/**
 * A pool in simulated time for the controller's tests: the pool's total load is spread evenly over
 * its workers, each worker reports a heartbeat every `sample_every_ms`, and the controller runs
 * every `interval_ms`; a decision changes the worker count at once (new workers report from the
 * next heartbeat on). Everything is a function of the scenario: no clock, no randomness.
 */
import {
  type Behaviour,
  type ControllerState,
  decide,
  type Decision,
  initialState,
  type MetricSample,
  type PendingAllocation,
  type PendingTimeslot,
  type PoolSpec,
  type Resources,
  type ScaleSpec,
} from "../../src/autoscale/mod.ts";

/** Runs per property: `FUZZ_RUNS` from the environment, else a CI-sized default. */
export const FUZZ_RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "200");

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60_000;

/** The pool's total load at a time: the sum over workers (cpu and memory in percent of one). */
export interface Load {
  cpu?: number;
  memory?: number;
  rps?: number;
}

export interface Scenario {
  scale: ScaleSpec;
  /** Worker count at the start. */
  current: number;
  minutes: number;
  load: (t_ms: number) => Load;
  /** Pending allocations at a time, given the worker count then. */
  pending?: (t_ms: number, current: number) => PendingAllocation[];
  timeslots?: (t_ms: number, current: number) => PendingTimeslot[];
  /** Workers that send no heartbeat at a time (by index in the pool). */
  silent?: (t_ms: number, index: number) => boolean;
  behaviour?: Partial<Behaviour>;
  /** Default 15 s (`AUTOSCALE_INTERVAL`). */
  interval_ms?: number;
  /** Default 5 s. */
  sample_every_ms?: number;
  /** The state the controller starts from (default: a fresh one). */
  state?: ControllerState;
  start_ms?: number;
  /**
   * Called before each evaluation with the state the controller is about to get; what it returns
   * is given instead (a leader change hands the state over).
   */
  handover?: (t_ms: number, state: ControllerState) => ControllerState;
}

/** One evaluation of the run. */
export interface Tick {
  t_ms: number;
  current: number;
  decision: Decision | null;
  state: ControllerState;
}

export interface Run {
  ticks: Tick[];
  /** The decisions with the time they were made. */
  decisions: { t_ms: number; decision: Decision }[];
  final: number;
}

export function capacity(cpu_millis = 4000, memory_mb = 8192, slots = 8): Resources {
  return { cpu_millis, memory_mb, disk_mb: 0, slots };
}

export function pool(scale: ScaleSpec, worker_capacity = capacity()): PoolSpec {
  return { name: "batch", scale, worker_capacity };
}

export function adaptive(
  fields: Partial<Extract<ScaleSpec, { mode: "adaptive" }>> = {},
): ScaleSpec {
  return {
    mode: "adaptive",
    min: 1,
    max: 20,
    cooldown_seconds: 0,
    targets: { cpu: 60 },
    ...fields,
  };
}

const share = (total: number | undefined, n: number, cap: number) =>
  total === undefined ? undefined : Math.min(cap, total / n);

/** Runs a scenario; heartbeats older than two metric windows are dropped as a leader would. */
export function simulate(s: Scenario): Run {
  const interval_ms = s.interval_ms ?? 15 * SECOND_MS;
  const sample_every_ms = s.sample_every_ms ?? 5 * SECOND_MS;
  const start_ms = s.start_ms ?? 0;
  const end_ms = start_ms + s.minutes * MINUTE_MS;
  const spec = pool(s.scale);
  let current = s.current;
  let state = s.state ?? initialState();
  let samples: MetricSample[] = [];
  const ticks: Tick[] = [];
  const decisions: Run["decisions"] = [];
  const ids = () => Array.from({ length: current }, (_, i) => `w${i}`);
  for (let t = start_ms + sample_every_ms; t <= end_ms; t += sample_every_ms) {
    const load = s.load(t);
    for (const [i, id] of ids().entries()) {
      if (s.silent?.(t, i)) continue;
      samples.push({
        worker_id: id,
        at_ms: t,
        cpu_percent: share(load.cpu, current, 100),
        memory_percent: share(load.memory, current, 100),
        rps: share(load.rps, current, Infinity),
      });
    }
    samples = samples.filter((x) => x.at_ms > t - 2 * 30 * SECOND_MS);
    if ((t - start_ms) % interval_ms !== 0) continue;
    if (s.handover) state = s.handover(t, state);
    const outcome = decide(
      spec,
      {
        current,
        workers: ids(),
        samples,
        pending: s.pending?.(t, current) ?? [],
        timeslots: s.timeslots?.(t, current) ?? [],
      },
      state,
      t,
      s.behaviour,
    );
    state = outcome.state;
    ticks.push({ t_ms: t, current, decision: outcome.decision, state });
    if (outcome.decision) {
      decisions.push({ t_ms: t, decision: outcome.decision });
      current = outcome.decision.to;
    }
  }
  return { ticks, decisions, final: current };
}

/** The worker count at `t_ms` (after the evaluation at that time). */
export function countAt(run: Run, initial: number, t_ms: number): number {
  let count = initial;
  for (const d of run.decisions) if (d.t_ms <= t_ms) count = d.decision.to;
  return count;
}
