/**
 * Work that fits no worker of a pool, in workers of the pool's capacity: pending allocations and
 * timeslots within their lead time, packed first-fit decreasing (largest share of a worker first)
 * into new workers. Not the optimum packing, but an estimate that never undercounts by more than
 * packing can, and the next evaluation corrects it as the new workers take the work.
 */
import {
  type DemandMetric,
  type PendingAllocation,
  type PendingTimeslot,
  RESOURCE_NAMES,
  type Resources,
} from "./types.ts";

/** Identical items: `count` allocations of `resources`. */
interface Group {
  resources: Resources;
  count: number;
  /** The largest fraction of one worker's capacity that one item takes. */
  share: number;
}

/** Whether a timeslot needs its workers at `now_ms`: from its lead time until it ends. */
export function timeslotActive(slot: PendingTimeslot, now_ms: number): boolean {
  return now_ms >= slot.start_ms - slot.lead_ms && now_ms < slot.end_ms;
}

/** The largest fraction of `capacity` that `need` takes; Infinity when it cannot fit at all. */
function shareOf(need: Resources, capacity: Resources): number {
  let share = 0;
  for (const name of RESOURCE_NAMES) {
    if (need[name] === 0) continue;
    if (need[name] > capacity[name]) return Infinity;
    share = Math.max(share, need[name] / capacity[name]);
  }
  return share;
}

/** How many items of `need` fit in `free` (Infinity for an item that needs nothing). */
function fitting(need: Resources, free: Resources): number {
  let count = Infinity;
  for (const name of RESOURCE_NAMES) {
    if (need[name] > 0) count = Math.min(count, Math.floor(free[name] / need[name]));
  }
  return count;
}

function take(free: Resources, need: Resources, count: number): void {
  for (const name of RESOURCE_NAMES) free[name] -= need[name] * count;
}

/** Counts of one packing. */
interface Packed {
  workers: number;
  too_large: number;
}

/**
 * The new workers of `capacity` that `items` fill, at most `workers_max` (more could not be
 * decided anyway). Items larger than one worker are counted in `too_large` and not packed: no
 * count of this pool's workers places them. The loop is bounded by items × `workers_max`.
 */
function pack(
  items: readonly { resources: Resources; count: number }[],
  capacity: Resources,
  workers_max: number,
): Packed {
  const groups: Group[] = [];
  let too_large = 0;
  for (const { resources, count } of items) {
    if (count <= 0) continue;
    const share = shareOf(resources, capacity);
    if (share === Infinity) too_large += count;
    else groups.push({ resources, count, share });
  }
  groups.sort((a, b) => b.share - a.share);
  const bins: Resources[] = [];
  for (const group of groups) {
    let left = group.count;
    for (const free of bins) {
      if (left === 0) break;
      const n = Math.min(left, fitting(group.resources, free));
      take(free, group.resources, n);
      left -= n;
    }
    while (left > 0 && bins.length < workers_max) {
      const free = { ...capacity };
      const n = Math.min(left, fitting(group.resources, free));
      take(free, group.resources, n);
      bins.push(free);
      left -= n;
    }
    if (left > 0) break;
  }
  return { workers: bins.length, too_large };
}

/**
 * The demand of a pool at `now_ms` in workers: the pending allocations packed apart from the
 * active timeslots (they are met differently: see {@link wantedWithDemand}).
 */
export function demandWorkers(
  pending: readonly PendingAllocation[],
  timeslots: readonly PendingTimeslot[],
  capacity: Resources,
  now_ms: number,
  workers_max: number,
  workers_starting: number,
): DemandMetric {
  const active = timeslots.filter((slot) => timeslotActive(slot, now_ms));
  const waiting = pack(
    pending.map((a) => ({ resources: a.resources, count: 1 })),
    capacity,
    workers_max,
  );
  const ahead = pack(active, capacity, workers_max);
  return {
    pending_allocations: pending.length,
    pending_workers: waiting.workers,
    workers_starting,
    timeslots: active.length,
    timeslot_workers: ahead.workers,
    too_large: waiting.too_large + ahead.too_large,
  };
}

/**
 * The count the load and the demand want together. A timeslot's allocations are not running, so
 * its workers come on top of what the running load needs (`from_metrics`). Pending allocations
 * fit none of the workers there are, so their workers come on top of all of those (never fewer
 * than `current` while work waits), less the workers already starting, which will take them.
 */
export function wantedWithDemand(
  from_metrics: number,
  current: number,
  demand: DemandMetric,
): number {
  const withSlots = from_metrics + demand.timeslot_workers;
  const extra = Math.max(0, demand.pending_workers - demand.workers_starting);
  if (demand.pending_workers === 0) return withSlots;
  return Math.max(withSlots, current) + extra;
}
