/**
 * A request compiled against the fleet's columns into a stack of small stages, as in Nomad's
 * `stack.go`: static filters (pool, required constraints, untolerated NoSchedule taints), each a
 * bitset of the workers it keeps, with their intersection precomputed, then the dynamic ones
 * (status, distinct, free capacity) per worker, and scorers (each one score component in [-1, 1]).
 */
import { BitArena, has, setOf } from "./bits.ts";
import { assert, PlacementRequestError } from "./errors.ts";
import type { AttributeColumn, Fleet, FleetColumns, WorkerOrder } from "./fleet.ts";
import {
  type AffinityTerm,
  type Constraint,
  type FilterStage,
  type PlacementRequest,
  RESOURCE_NAMES,
  type ScoreName,
  type Strategy,
  type Taint,
  type Toleration,
} from "./types.ts";

/** One line of an explanation: the stage and what a user can act on. */
export interface Reason {
  stage: FilterStage;
  reason: string;
}

/** One score component. `prepare` runs once per pick, over the candidates found. */
export interface Scorer {
  name: ScoreName;
  prepare?(candidates: Int32Array, count: number): void;
  score(w: number): number;
}

/** Slots 0 and 1 are the non-ready statuses (status code - 1); this one a worker already chosen. */
export const SLOT_DISTINCT = 2;
const SLOT_CONSTRAINTS = 3;

/** A request compiled for one version of the fleet's columns. */
export interface Stack {
  version: number;
  /** The workers of the request's pool (all workers without a pool); undefined: none. */
  order: WorkerOrder | undefined;
  /** The same workers as a bitset (empty when the pool has none). */
  pool_set: Int32Array;
  /** Workers outside the pool, removed without being visited. */
  outside_pool: number;
  pool_reason: string;
  /** The required constraints and the blocking taints, to name their slots. */
  required: Constraint[];
  blocking: Taint[];
  /** The reasons named so far, by slot (see {@link reasonAt}). */
  reasons: (Reason | undefined)[];
  /** Bitsets of this stack, in `bits` at the offsets below (in an arena, see `stackFor`). */
  bits: Int32Array;
  /** Pool ∩ required constraints ∖ untolerated NoSchedule taints. */
  feasible_at: number;
  /** Each required constraint's set of satisfying workers, and its explanation slot. */
  constraint_at: number[];
  constraint_slot: number[];
  /** Each untolerated NoSchedule taint's set of carriers, and its explanation slot. */
  taint_sets: Int32Array[];
  taint_slot: number[];
  /** Carriers of an untolerated PreferNoSchedule taint (the bounded mode sets them aside); -1: none. */
  penalised_at: number;
  /** The amount of each resource, in RESOURCE_NAMES order, and the slot of the first. */
  resource_amounts: number[];
  resource_slot: number;
  scorers: Scorer[];
  /** Preferences need every feasible worker scored (Nomad does the same). */
  exhaustive: boolean;
  /** Scorers read running counts (spread, affinity): later picks of a request must see earlier ones. */
  reads_counts: boolean;
  /**
   * Per-slot counts of the pick in progress (reused: one pick at a time). Slots, in pipeline
   * order: draining, lost, distinct, one per required constraint, one per untolerated NoSchedule
   * taint, one per resource; {@link reasonAt} names them.
   */
  counts: number[];
  count: number | "all";
}

const RESOURCE_LABELS = ["cpu", "memory", "disk", "slots"];
const STRATEGIES: Strategy[] = ["binpack", "spread", "random"];
const LN10 = Math.log(10);

/**
 * Frozen requests compiled against one version of a fleet's columns, with their bitsets; the
 * entry goes with the columns when the fleet rebuilds them.
 */
const COMPILED = new WeakMap<
  FleetColumns,
  { stacks: Map<PlacementRequest, Stack>; arena: BitArena }
>();

/** Frozen requests kept compiled per columns version; all are dropped when it fills. */
const COMPILED_MAX = 4096;

/**
 * The request compiled against the fleet's current columns. A deeply frozen request (see
 * {@link freezeRequest}) is compiled once per columns version and kept: it cannot change, so the
 * compiled filters stay right. Any other request is compiled on every call (`memo` lets a batch
 * compile each object once), into the per-call arena: a cache of mutable objects could serve
 * filters for a request that has changed since.
 */
export function stackFor(
  fleet: Fleet,
  request: PlacementRequest,
  memo?: Map<PlacementRequest, Stack>,
): Stack {
  const cols = fleet.columns();
  let cache = COMPILED.get(cols);
  if (cache === undefined) {
    cache = { stacks: new Map(), arena: new BitArena() };
    COMPILED.set(cols, cache);
  }
  // Only frozen requests enter the cache, and freezing cannot be undone: a hit needs no check.
  const hit = cache.stacks.get(request);
  if (hit) return hit;
  if (isFrozenRequest(request)) {
    if (cache.stacks.size >= COMPILED_MAX) {
      cache.stacks.clear();
      cache.arena.reset();
    }
    const stack = compile(fleet, cols, request, cache.arena);
    cache.stacks.set(request, stack);
    return stack;
  }
  const known = memo?.get(request);
  if (known && known.version === cols.version) return known;
  const stack = compile(fleet, cols, request, cols.arena);
  memo?.set(request, stack);
  return stack;
}

/**
 * Freezes a request and everything in it, so the engine may keep it compiled between calls (a
 * caller that places the same job often keeps one frozen request per job). Returns the request.
 */
export function freezeRequest(request: PlacementRequest): Readonly<PlacementRequest> {
  for (const c of request.constraints ?? []) Object.freeze(c.values ?? []);
  for (const list of [request.constraints, request.tolerations]) {
    for (const item of list ?? []) Object.freeze(item);
  }
  for (const t of [...(request.affinity ?? []), ...(request.anti_affinity ?? [])]) {
    Object.freeze(t.selector);
    Object.freeze(t);
  }
  if (request.spread) {
    Object.freeze(request.spread.targets ?? {});
    Object.freeze(request.spread);
  }
  for (
    const part of [
      request.constraints,
      request.tolerations,
      request.affinity,
      request.anti_affinity,
      request.job_labels,
      request.resources,
    ]
  ) {
    if (part) Object.freeze(part);
  }
  return Object.freeze(request);
}

/** Whether the request and every object in it are frozen (what {@link freezeRequest} makes). */
function isFrozenRequest(r: PlacementRequest): boolean {
  if (!Object.isFrozen(r) || !Object.isFrozen(r.resources)) return false;
  if (r.job_labels && !Object.isFrozen(r.job_labels)) return false;
  if (r.constraints) {
    if (!Object.isFrozen(r.constraints)) return false;
    for (const c of r.constraints) {
      if (!Object.isFrozen(c) || (c.values && !Object.isFrozen(c.values))) return false;
    }
  }
  for (const list of [r.tolerations, r.affinity, r.anti_affinity]) {
    if (!list) continue;
    if (!Object.isFrozen(list)) return false;
    for (const item of list) if (!Object.isFrozen(item)) return false;
  }
  for (const t of [...(r.affinity ?? []), ...(r.anti_affinity ?? [])]) {
    if (!Object.isFrozen(t.selector)) return false;
  }
  if (r.spread) {
    if (!Object.isFrozen(r.spread)) return false;
    if (r.spread.targets && !Object.isFrozen(r.spread.targets)) return false;
  }
  return true;
}

function compile(
  fleet: Fleet,
  cols: FleetColumns,
  request: PlacementRequest,
  arena: BitArena,
): Stack {
  validate(request);
  const W = cols.words;
  const required = (request.constraints ?? []).filter((c) => (c.mode ?? "required") === "required");
  const preferred = (request.constraints ?? []).filter((c) => c.mode === "preferred");
  const { blocks, penal } = taintEffects(cols.taints, request.tolerations ?? []);
  const penalising = penal.includes(1);
  const sets = 1 + required.length + preferred.length + (penalising ? 1 : 0);
  const { bits, offset } = arena.take(sets * W);
  const order = request.pool === undefined ? cols.all : cols.pools.get(request.pool);
  const pool_set = request.pool === undefined
    ? cols.all_bits
    : cols.pool_bits.get(request.pool) ?? new Int32Array(W);
  const feasible_at = offset;
  bits.set(pool_set, feasible_at);
  const constraint_at: number[] = [];
  const constraint_slot: number[] = [];
  required.forEach((c, i) => {
    const at = offset + (1 + i) * W;
    constraintSet(cols, c, bits, at);
    for (let k = 0; k < W; k++) bits[feasible_at + k] &= bits[at + k];
    constraint_at.push(at);
    constraint_slot.push(SLOT_CONSTRAINTS + i);
  });
  const taint_sets: Int32Array[] = [];
  const blocking: Taint[] = [];
  const taint_slot: number[] = [];
  for (let t = 0; t < cols.taints.length; t++) {
    if (!blocks[t]) continue;
    const carriers = cols.taint_bits[t];
    for (let k = 0; k < W; k++) bits[feasible_at + k] &= ~carriers[k];
    taint_sets.push(carriers);
    taint_slot.push(SLOT_CONSTRAINTS + required.length + blocking.length);
    blocking.push(cols.taints[t]);
  }
  const resource_slot = SLOT_CONSTRAINTS + required.length + blocking.length;
  const preferred_sets = preferred.map((c, i) => {
    const at = offset + (1 + required.length + i) * W;
    constraintSet(cols, c, bits, at);
    return { at, weight: c.weight ?? 0 };
  });
  let penalised_at = -1;
  if (penalising) {
    penalised_at = offset + (sets - 1) * W;
    for (let t = 0; t < cols.taints.length; t++) {
      if (!penal[t]) continue;
      for (let k = 0; k < W; k++) bits[penalised_at + k] |= cols.taint_bits[t][k];
    }
  }
  const scorers: Scorer[] = [];
  const strategy = request.strategy ?? "binpack";
  if (strategy !== "random") scorers.push(fitScorer(cols, request, strategy === "binpack"));
  if (preferred_sets.length > 0) scorers.push(preferenceScorer(bits, preferred_sets));
  const terms = [
    ...(request.affinity ?? []).map((t) => affinityTerm(t, 1)),
    ...(request.anti_affinity ?? []).map((t) => affinityTerm(t, -1)),
  ];
  if (terms.length > 0) scorers.push(affinityScorer(cols, terms));
  if (penalised_at >= 0) {
    const at = penalised_at;
    scorers.push({ name: "taints", score: (w) => has(bits, at, w) ? -1 : 0 });
  }
  if (request.spread) scorers.push(spreadScorer(fleet, cols, request.job_id, request.spread));
  return {
    version: cols.version,
    order,
    pool_set,
    outside_pool: cols.size - (order?.workers.length ?? 0),
    pool_reason: `pool = ${request.pool}`,
    required,
    blocking,
    reasons: [],
    bits,
    feasible_at,
    constraint_at,
    constraint_slot,
    taint_sets,
    taint_slot,
    penalised_at,
    resource_amounts: RESOURCE_NAMES.map((r) => request.resources[r]),
    resource_slot,
    scorers,
    exhaustive: preferred.length > 0 || terms.length > 0 || request.spread !== undefined,
    reads_counts: terms.length > 0 || request.spread !== undefined,
    counts: new Array(resource_slot + RESOURCE_NAMES.length).fill(0),
    count: request.count ?? 1,
  };
}

const FIXED_REASONS: Reason[] = [
  { stage: "status", reason: "draining" },
  { stage: "status", reason: "lost" },
  { stage: "distinct", reason: "already chosen for this request" },
];

/** What a user reads for a slot; built once per stack, for the slots that removed workers. */
export function reasonAt(stack: Stack, slot: number): Reason {
  return stack.reasons[slot] ??= nameSlot(stack, slot);
}

function nameSlot(stack: Stack, slot: number): Reason {
  if (slot < SLOT_CONSTRAINTS) return FIXED_REASONS[slot];
  let i = slot - SLOT_CONSTRAINTS;
  if (i < stack.required.length) {
    return { stage: "constraint", reason: constraintText(stack.required[i]) };
  }
  i -= stack.required.length;
  if (i < stack.blocking.length) {
    return { stage: "taint", reason: `taint ${taintText(stack.blocking[i])} not tolerated` };
  }
  i -= stack.blocking.length;
  if (i >= RESOURCE_LABELS.length) assert(false, `slot ${slot} names a reason`);
  return { stage: "resources", reason: `${RESOURCE_LABELS[i]} exhausted` };
}

/** Refuses what the engine cannot evaluate, with what to change. */
function validate(request: PlacementRequest): void {
  const fail = (message: string): never => {
    throw new PlacementRequestError(`placement request for job ${request.job_id}: ${message}`);
  };
  for (const r of RESOURCE_NAMES) {
    const v = request.resources?.[r];
    if (!Number.isInteger(v) || v < 0) fail(`resources.${r} must be an integer ≥ 0, got ${v}`);
  }
  const count = request.count ?? 1;
  if (count !== "all" && (!Number.isInteger(count) || count < 1)) {
    fail(`count must be an integer ≥ 1 or "all", got ${count}`);
  }
  if (request.strategy !== undefined && !STRATEGIES.includes(request.strategy)) {
    fail(`strategy must be one of ${STRATEGIES.join(", ")}, got ${request.strategy}`);
  }
  for (const c of request.constraints ?? []) {
    const what = `constraint on ${c.attribute}`;
    if (!c.attribute) {
      fail("a constraint needs an attribute (a label name, region, zone, pool, worker.id)");
    }
    if ((c.operator === "=" || c.operator === "!=") && typeof c.value !== "string") {
      fail(`${what}: operator ${c.operator} needs a value`);
    } else if ((c.operator === "in" || c.operator === "not_in") && !Array.isArray(c.values)) {
      fail(`${what}: operator ${c.operator} needs values (a list)`);
    } else if (!["=", "!=", "in", "not_in", "exists", "not_exists"].includes(c.operator)) {
      fail(`${what}: operator must be =, !=, in, not_in, exists or not_exists, got ${c.operator}`);
    }
    const mode = c.mode ?? "required";
    if (mode !== "required" && mode !== "preferred") {
      fail(`${what}: mode must be required or preferred, got ${mode}`);
    }
    if (mode === "preferred") {
      const w = c.weight;
      if (w === undefined || !Number.isFinite(w) || w === 0 || Math.abs(w) > 100) {
        fail(`${what}: a preferred constraint needs a weight in -100..100 other than 0, got ${w}`);
      }
    }
  }
  for (const t of [...(request.affinity ?? []), ...(request.anti_affinity ?? [])]) {
    if (Object.keys(t.selector ?? {}).length === 0) {
      fail("an affinity term needs a non-empty selector");
    }
    if (!Number.isFinite(t.weight) || t.weight < 1 || t.weight > 100) {
      fail(`an affinity weight must be in 1..100, got ${t.weight}`);
    }
  }
  for (const t of request.tolerations ?? []) {
    const op = t.operator ?? "Equal";
    if (op !== "Equal" && op !== "Exists") {
      fail(`toleration operator must be Equal or Exists, got ${op}`);
    }
    if (op === "Equal" && !t.key) fail("an Equal toleration needs a key");
  }
  if (request.spread) {
    if (!request.spread.attribute) fail("spread needs an attribute");
    let sum = 0;
    for (const [value, pct] of Object.entries(request.spread.targets ?? {})) {
      if (!Number.isFinite(pct) || pct < 0) {
        fail(`spread target ${value} must be a percent ≥ 0, got ${pct}`);
      }
      sum += pct;
    }
    if (sum > 100) fail(`spread targets add up to ${sum}%: keep them at or under 100%`);
  }
}

/** `region in [fra, ams]`, `gpu exists`, `zone != a`. */
export function constraintText(c: Constraint): string {
  switch (c.operator) {
    case "in":
    case "not_in":
      return `${c.attribute} ${c.operator} [${(c.values ?? []).join(", ")}]`;
    case "exists":
    case "not_exists":
      return `${c.attribute} ${c.operator}`;
    default:
      return `${c.attribute} ${c.operator} ${c.value}`;
  }
}

/** `gpu=true:NoSchedule`. */
export function taintText(t: Taint): string {
  return `${t.key}=${t.value}:${t.effect}`;
}

const NONE: AttributeColumn = {
  ids: new Int32Array(0),
  values: [],
  idOf: new Map(),
  sets: [],
  present: undefined,
};

/** Builds every value's worker set of a column at once (one pass), on first use. */
function valueSets(cols: FleetColumns, col: AttributeColumn): (Int32Array | undefined)[] {
  if (col.sets.length === 0 && col.values.length > 0) {
    const rows: number[][] = col.values.map(() => []);
    for (let w = 0; w < cols.size; w++) if (col.ids[w] >= 0) rows[col.ids[w]].push(w);
    col.sets = rows.map((list) => setOf(cols.size, list));
  }
  return col.sets;
}

function presentSet(cols: FleetColumns, col: AttributeColumn): Int32Array {
  if (!col.present) {
    const rows: number[] = [];
    for (let w = 0; w < cols.size; w++) if (col.ids[w] >= 0) rows.push(w);
    col.present = setOf(cols.size, rows);
  }
  return col.present;
}

/**
 * Writes the set of workers that satisfy `c` into `bits[at ..]` (zeroed by the arena). A worker
 * without the attribute satisfies `!=`, `not_in` and `not_exists` only.
 */
function constraintSet(cols: FleetColumns, c: Constraint, bits: Int32Array, at: number): void {
  const W = cols.words;
  const col = cols.attributes.get(c.attribute) ?? NONE;
  const union = (src: Int32Array | undefined) => {
    if (src) { for (let k = 0; k < W; k++) bits[at + k] |= src[k]; }
  };
  const sets = col === NONE ? [] : valueSets(cols, col);
  const of = (value: string) => {
    const id = col.idOf.get(value);
    return id === undefined ? undefined : sets[id];
  };
  switch (c.operator) {
    case "=":
    case "!=":
      union(of(c.value!));
      break;
    case "in":
    case "not_in":
      for (const v of c.values!) union(of(v));
      break;
    case "exists":
    case "not_exists":
      if (col !== NONE) union(presentSet(cols, col));
      break;
  }
  if (c.operator === "!=" || c.operator === "not_in" || c.operator === "not_exists") {
    const all = cols.all_bits;
    for (let k = 0; k < W; k++) bits[at + k] = all[k] & ~bits[at + k];
  }
}

/** Kubernetes' rule: a toleration matches a taint by key (or any key), value and effect. */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== taint.effect) return false;
  if ((t.operator ?? "Equal") === "Exists") return !t.key || t.key === taint.key;
  return t.key === taint.key && (t.value ?? "") === taint.value;
}

/** Per distinct taint: 1 where it blocks (NoSchedule) or penalises (PreferNoSchedule) the request. */
function taintEffects(taints: Taint[], tolerations: Toleration[]) {
  const blocks: number[] = new Array(taints.length).fill(0);
  const penal: number[] = new Array(taints.length).fill(0);
  for (let t = 0; t < taints.length; t++) {
    if (tolerations.some((tol) => tolerates(tol, taints[t]))) continue;
    if (taints[t].effect === "NoSchedule") blocks[t] = 1;
    else penal[t] = 1;
  }
  return { blocks, penal };
}

/** Segments of the fitness curve's table: linear interpolation stays within 5e-8 of 10^u. */
const CURVE_SEGMENTS = 4096;
/** (10^u - 1) / 9 at u = i / CURVE_SEGMENTS; one spare entry so u = 1 interpolates too. */
const CURVE = Float64Array.from(
  { length: CURVE_SEGMENTS + 2 },
  (_, i) => (Math.exp(Math.min(i / CURVE_SEGMENTS, 1) * LN10) - 1) / 9,
);

/**
 * Nomad's exponential fitness curve, (10^u - 1) / 9 for u in [0, 1], read from a table:
 * `Math.exp` costs about 65 ns here, four per worker, and the exhaustive mode scores a thousand.
 */
export function fitnessCurve(u: number): number {
  const x = (u < 0 ? 0 : u > 1 ? 1 : u) * CURVE_SEGMENTS;
  const i = x | 0;
  return CURVE[i] + (CURVE[i + 1] - CURVE[i]) * (x - i);
}

/**
 * Bin-packing fitness after the placement, in [0, 1]: per resource the worker has, utilisation u
 * maps to (10^u - 1) / 9 (Nomad's exponential form: filling a fuller worker counts more), averaged
 * over resources. `binpack` prefers high fitness; `spread` scores the same form of the free share,
 * so the least utilised worker wins.
 */
function fitScorer(cols: FleetColumns, request: PlacementRequest, binpack: boolean): Scorer {
  // Unrolled over the four resources: this runs for every feasible worker of an exhaustive pick.
  const [f0, f1, f2, f3] = cols.free;
  const [i0, i1, i2, i3] = cols.inverse_capacity;
  const { cpu_millis: n0, memory_mb: n1, disk_mb: n2, slots: n3 } = request.resources;
  const base = binpack ? 1 : 0;
  const sign = binpack ? -1 : 1;
  return {
    name: "fit",
    score(w) {
      let sum = 0;
      let k = 0;
      let inv = i0[w];
      if (inv !== 0) {
        sum += fitnessCurve(base + sign * (f0[w] - n0) * inv);
        k++;
      }
      inv = i1[w];
      if (inv !== 0) {
        sum += fitnessCurve(base + sign * (f1[w] - n1) * inv);
        k++;
      }
      inv = i2[w];
      if (inv !== 0) {
        sum += fitnessCurve(base + sign * (f2[w] - n2) * inv);
        k++;
      }
      inv = i3[w];
      if (inv !== 0) {
        sum += fitnessCurve(base + sign * (f3[w] - n3) * inv);
        k++;
      }
      return k === 0 ? 0 : sum / k;
    },
  };
}

/** Preferred constraints: matched weight over total weight, in [-1, 1] (Nomad's node affinity). */
function preferenceScorer(bits: Int32Array, preferred: { at: number; weight: number }[]): Scorer {
  const total = preferred.reduce((s, p) => s + Math.abs(p.weight), 0);
  return {
    name: "constraints",
    score(w) {
      let sum = 0;
      for (const p of preferred) if (has(bits, p.at, w)) sum += p.weight;
      return sum / total;
    },
  };
}

interface CompiledTerm {
  keys: string[];
  weight: number;
}

function affinityTerm(t: AffinityTerm, sign: 1 | -1): CompiledTerm {
  return { keys: Object.entries(t.selector).map(([k, v]) => `${k}=${v}`), weight: sign * t.weight };
}

/** Affinity minus anti-affinity over the jobs running on the worker, in [-1, 1]. */
function affinityScorer(cols: FleetColumns, terms: CompiledTerm[]): Scorer {
  const total = terms.reduce((s, t) => s + Math.abs(t.weight), 0);
  const running = cols.running_by_label;
  return {
    name: "affinity",
    score(w) {
      const m = running[w];
      if (m.size === 0) return 0;
      let sum = 0;
      terms: for (const t of terms) {
        for (const k of t.keys) if (!m.has(k)) continue terms;
        sum += t.weight;
      }
      return sum / total;
    },
  };
}

/**
 * Spread over an attribute's values, from the job's running allocations per value. Even (no
 * targets): a worker whose value has the fewest allocations among the candidates' values scores 1,
 * the others −(c − min)/(max − min) ≤ −1/(max − min), all 0 when balanced; the gap (> 1) outweighs
 * any fit difference (≤ 1), so picks keep the counts within one of each other. Targets: the share
 * still missing, (desired − c) / desired clamped to [-1, 1], desired = percent × (allocations + 1).
 * A worker without the attribute scores −1.
 */
function spreadScorer(
  fleet: Fleet,
  cols: FleetColumns,
  job_id: string,
  spec: NonNullable<PlacementRequest["spread"]>,
): Scorer {
  const col = cols.attributes.get(spec.attribute) ?? NONE;
  const values = col.values.length;
  const counts = new Float64Array(values);
  const present = new Uint8Array(values);
  const boost = new Float64Array(values);
  const targets = spec.targets;
  const target_of = new Float64Array(values).fill(-1);
  let listed_pct = 0;
  for (const [value, pct] of Object.entries(targets ?? {})) {
    listed_pct += pct;
    const id = col.idOf.get(value);
    if (id !== undefined) target_of[id] = pct;
  }
  return {
    name: "spread",
    prepare(candidates, n) {
      counts.fill(0);
      present.fill(0);
      let total = 0;
      for (const [worker_id, k] of fleet.jobCounts(job_id) ?? []) {
        const w = fleet.indexOf(worker_id);
        const v = w >= 0 ? col.ids[w] : -1;
        if (v >= 0) {
          counts[v] += k;
          total += k;
        }
      }
      for (let i = 0; i < n; i++) {
        const v = col.ids[candidates[i]] ?? -1;
        if (v >= 0) present[v] = 1;
      }
      if (targets) {
        let unlisted = 0;
        for (let v = 0; v < values; v++) if (present[v] && target_of[v] < 0) unlisted++;
        const share = unlisted > 0 ? (100 - listed_pct) / unlisted : 0;
        for (let v = 0; v < values; v++) {
          const desired = ((target_of[v] >= 0 ? target_of[v] : share) / 100) * (total + 1);
          boost[v] = desired <= 0 ? -1 : Math.max(-1, Math.min(1, (desired - counts[v]) / desired));
        }
        return;
      }
      let min = Infinity;
      let max = -Infinity;
      for (let v = 0; v < values; v++) {
        if (!present[v]) continue;
        if (counts[v] < min) min = counts[v];
        if (counts[v] > max) max = counts[v];
      }
      for (let v = 0; v < values; v++) {
        boost[v] = min === max ? 0 : counts[v] === min ? 1 : -(counts[v] - min) / (max - min);
      }
    },
    score(w) {
      const v = col === NONE ? -1 : col.ids[w];
      return v >= 0 ? boost[v] : -1;
    },
  };
}
