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
 *
 * @example
 * ```ts
 * const fleet = new Fleet(workers);
 * const d = place(fleet, { job_id: "j", pool: "edge", resources }, { seed: 7 });
 * if (d.ok) fleet.apply(d);
 * else console.log(explanationText(d.explanation));
 * ```
 */
import { sfc32 } from "../raft/prng.ts";
import { assert } from "./errors.ts";
import type { Fleet, FleetColumns } from "./fleet.ts";
import { type Stack, stackFor } from "./stack.ts";
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
  const temporary = [];
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
 * One pick: walk the stack's workers in a seeded order (random start, random coprime stride over a
 * fixed shuffle), count every removed worker under its first failing check, stop after `limit`
 * feasible candidates, score them and keep the best `keep`. Ties go to a uniformly random one
 * (reservoir sampling on the seed).
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
  const skipped: number[] = [];
  const order = stack.order;
  if (order) {
    const { workers, strides } = order;
    const len = workers.length;
    let at = Math.floor(random() * len);
    const stride = strides[Math.floor(random() * strides.length)];
    const { status, free, marks } = cols;
    const { checks, resource_rows, resource_amounts, resource_slot, penalised } = stack;
    const n_checks = checks.length;
    const n_rows = resource_rows.length;
    visit: for (let k = 0; k < len; k++) {
      const w = workers[at];
      at += stride;
      if (at >= len) at -= len;
      evaluated++;
      if (marks[w] === epoch) {
        counts[2]++;
        continue;
      }
      const st = status[w];
      if (st !== 0) {
        counts[st - 1]++;
        continue;
      }
      for (let c = 0; c < n_checks; c++) {
        const slot = checks[c](w);
        if (slot >= 0) {
          counts[slot]++;
          continue visit;
        }
      }
      for (let i = 0; i < n_rows; i++) {
        const r = resource_rows[i];
        if (resource_amounts[r] > free[r][w]) {
          counts[resource_slot + r]++;
          continue visit;
        }
      }
      feasible++;
      if (
        limit !== Infinity && penalised !== undefined && skipped.length < SKIP_MAX && penalised(w)
      ) {
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
    if (counts[slot] > 0) filtered.push({ ...stack.reasons[slot], workers: counts[slot] });
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
