/**
 * The placement engine: filter → score → select over a {@link Fleet}, pure and seeded (no I/O, no
 * clock, no `Math.random`). Nomad's scheduler is the model: feasibility checks remove workers and
 * count why, scorers add components, the final score is their mean, the highest wins.
 *
 * Two modes, as Nomad's LimitIterator:
 * - bounded (default for requests without preferences): workers are visited in a seeded random
 *   order and the first `candidates_max` feasible ones are scored (workers with an untolerated
 *   PreferNoSchedule taint are set aside, up to {@link SKIP_MAX}, and scored only if too few others
 *   are found). The choice is the best of those candidates, not necessarily of the fleet.
 * - exhaustive (`exhaustive: true`, and always with preferred constraints, affinity or spread):
 *   every feasible worker is scored; the choice has the highest score in the fleet.
 * Both never over-allocate, never break a required constraint or an untolerated NoSchedule taint,
 * and explain a failed pick over the whole fleet (a failed pick has visited every worker).
 * The static filters (pool, required constraints, NoSchedule taints) are bitsets intersected when
 * the request compiles: the bounded walk tests one bit per worker, the exhaustive mode counts each
 * filter's removals with population counts and visits only the workers left.
 *
 * @example
 * ```ts
 * const fleet = new Fleet(workers);
 * const d = place(fleet, { job_id: "j", pool: "edge", resources }, { seed: 7 });
 * if (d.ok) fleet.apply(d);
 * else console.log(explanationText(d.explanation));
 * ```
 */
import { sfc32 } from "../prng.ts";
import { assert } from "./errors.ts";
import type { Fleet, FleetColumns } from "./fleet.ts";
import { has, lowestBit, popcount } from "./bits.ts";
import { reasonAt, SLOT_DISTINCT, type Stack, stackFor } from "./stack.ts";
import {
  CANDIDATES_MAX,
  type Decision,
  type Explanation,
  type FilterCount,
  type Hold,
  type PlacementRequest,
  type PlaceOptions,
  RUNNERS_UP_MAX,
  type ScoredWorker,
} from "./types.ts";

/** Penalised (PreferNoSchedule) feasible workers set aside per pick in the bounded mode. */
export const SKIP_MAX = 3;

interface Pick {
  /** Chosen row, -1 when none is feasible. */
  chosen: number;
  /** Scored candidates, best first (the chosen one included), at most `keep` of them. */
  best: number[];
  best_scores: number[];
  explanation: Explanation;
}

/**
 * Places one request on the fleet without changing it: the chosen workers, their scores, the
 * runners-up, and the explanation. Apply the decision with `fleet.apply(decision)`.
 */
export function place(fleet: Fleet, request: PlacementRequest, options: PlaceOptions): Decision {
  fleet.columns().arena.reset();
  return placeWith(fleet, stackFor(fleet, request), request, options, sfc32(options.seed));
}

/** {@link place} drawing from `random` (a batch shares one generator). */
function placeWith(
  fleet: Fleet,
  stack: Stack,
  request: PlacementRequest,
  options: PlaceOptions,
  random: () => number,
): Decision {
  const cols = fleet.columns();
  const runners_up_max = options.runners_up_max ?? RUNNERS_UP_MAX;
  const limit = options.exhaustive || stack.exhaustive
    ? Infinity
    : Math.max(1, options.candidates_max ?? CANDIDATES_MAX);
  const epoch = fleet.nextEpoch();
  const job_labels = { ...(request.job_labels ?? {}) };
  const decision: Decision = {
    job_id: request.job_id,
    ok: false,
    placements: [],
    unplaced: 0,
    runners_up: [],
    explanation: { workers_total: cols.size, workers_evaluated: 0, feasible: 0, filtered: [] },
    resources: { ...request.resources },
    job_labels,
  };
  if (stack.count === "all") {
    const p = pickOne(cols, stack, random, Infinity, epoch, cols.size);
    decision.placements = p.best.map((w, i) => scored(cols, stack, w, p.best_scores[i]));
    decision.explanation = p.explanation;
    decision.ok = p.chosen >= 0;
    return decision;
  }
  const temporary: Hold[] = [];
  try {
    for (let i = 0; i < stack.count; i++) {
      const p = pickOne(cols, stack, random, limit, epoch, runners_up_max + 1);
      decision.explanation = p.explanation;
      if (p.chosen < 0) {
        decision.unplaced = stack.count - i;
        break;
      }
      const at = p.best.indexOf(p.chosen);
      decision.placements.push(scored(cols, stack, p.chosen, p.best_scores[at]));
      decision.runners_up = p.best.filter((w) => w !== p.chosen).slice(0, runners_up_max)
        .map((w) => scored(cols, stack, w, p.best_scores[p.best.indexOf(w)]));
      cols.marks[p.chosen] = epoch;
      if (stack.reads_counts && i + 1 < stack.count) {
        // Later picks of the same request see this one (spread counts, affinity to itself).
        const hold = {
          worker_id: cols.ids[p.chosen],
          job_id: request.job_id,
          job_labels,
          resources: request.resources,
        };
        fleet.hold(hold);
        temporary.push(hold);
      }
    }
  } finally {
    for (const h of temporary) fleet.release(h);
  }
  decision.ok = decision.unplaced === 0;
  return decision;
}

/**
 * Places the requests in order, applying each decision to the fleet before the next, so a batch
 * never over-allocates. The fleet keeps what was placed: release the holds ({@link holdsOf}) of
 * decisions the caller does not commit. A request the engine refuses (PlacementRequestError)
 * throws after the batch's holds are released.
 */
export function placeBatch(
  fleet: Fleet,
  requests: PlacementRequest[],
  options: PlaceOptions,
): Decision[] {
  fleet.columns().arena.reset();
  const random = sfc32(options.seed);
  const memo = new Map<PlacementRequest, Stack>();
  const decisions: Decision[] = [];
  try {
    for (const request of requests) {
      const stack = stackFor(fleet, request, memo);
      const decision = placeWith(fleet, stack, request, options, random);
      fleet.apply(decision);
      decisions.push(decision);
    }
  } catch (e) {
    // All or nothing: a request the engine refuses leaves the fleet as the batch found it.
    for (const d of decisions) for (const h of holdsOf(d)) fleet.release(h);
    throw e;
  }
  return decisions;
}

/** The holds a decision takes when applied (one per placement). */
export function holdsOf(decision: Decision): Hold[] {
  return decision.placements.map((p) => ({
    worker_id: p.worker_id,
    job_id: decision.job_id,
    job_labels: decision.job_labels,
    resources: decision.resources,
  }));
}

/**
 * Every feasible worker for one allocation of the request, scored, best first: the engine's own
 * ranking, for tests and for answering "why not that worker".
 */
export function rank(fleet: Fleet, request: PlacementRequest): ScoredWorker[] {
  fleet.columns().arena.reset();
  const stack = stackFor(fleet, request);
  const cols = fleet.columns();
  const p = pickOne(cols, stack, sfc32(0), Infinity, fleet.nextEpoch(), cols.size);
  return p.best.map((w, i) => scored(cols, stack, w, p.best_scores[i]));
}

/** One line a user can act on: `no worker fits (0 of 12): pool = gpu: 8 workers; draining: 1 worker`. */
export function explanationText(e: Explanation): string {
  const plural = (n: number) => `${n} worker${n === 1 ? "" : "s"}`;
  const head = e.feasible === 0
    ? `no worker fits (0 of ${e.workers_total})`
    : `${e.feasible} of ${e.workers_evaluated} workers evaluated fit (fleet: ${e.workers_total})`;
  const parts = e.filtered.map((f) => `${f.reason}: ${plural(f.workers)}`);
  return parts.length === 0 ? head : `${head}: ${parts.join("; ")}`;
}

/**
 * One pick. Exhaustive (`limit` Infinity): count each static filter's removals on bitsets, in
 * pipeline order, and visit only the workers left. Bounded: walk the pool in a seeded order
 * (random start, random coprime stride over a fixed shuffle) and stop after `limit` feasible
 * workers. Either way every removed worker is counted once, under its first failing filter; the
 * candidates are scored and the best `keep` kept. Ties go to a uniformly random one (reservoir
 * sampling on the seed).
 */
function pickOne(
  cols: FleetColumns,
  stack: Stack,
  random: () => number,
  limit: number,
  epoch: number,
  keep: number,
): Pick {
  const counts = stack.counts;
  counts.fill(0);
  const candidates = cols.scratch;
  let found = 0;
  let evaluated = 0;
  let feasible = 0;
  const { status, free, marks } = cols;
  const { bits, resource_amounts, resource_slot, penalised_at } = stack;
  const [f0, f1, f2, f3] = free;
  const [a0, a1, a2, a3] = resource_amounts;
  /** The dynamic filters: distinct, then free capacity per resource. -1 when row w passes. */
  const dynamicSlot = (w: number): number =>
    marks[w] === epoch
      ? SLOT_DISTINCT
      : a0 > f0[w]
      ? resource_slot
      : a1 > f1[w]
      ? resource_slot + 1
      : a2 > f2[w]
      ? resource_slot + 2
      : a3 > f3[w]
      ? resource_slot + 3
      : -1;
  if (limit === Infinity) {
    // Every worker of the pool: the static filters count their removals on bitsets, in pipeline
    // order; only the workers left are visited.
    evaluated = stack.order?.workers.length ?? 0;
    const rem = cols.scratch_bits;
    rem.set(stack.pool_set);
    removeNotReady(cols, rem, counts);
    for (let i = 0; i < stack.constraint_at.length; i++) {
      counts[stack.constraint_slot[i]] += keepOnly(rem, bits, stack.constraint_at[i], cols.words);
    }
    for (let j = 0; j < stack.taint_sets.length; j++) {
      counts[stack.taint_slot[j]] += dropAll(rem, stack.taint_sets[j], cols.words);
    }
    for (let k = 0; k < cols.words; k++) {
      for (let x = rem[k]; x !== 0; x &= x - 1) {
        const w = (k << 5) | lowestBit(x);
        const slot = dynamicSlot(w);
        if (slot >= 0) {
          counts[slot]++;
          continue;
        }
        feasible++;
        candidates[found++] = w;
      }
    }
  } else if (stack.order) {
    // A seeded walk over the pool, stopping after `limit` feasible workers (Nomad's LimitIterator).
    const skipped: number[] = [];
    const { workers, strides } = stack.order;
    const len = workers.length;
    let at = Math.floor(random() * len);
    const stride = strides[Math.floor(random() * strides.length)];
    for (let k = 0; k < len; k++) {
      const w = workers[at];
      at += stride;
      if (at >= len) at -= len;
      evaluated++;
      const st = status[w];
      const slot = marks[w] === epoch
        ? SLOT_DISTINCT
        : st !== 0
        ? st - 1
        : !has(bits, stack.feasible_at, w)
        ? staticSlot(stack, w)
        : dynamicSlot(w);
      if (slot >= 0) {
        counts[slot]++;
        continue;
      }
      feasible++;
      if (penalised_at >= 0 && skipped.length < SKIP_MAX && has(bits, penalised_at, w)) {
        skipped.push(w);
        continue;
      }
      candidates[found++] = w;
      if (found >= limit) break;
    }
    for (const w of skipped) if (found < limit) candidates[found++] = w;
  }
  const explanation = explain(cols, stack, counts, evaluated, feasible);
  if (found === 0) return { chosen: -1, best: [], best_scores: [], explanation };
  for (const s of stack.scorers) s.prepare?.(candidates, found);
  const all = keep >= found;
  const best: number[] = [];
  const best_scores: number[] = [];
  let chosen = -1;
  let chosen_score = -Infinity;
  let ties = 0;
  const scorers = stack.scorers;
  const n_scorers = scorers.length;
  for (let i = 0; i < found; i++) {
    const w = candidates[i];
    let sum = 0;
    for (let s = 0; s < n_scorers; s++) sum += scorers[s].score(w);
    const score = n_scorers === 0 ? 0 : sum / n_scorers;
    if (score > chosen_score) {
      chosen = w;
      chosen_score = score;
      ties = 1;
    } else if (score === chosen_score && random() * ++ties < 1) {
      chosen = w;
    }
    if (all) {
      best.push(w);
      best_scores.push(score);
    } else {
      insertBest(best, best_scores, w, score, keep);
    }
  }
  if (all) sortBest(best, best_scores);
  if (best[0] !== chosen) {
    // The chosen one won a tie the kept list broke the other way: put it first.
    const at = best.indexOf(chosen);
    if (at >= 0) {
      best.splice(at, 1);
      best_scores.splice(at, 1);
    }
    best.unshift(chosen);
    best_scores.unshift(chosen_score);
    if (best.length > keep) {
      best.pop();
      best_scores.pop();
    }
  }
  assert(best_scores[0] === chosen_score, "the chosen worker has the best score");
  return { chosen, best, best_scores, explanation };
}

/** Counts the non-ready workers of `rem` by status (slot = status code - 1) and removes them. */
function removeNotReady(cols: FleetColumns, rem: Int32Array, counts: number[]): void {
  const { ready, status } = cols;
  for (let k = 0; k < cols.words; k++) {
    for (let x = rem[k] & ~ready[k]; x !== 0; x &= x - 1) {
      counts[status[(k << 5) | lowestBit(x)] - 1]++;
    }
    rem[k] &= ready[k];
  }
}

/** Keeps in `rem` only the rows of the set at `bits[at ..]`; returns how many it removed. */
function keepOnly(rem: Int32Array, bits: Int32Array, at: number, words: number): number {
  let removed = 0;
  for (let k = 0; k < words; k++) {
    const x = rem[k] & ~bits[at + k];
    if (x !== 0) {
      removed += popcount(x);
      rem[k] &= ~x;
    }
  }
  return removed;
}

/** Removes from `rem` the rows of `set`; returns how many it removed. */
function dropAll(rem: Int32Array, set: Int32Array, words: number): number {
  let removed = 0;
  for (let k = 0; k < words; k++) {
    const x = rem[k] & set[k];
    if (x !== 0) {
      removed += popcount(x);
      rem[k] &= ~x;
    }
  }
  return removed;
}

/** The slot of the first static filter (constraint, then taint) that removes row w. */
function staticSlot(stack: Stack, w: number): number {
  for (let i = 0; i < stack.constraint_at.length; i++) {
    if (!has(stack.bits, stack.constraint_at[i], w)) return stack.constraint_slot[i];
  }
  for (let j = 0; j < stack.taint_sets.length; j++) {
    if (has(stack.taint_sets[j], 0, w)) return stack.taint_slot[j];
  }
  assert(false, `row ${w} fails a static filter`);
}

/** Keeps `best` sorted by score, descending (first come first among equals), at most `keep` long. */
function insertBest(best: number[], scores: number[], w: number, score: number, keep: number) {
  const n = best.length;
  if (n >= keep && score <= scores[n - 1]) return;
  let i = n < keep ? n : n - 1;
  while (i > 0 && scores[i - 1] < score) {
    best[i] = best[i - 1];
    scores[i] = scores[i - 1];
    i--;
  }
  best[i] = w;
  scores[i] = score;
}

/** Sorts rows by score, descending, keeping the visit order among equal scores. */
function sortBest(best: number[], scores: number[]): void {
  const order = best.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const rows = order.map((i) => best[i]);
  const sorted = order.map((i) => scores[i]);
  for (let i = 0; i < rows.length; i++) {
    best[i] = rows[i];
    scores[i] = sorted[i];
  }
}

function explain(
  cols: FleetColumns,
  stack: Stack,
  counts: number[],
  evaluated: number,
  feasible: number,
): Explanation {
  const filtered: FilterCount[] = [];
  if (stack.outside_pool > 0) {
    filtered.push({ stage: "pool", reason: stack.pool_reason, workers: stack.outside_pool });
  }
  for (let slot = 0; slot < counts.length; slot++) {
    if (counts[slot] > 0) filtered.push({ ...reasonAt(stack, slot), workers: counts[slot] });
  }
  const explanation = {
    workers_total: cols.size,
    workers_evaluated: evaluated + stack.outside_pool,
    feasible,
    filtered,
  };
  const removed = filtered.reduce((s, f) => s + f.workers, 0);
  assert(removed + feasible === explanation.workers_evaluated, "explanation counts add up");
  return explanation;
}

function scored(cols: FleetColumns, stack: Stack, w: number, score: number): ScoredWorker {
  const components: ScoredWorker["components"] = {};
  for (const s of stack.scorers) components[s.name] = s.score(w);
  return { worker_id: cols.ids[w], score, components };
}
