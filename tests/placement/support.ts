/**
 * Builders, random fleets and requests (fast-check), and an oracle: the filters written again the
 * plain way, straight from the worker views, to judge the engine by.
 */
import fc from "fast-check";
import type {
  Constraint,
  PlacementRequest,
  Resources,
  Taint,
  Toleration,
  WorkerView,
} from "../../src/placement/mod.ts";
import { RESOURCE_NAMES } from "../../src/placement/mod.ts";

/** Runs per property: `FUZZ_RUNS` from the environment, else a CI-sized default. */
export const FUZZ_RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "300");

export function resources(
  cpu_millis: number,
  memory_mb: number,
  disk_mb = 0,
  slots = 0,
): Resources {
  return { cpu_millis, memory_mb, disk_mb, slots };
}

/** A ready worker in pool `default`, region `fra`, zone `fra-1`, 4 cores and 8 GB all free. */
export function worker(id: string, fields: Partial<WorkerView> = {}): WorkerView {
  const capacity = fields.capacity ?? resources(4000, 8192, 100_000, 8);
  return {
    id,
    pool: "default",
    region: "fra",
    zone: "fra-1",
    labels: {},
    taints: [],
    status: "ready",
    capacity,
    free: fields.free ?? { ...capacity },
    ...fields,
  };
}

const POOLS = ["web", "batch"];
const REGIONS = ["fra", "ams", "iad"];
const ZONES = ["a", "b", "c"];
const TAINTS: Taint[] = [
  { key: "gpu", value: "true", effect: "NoSchedule" },
  { key: "spot", value: "yes", effect: "PreferNoSchedule" },
  { key: "maint", value: "now", effect: "NoSchedule" },
];
const LABEL_VALUES: Record<string, string[]> = { gpu: ["true", "false"], tier: ["web", "db"] };

const resourcesArb = (max: number) =>
  fc.record({
    cpu_millis: fc.integer({ min: 0, max }),
    memory_mb: fc.integer({ min: 0, max }),
    disk_mb: fc.integer({ min: 0, max }),
    slots: fc.integer({ min: 0, max: 4 }),
  });

/** A worker with random attributes; `free` somewhere between 0 and its capacity. */
export const workerArb = (id: string) =>
  fc.record({
    pool: fc.constantFrom(...POOLS),
    region: fc.constantFrom(...REGIONS),
    zone: fc.constantFrom(...ZONES),
    gpu: fc.option(fc.constantFrom(...LABEL_VALUES.gpu), { nil: undefined }),
    tier: fc.option(fc.constantFrom(...LABEL_VALUES.tier), { nil: undefined }),
    taints: fc.subarray(TAINTS),
    status: fc.constantFrom("ready", "ready", "ready", "draining", "lost"),
    capacity: resourcesArb(16),
    used: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }),
    running: fc.subarray(["app=db", "app=web", "team=x"]),
  }).map((r): WorkerView => {
    const labels: Record<string, string> = {};
    if (r.gpu !== undefined) labels.gpu = r.gpu;
    if (r.tier !== undefined) labels.tier = r.tier;
    const free = { ...r.capacity };
    RESOURCE_NAMES.forEach((name, i) => free[name] -= Math.floor(r.capacity[name] * r.used[i]));
    return {
      id,
      pool: r.pool,
      region: r.region,
      zone: r.zone,
      labels,
      taints: r.taints.map((t) => ({ ...t })),
      status: r.status as WorkerView["status"],
      capacity: r.capacity,
      free,
      running_by_label: Object.fromEntries(r.running.map((k) => [k, 1])),
    };
  });

/** 1..maxWorkers random workers with ids w00, w01, ... */
export const fleetArb = (maxWorkers = 30) =>
  fc.integer({ min: 1, max: maxWorkers }).chain((n) =>
    fc.tuple(...Array.from({ length: n }, (_, i) => workerArb(`w${String(i).padStart(2, "0")}`)))
  );

const constraintArb: fc.Arbitrary<Constraint> = fc.oneof(
  fc.record({
    attribute: fc.constantFrom("region", "zone", "pool", "gpu", "tier", "worker.id", "absent"),
    operator: fc.constantFrom("=" as const, "!=" as const),
    value: fc.constantFrom("fra", "a", "web", "true", "db", "w01", "nope"),
  }),
  fc.record({
    attribute: fc.constantFrom("region", "zone", "gpu", "tier"),
    operator: fc.constantFrom("in" as const, "not_in" as const),
    values: fc.subarray(["fra", "ams", "a", "b", "true", "web", "nope"]),
  }),
  fc.record({
    attribute: fc.constantFrom("gpu", "tier", "absent", "region"),
    operator: fc.constantFrom("exists" as const, "not_exists" as const),
  }),
).chain((c) =>
  fc.oneof(
    fc.constant<Constraint>({ ...c, mode: "required" }),
    fc.integer({ min: -100, max: 100 }).filter((w) => w !== 0).map((weight): Constraint => ({
      ...c,
      mode: "preferred",
      weight,
    })),
  )
);

const tolerationArb: fc.Arbitrary<Toleration> = fc.oneof(
  fc.constant<Toleration>({ key: "gpu", operator: "Equal", value: "true", effect: "NoSchedule" }),
  fc.constant<Toleration>({ key: "maint", operator: "Exists" }),
  fc.constant<Toleration>({ key: "spot", operator: "Exists", effect: "PreferNoSchedule" }),
  fc.constant<Toleration>({ operator: "Exists" }),
  fc.constant<Toleration>({ key: "gpu", operator: "Equal", value: "false" }),
);

/** A random request for job `job_id`. */
export const requestArb = (job_id = "job") =>
  fc.record({
    pool: fc.option(fc.constantFrom(...POOLS, "missing"), { nil: undefined }),
    resources: resourcesArb(8),
    constraints: fc.array(constraintArb, { maxLength: 3 }),
    tolerations: fc.array(tolerationArb, { maxLength: 2 }),
    strategy: fc.constantFrom("binpack" as const, "spread" as const, "random" as const),
    count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant("all" as const)),
    affinity: fc.array(
      fc.record({
        selector: fc.constantFrom<Record<string, string>>({ app: "db" }, { app: "web", team: "x" }),
        weight: fc.integer({ min: 1, max: 100 }),
      }),
      { maxLength: 1 },
    ),
    anti_affinity: fc.array(
      fc.record({
        selector: fc.constant({ app: "web" }),
        weight: fc.integer({ min: 1, max: 100 }),
      }),
      { maxLength: 1 },
    ),
    spread: fc.option(
      fc.record({ attribute: fc.constantFrom("zone", "region", "gpu") }),
      { nil: undefined },
    ),
  }).map((r): PlacementRequest => ({ job_id, job_labels: { app: "db" }, ...r }));

/** The value of a constraint attribute on a worker view (built-ins win over labels). */
export function attributeOf(w: WorkerView, attribute: string): string | undefined {
  switch (attribute) {
    case "region":
      return w.region;
    case "zone":
      return w.zone;
    case "pool":
      return w.pool;
    case "worker.id":
      return w.id;
    default:
      return w.labels[attribute];
  }
}

/** The oracle's reading of one constraint. */
export function satisfies(w: WorkerView, c: Constraint): boolean {
  const v = attributeOf(w, c.attribute);
  switch (c.operator) {
    case "=":
      return v === c.value;
    case "!=":
      return v !== c.value;
    case "in":
      return v !== undefined && c.values!.includes(v);
    case "not_in":
      return v === undefined || !c.values!.includes(v);
    case "exists":
      return v !== undefined;
    case "not_exists":
      return v === undefined;
  }
}

function toleratedBy(t: Taint, tolerations: Toleration[]): boolean {
  return tolerations.some((tol) => {
    if (tol.effect && tol.effect !== t.effect) return false;
    if (tol.operator === "Exists") return !tol.key || tol.key === t.key;
    return tol.key === t.key && (tol.value ?? "") === t.value;
  });
}

/** Whether one allocation of `request` may go on `w` (free capacity as given). */
export function feasibleFor(w: WorkerView, request: PlacementRequest): boolean {
  if (request.pool !== undefined && w.pool !== request.pool) return false;
  if (w.status !== "ready") return false;
  for (const c of request.constraints ?? []) {
    if ((c.mode ?? "required") === "required" && !satisfies(w, c)) return false;
  }
  for (const t of w.taints) {
    if (t.effect === "NoSchedule" && !toleratedBy(t, request.tolerations ?? [])) return false;
  }
  return RESOURCE_NAMES.every((r) => request.resources[r] <= w.free[r]);
}

/** Bin-packing fitness after placing `need` on `w`, computed from the view (the engine's form). */
export function binpackFitness(w: WorkerView, need: Resources): number {
  let sum = 0;
  let k = 0;
  for (const r of RESOURCE_NAMES) {
    if (w.capacity[r] <= 0) continue;
    const used = 1 - (w.free[r] - need[r]) / w.capacity[r];
    sum += (10 ** used - 1) / 9;
    k++;
  }
  return k === 0 ? 0 : sum / k;
}
