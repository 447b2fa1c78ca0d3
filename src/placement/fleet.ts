/**
 * The fleet as the placement engine reads it: one row per worker, kept as columns (typed arrays of
 * free capacity and status, interned attribute values, bitsets of the workers of each pool, value
 * and taint, a shuffled worker order per pool), so a placement touches a few numbers per worker
 * and never an allocation.
 *
 * Capacity changes (`hold`, `release`) are O(1) and write the columns in place. Structural changes
 * (`upsert`, `remove`) mark the columns stale; they are rebuilt, in O(workers × labels), on the next
 * read. Rows are ordered by worker id, so two nodes that build the same fleet from the same applied
 * state in any order get the same choices for the same seed.
 *
 * @example
 * ```ts
 * const fleet = new Fleet([worker]);
 * const decision = place(fleet, request, { seed: 1 });
 * if (decision.ok) fleet.apply(decision); // holds the capacity until release()
 * ```
 */
import { sfc32 } from "../prng.ts";
import { add, BitArena, remove, setOf, wordsFor } from "./bits.ts";
import { assert, FleetError } from "./errors.ts";
import {
  type Hold,
  RESOURCE_NAMES,
  type Resources,
  type Taint,
  type WorkerStatus,
  type WorkerView,
} from "./types.ts";

/** Status codes in the status column; 0 is the only feasible one. */
export const STATUS_CODES: Record<WorkerStatus, number> = { ready: 0, draining: 1, lost: 2 };

/** The status names by code, for explanations. */
export const STATUS_NAMES: WorkerStatus[] = ["ready", "draining", "lost"];

/** One attribute over every worker: interned value ids, -1 where a worker lacks it. */
export interface AttributeColumn {
  ids: Int32Array;
  values: string[];
  idOf: Map<string, number>;
  /** The workers of each value id, as bitsets, built on first use. */
  sets: (Int32Array | undefined)[];
  /** The workers that have the attribute at all, built on first use. */
  present: Int32Array | undefined;
}

/** Workers to visit in a seeded order: a fixed shuffle, walked from a random start by a stride. */
export interface WorkerOrder {
  workers: Int32Array;
  /** Strides coprime with `workers.length`, so every walk visits each worker once. */
  strides: Int32Array;
}

/** The columns a placement reads. Valid until the next structural change (see `version`). */
export interface FleetColumns {
  /** Unique to this build of these columns (across fleets): compiled requests cache on it. */
  version: number;
  size: number;
  ids: string[];
  status: Uint8Array;
  /** Words of a bitset over the rows (see bits.ts). */
  words: number;
  /** The ready workers as a bitset. Live. */
  ready: Int32Array;
  /** The workers of each pool, and of the fleet, as bitsets. */
  pool_bits: Map<string, Int32Array>;
  all_bits: Int32Array;
  /** The workers carrying each distinct taint, by taint id, as bitsets. */
  taint_bits: Int32Array[];
  /** Bitsets of the requests compiled in one engine call (reset at each call). */
  arena: BitArena;
  /** Scratch bitset for one pick. */
  scratch_bits: Int32Array;
  /** Free capacity per resource, in {@link RESOURCE_NAMES} order. Live. */
  free: Float64Array[];
  /** 1 / capacity per resource (0 where the worker has none): scoring multiplies. */
  inverse_capacity: Float64Array[];
  /** Built-in attributes (`region`, `zone`, `pool`, `worker.id`) first, then labels. */
  attributes: Map<string, AttributeColumn>;
  /** The distinct taints of the fleet, by taint id. */
  taints: Taint[];
  pools: Map<string, WorkerOrder>;
  all: WorkerOrder;
  /** Running allocations per worker by job label `k=v`. Live. */
  running_by_label: Map<string, number>[];
  /** Scratch marks for one decision (distinct workers), stamped with `Fleet.nextEpoch()`. */
  marks: Int32Array;
  /** Scratch list of candidate rows for one pick. */
  scratch: Int32Array;
}

interface Row {
  view: WorkerView;
  /** Free and total capacity in {@link RESOURCE_NAMES} order. */
  free: Float64Array;
  capacity: Float64Array;
  /** Row index in the current columns (valid while they are). */
  index: number;
  running_by_label: Map<string, number>;
}

const BUILT_IN_ATTRIBUTES = ["region", "zone", "pool", "worker.id"] as const;
const ORDER_SEED = 0x7ac4af7;
const STRIDE_CHOICES = 16;
/** Columns built in this process: a version no other fleet's columns share. */
let columns_built = 0;

/** The fleet view the engine places on, and the caller's way to hold and release capacity. */
export class Fleet {
  #rows = new Map<string, Row>();
  /** job id → worker id → running allocations, for spread. */
  #by_job = new Map<string, Map<string, number>>();
  #columns: FleetColumns | undefined;
  #epoch = 0;

  constructor(workers: Iterable<WorkerView> = []) {
    for (const w of workers) this.upsert(w);
  }

  /** Workers in the fleet. */
  get size(): number {
    return this.#rows.size;
  }

  /**
   * Adds a worker or replaces the one with its id. The view is the truth: its `free` and running
   * counts replace whatever the fleet held for that worker before.
   */
  upsert(view: WorkerView): void {
    checkView(view);
    if (this.#rows.has(view.id)) this.#forgetJobs(view.id);
    const row: Row = {
      view: structuredCopy(view),
      free: Float64Array.from(RESOURCE_NAMES, (r) => view.free[r]),
      capacity: Float64Array.from(RESOURCE_NAMES, (r) => view.capacity[r]),
      index: -1,
      running_by_label: new Map(
        Object.entries(view.running_by_label ?? {}).filter(([, n]) => n > 0),
      ),
    };
    this.#rows.set(view.id, row);
    for (const [job, n] of Object.entries(view.running_by_job ?? {})) {
      this.#countJob(job, view.id, n);
    }
    this.#columns = undefined;
  }

  /** Removes a worker. Unknown ids are refused: the caller's view and the fleet have diverged. */
  remove(worker_id: string): void {
    this.#row(worker_id);
    this.#forgetJobs(worker_id);
    this.#rows.delete(worker_id);
    this.#columns = undefined;
  }

  /** Changes a worker's status in place (drain, lost, ready again): no rebuild. */
  setStatus(worker_id: string, status: WorkerStatus): void {
    const row = this.#row(worker_id);
    row.view.status = status;
    const c = this.#columns;
    if (c) {
      const w = this.#index(worker_id);
      c.status[w] = STATUS_CODES[status];
      if (status === "ready") add(c.ready, 0, w);
      else remove(c.ready, 0, w);
    }
  }

  /**
   * A worker's free capacity now, or undefined: what `worker()` says of it, without copying the
   * view or counting its jobs (apply asks this of every placement).
   */
  freeOf(worker_id: string): Resources | undefined {
    const row = this.#rows.get(worker_id);
    return row === undefined ? undefined : resourcesOf(row.free);
  }

  /** The worker as the engine sees it now (free capacity and counts included), or undefined. */
  worker(worker_id: string): WorkerView | undefined {
    const row = this.#rows.get(worker_id);
    if (!row) return undefined;
    const running_by_job: Record<string, number> = {};
    for (const [job, per] of this.#by_job) {
      const n = per.get(worker_id);
      if (n) running_by_job[job] = n;
    }
    return {
      ...structuredCopy(row.view),
      free: resourcesOf(row.free),
      running_by_label: Object.fromEntries(row.running_by_label),
      running_by_job,
    };
  }

  /** Every worker id, in row order (sorted). */
  ids(): string[] {
    return this.columns().ids.slice();
  }

  /**
   * Takes `hold.resources` from the worker's free capacity and counts the allocation for affinity
   * and spread. Refuses (and changes nothing) when it does not fit: the placement was made on a
   * view that has changed since, so place again.
   */
  hold(hold: Hold): void {
    const row = this.#row(hold.worker_id);
    const need = amountsOf(hold.resources);
    for (let r = 0; r < 4; r++) {
      if (need[r] > row.free[r]) {
        throw new FleetError(
          `worker ${hold.worker_id} has ${row.free[r]} ${RESOURCE_NAMES[r]} free, the hold needs ` +
            `${need[r]}: place the request again on the current fleet`,
        );
      }
    }
    this.#shift(row, hold, need, -1);
  }

  /** Gives back what {@link hold} took. Refuses a release that would exceed the capacity. */
  release(hold: Hold): void {
    const row = this.#row(hold.worker_id);
    const need = amountsOf(hold.resources);
    for (let r = 0; r < 4; r++) {
      if (row.free[r] + need[r] > row.capacity[r]) {
        throw new FleetError(
          `releasing ${need[r]} ${RESOURCE_NAMES[r]} on worker ${hold.worker_id} would exceed ` +
            `its capacity: release only what was held`,
        );
      }
    }
    if (!this.#by_job.get(hold.job_id)?.get(hold.worker_id)) {
      throw new FleetError(
        `worker ${hold.worker_id} holds nothing for job ${hold.job_id}: release only what was held`,
      );
    }
    this.#shift(row, hold, need, 1);
  }

  /**
   * Holds every placement of a decision (a partial one's too), all or nothing; returns the holds,
   * to release them later.
   */
  apply(decision: {
    job_id: string;
    placements: { worker_id: string }[];
    resources: Resources;
    job_labels: Record<string, string>;
  }): Hold[] {
    const holds = decision.placements.map((p) => ({
      worker_id: p.worker_id,
      job_id: decision.job_id,
      job_labels: decision.job_labels,
      resources: decision.resources,
    }));
    const done: Hold[] = [];
    try {
      for (const h of holds) {
        this.hold(h);
        done.push(h);
      }
    } catch (e) {
      for (const h of done) this.release(h);
      throw e;
    }
    return holds;
  }

  /** Running allocations of `job_id` per worker id, for the spread scorer (live; do not change it). */
  jobCounts(job_id: string): ReadonlyMap<string, number> | undefined {
    return this.#by_job.get(job_id);
  }

  /** The columns the engine reads, rebuilt first if a structural change made them stale. */
  columns(): FleetColumns {
    return this.#columns ??= this.#build();
  }

  /** Row index of a worker id in `columns()`, or -1. */
  indexOf(worker_id: string): number {
    this.columns();
    return this.#rows.has(worker_id) ? this.#index(worker_id) : -1;
  }

  /** A fresh stamp for `columns().marks`: marks from earlier decisions no longer match. */
  nextEpoch(): number {
    this.#epoch = (this.#epoch + 1) | 0;
    if (this.#epoch === 0) {
      this.columns().marks.fill(0);
      this.#epoch = 1;
    }
    return this.#epoch;
  }

  #row(worker_id: string): Row {
    const row = this.#rows.get(worker_id);
    if (!row) {
      throw new FleetError(`no worker ${worker_id} in the fleet view: register it (upsert) first`);
    }
    return row;
  }

  #index(worker_id: string): number {
    const i = this.#row(worker_id).index;
    if (i < 0) assert(false, `worker ${worker_id} has a row index`);
    return i;
  }

  /** Moves `need` into (sign -1) or out of (sign 1) the worker's free capacity, and the counts. */
  #shift(row: Row, hold: Hold, need: Float64Array, sign: 1 | -1): void {
    const c = this.#columns;
    for (let r = 0; r < 4; r++) {
      const free = row.free[r] + sign * need[r];
      if (!(free >= 0 && free <= row.capacity[r])) {
        assert(false, `free ${RESOURCE_NAMES[r]} of ${hold.worker_id} stays within [0, capacity]`);
      }
      row.free[r] = free;
      if (c) c.free[r][row.index] = free;
    }
    const labels = hold.job_labels;
    if (labels) {
      for (const k in labels) {
        const key = `${k}=${labels[k]}`;
        const n = (row.running_by_label.get(key) ?? 0) - sign;
        if (n > 0) row.running_by_label.set(key, n);
        else row.running_by_label.delete(key);
      }
    }
    this.#countJob(hold.job_id, hold.worker_id, -sign);
  }

  #countJob(job_id: string, worker_id: string, delta: number): void {
    let per = this.#by_job.get(job_id);
    if (!per) this.#by_job.set(job_id, per = new Map());
    const n = (per.get(worker_id) ?? 0) + delta;
    if (n > 0) per.set(worker_id, n);
    else per.delete(worker_id);
    if (per.size === 0) this.#by_job.delete(job_id);
  }

  #forgetJobs(worker_id: string): void {
    for (const [job, per] of this.#by_job) {
      per.delete(worker_id);
      if (per.size === 0) this.#by_job.delete(job);
    }
  }

  #build(): FleetColumns {
    const ids = [...this.#rows.keys()].sort();
    const n = ids.length;
    const rows = ids.map((id) => this.#rows.get(id)!);
    rows.forEach((row, i) => row.index = i);
    const status = new Uint8Array(n);
    const free = RESOURCE_NAMES.map(() => new Float64Array(n));
    const inverse_capacity = RESOURCE_NAMES.map(() => new Float64Array(n));
    const attributes = new Map<string, AttributeColumn>();
    const column = (name: string): AttributeColumn => {
      let col = attributes.get(name);
      if (!col) {
        col = {
          ids: new Int32Array(n).fill(-1),
          values: [],
          idOf: new Map(),
          sets: [],
          present: undefined,
        };
        attributes.set(name, col);
      }
      return col;
    };
    const intern = (col: AttributeColumn, value: string): number => {
      let id = col.idOf.get(value);
      if (id === undefined) {
        id = col.values.length;
        col.values.push(value);
        col.idOf.set(value, id);
      }
      return id;
    };
    for (const name of BUILT_IN_ATTRIBUTES) column(name);
    const taints: Taint[] = [];
    const taint_id = new Map<string, number>();
    const taint_rows: number[][] = [];
    const pool_rows = new Map<string, number[]>();
    for (let w = 0; w < n; w++) {
      const v = rows[w].view;
      status[w] = STATUS_CODES[v.status];
      for (let r = 0; r < RESOURCE_NAMES.length; r++) {
        free[r][w] = rows[w].free[r];
        const cap = rows[w].capacity[r];
        inverse_capacity[r][w] = cap > 0 ? 1 / cap : 0;
      }
      for (const [k, value] of Object.entries(v.labels)) {
        if (!(BUILT_IN_ATTRIBUTES as readonly string[]).includes(k)) {
          const col = column(k);
          col.ids[w] = intern(col, value);
        }
      }
      for (
        const [name, value] of [["region", v.region], ["zone", v.zone], ["pool", v.pool], [
          "worker.id",
          v.id,
        ]]
      ) {
        const col = column(name);
        col.ids[w] = intern(col, value);
      }
      for (const t of v.taints) {
        const key = `${t.key}\u0000${t.value}\u0000${t.effect}`;
        let id = taint_id.get(key);
        if (id === undefined) {
          id = taints.length;
          taints.push({ ...t });
          taint_rows.push([]);
          taint_id.set(key, id);
        }
        taint_rows[id].push(w);
      }
      let pr = pool_rows.get(v.pool);
      if (!pr) pool_rows.set(v.pool, pr = []);
      pr.push(w);
    }
    const random = sfc32(ORDER_SEED ^ n);
    const pools = new Map<string, WorkerOrder>();
    const pool_bits = new Map<string, Int32Array>();
    for (const [pool, list] of [...pool_rows].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
      pools.set(pool, shuffledOrder(list, random));
      pool_bits.set(pool, setOf(n, list));
    }
    const rows_all = Array.from({ length: n }, (_, i) => i);
    return {
      version: ++columns_built,
      size: n,
      ids,
      status,
      words: wordsFor(n),
      ready: setOf(n, rows_all.filter((w) => status[w] === 0)),
      pool_bits,
      all_bits: setOf(n, rows_all),
      taint_bits: taint_rows.map((list) => setOf(n, list)),
      arena: new BitArena(),
      scratch_bits: new Int32Array(wordsFor(n)),
      free,
      inverse_capacity,
      attributes,
      taints,
      pools,
      all: shuffledOrder(rows_all, random),
      running_by_label: rows.map((r) => r.running_by_label),
      marks: new Int32Array(n),
      scratch: new Int32Array(n),
    };
  }
}

/** A seeded Fisher-Yates shuffle of `list` with strides coprime with its length. */
function shuffledOrder(list: number[], random: () => number): WorkerOrder {
  const workers = Int32Array.from(list);
  for (let i = workers.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = workers[i];
    workers[i] = workers[j];
    workers[j] = t;
  }
  const strides: number[] = [1];
  const len = workers.length;
  for (let s = 2; s < len && strides.length < STRIDE_CHOICES; s++) {
    if (gcd(s, len) === 1) strides.push(s);
  }
  return { workers, strides: Int32Array.from(strides) };
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

const AMOUNTS = new Float64Array(4);

/** The amounts of `res` in {@link RESOURCE_NAMES} order, checked (a shared scratch array). */
function amountsOf(res: Resources): Float64Array {
  AMOUNTS[0] = res.cpu_millis;
  AMOUNTS[1] = res.memory_mb;
  AMOUNTS[2] = res.disk_mb;
  AMOUNTS[3] = res.slots;
  for (let r = 0; r < 4; r++) {
    const v = AMOUNTS[r];
    if (!(v >= 0 && Number.isInteger(v))) checkAmount(res[RESOURCE_NAMES[r]], RESOURCE_NAMES[r]);
  }
  return AMOUNTS;
}

function resourcesOf(a: Float64Array): Resources {
  return { cpu_millis: a[0], memory_mb: a[1], disk_mb: a[2], slots: a[3] };
}

function checkAmount(amount: number, name: string): void {
  if (!Number.isInteger(amount) || amount < 0) {
    throw new FleetError(`${name} must be an integer ≥ 0, got ${amount}`);
  }
}

function checkView(v: WorkerView): void {
  for (const [key, n] of Object.entries(v.running_by_label ?? {})) {
    checkAmount(n, `running_by_label[${key}] of worker ${v.id}`);
  }
  for (const [job, n] of Object.entries(v.running_by_job ?? {})) {
    checkAmount(n, `running_by_job[${job}] of worker ${v.id}`);
  }
  if (!(v.status in STATUS_CODES)) {
    throw new FleetError(
      `worker ${v.id} has status ${v.status}: use one of ${STATUS_NAMES.join(", ")}`,
    );
  }
  for (const r of RESOURCE_NAMES) {
    checkAmount(v.capacity[r], `capacity.${r} of worker ${v.id}`);
    checkAmount(v.free[r], `free.${r} of worker ${v.id}`);
    if (v.free[r] > v.capacity[r]) {
      throw new FleetError(
        `worker ${v.id} has free.${r} ${v.free[r]} above its capacity ${v.capacity[r]}: ` +
          `free is capacity minus what allocations hold`,
      );
    }
  }
}

function structuredCopy(v: WorkerView): WorkerView {
  return {
    id: v.id,
    pool: v.pool,
    region: v.region,
    zone: v.zone,
    labels: { ...v.labels },
    taints: v.taints.map((t) => ({ ...t })),
    status: v.status,
    capacity: { ...v.capacity },
    free: { ...v.free },
  };
}
