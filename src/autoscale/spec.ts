/**
 * Checks of a pool's scale spec and of the controller's knobs. The HTTP layer validates the wire
 * shape with zod; these are the rules between fields (`min ≤ max`, at least one target) that the
 * controller relies on, with messages that say what to change. A `ValidationError` maps to 400.
 */
import { type FieldIssue, ValidationError } from "../errors.ts";
import {
  type Behaviour,
  DEFAULT_BEHAVIOUR,
  type PoolSpec,
  RESOURCE_NAMES,
  type ScaleSpec,
  type ScaleTargets,
} from "./types.ts";

/** The largest replica count a pool may ask for: a bound on every loop over workers. */
export const REPLICAS_MAX = 10_000;

/** The longest cooldown: one day. */
export const COOLDOWN_SECONDS_MAX = 86_400;

const isCount = (n: number, max: number) => Number.isSafeInteger(n) && n >= 0 && n <= max;

/** The problems of one scale spec, each with the field it is about; empty when it is valid. */
export function scaleSpecIssues(scale: ScaleSpec, path = "scale"): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const issue = (field: string, message: string) =>
    issues.push({ path: `${path}.${field}`, message });
  if (scale.mode === "fixed") {
    if (!isCount(scale.replicas, REPLICAS_MAX)) {
      issue("replicas", `must be a whole number from 0 to ${REPLICAS_MAX}`);
    }
    return issues;
  }
  if (!isCount(scale.min, REPLICAS_MAX)) {
    issue("min", `must be a whole number from 0 to ${REPLICAS_MAX}`);
  }
  if (!isCount(scale.max, REPLICAS_MAX) || scale.max < 1) {
    issue("max", `must be a whole number from 1 to ${REPLICAS_MAX}`);
  }
  if (issues.length === 0 && scale.min > scale.max) {
    issue("min", `is ${scale.min}, above max ${scale.max}: lower min or raise max`);
  }
  if (!isCount(scale.cooldown_seconds, COOLDOWN_SECONDS_MAX)) {
    issue(
      "cooldown_seconds",
      `must be a whole number of seconds from 0 to ${COOLDOWN_SECONDS_MAX}`,
    );
  }
  issues.push(...targetIssues(scale.targets, `${path}.targets`));
  return issues;
}

function targetIssues(targets: ScaleTargets, path: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const set = (["cpu", "memory", "rps"] as const).filter((k) => targets[k] !== undefined);
  if (set.length === 0) {
    issues.push({ path, message: "set at least one of cpu, memory (percent) or rps (per worker)" });
  }
  for (const key of ["cpu", "memory"] as const) {
    const value = targets[key];
    if (value !== undefined && !(Number.isFinite(value) && value > 0 && value <= 100)) {
      issues.push({ path: `${path}.${key}`, message: "must be a percentage above 0, at most 100" });
    }
  }
  if (targets.rps !== undefined && !(Number.isFinite(targets.rps) && targets.rps > 0)) {
    issues.push({
      path: `${path}.rps`,
      message: "must be a number of requests per second above 0",
    });
  }
  return issues;
}

/** Throws a {@link ValidationError} naming every problem of the pool spec. */
export function checkPoolSpec(pool: PoolSpec): void {
  const issues = scaleSpecIssues(pool.scale);
  if (pool.name.length === 0) issues.push({ path: "name", message: "must not be empty" });
  for (const name of RESOURCE_NAMES) {
    const amount = pool.worker_capacity[name];
    if (!(Number.isSafeInteger(amount) && amount >= 0)) {
      issues.push({ path: `worker_capacity.${name}`, message: "must be a whole number ≥ 0" });
    }
  }
  if (issues.length > 0) {
    const list = issues.map((i) => `${i.path} ${i.message}`).join("; ");
    throw new ValidationError(`pool ${JSON.stringify(pool.name)}: ${list}`, issues);
  }
}

/** The knobs with defaults filled in; throws a {@link ValidationError} on a value out of range. */
export function resolveBehaviour(partial: Partial<Behaviour> = {}): Behaviour {
  const behaviour = { ...DEFAULT_BEHAVIOUR, ...partial };
  const issues: FieldIssue[] = [];
  if (
    !(Number.isFinite(behaviour.tolerance) && behaviour.tolerance >= 0 && behaviour.tolerance < 1)
  ) {
    issues.push({
      path: "tolerance",
      message: "must be a fraction from 0 up to (not including) 1",
    });
  }
  for (const key of ["metric_window_ms", "scale_down_window_ms", "scale_up_window_ms"] as const) {
    if (!(Number.isSafeInteger(behaviour[key]) && behaviour[key] >= 0)) {
      issues.push({ path: key, message: "must be a whole number of milliseconds ≥ 0" });
    }
  }
  if (!(Number.isSafeInteger(behaviour.gap_ms) && behaviour.gap_ms > 0)) {
    issues.push({ path: "gap_ms", message: "must be a whole number of milliseconds above 0" });
  }
  if (behaviour.metric_window_ms === 0) {
    issues.push({ path: "metric_window_ms", message: "must be above 0 to see any sample" });
  }
  if (issues.length > 0) {
    const list = issues.map((i) => `${i.path} ${i.message}`).join("; ");
    throw new ValidationError(`autoscaling behaviour: ${list}`, issues);
  }
  return behaviour;
}
