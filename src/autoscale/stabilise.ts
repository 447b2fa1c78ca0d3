/**
 * HPA's stabilisation windows as a second pure step after the replica calculation: a scale-down
 * goes only to the highest recommendation of the scale-down window, a scale-up only to the lowest
 * of the scale-up window (default 0 s: at once). The history keeps only the recommendations that
 * can still be such a highest or lowest one, so it is short and can travel in the log.
 */
import type { Behaviour, Recommendation } from "./types.ts";

/** Whether `rec` lies inside a window of `window_ms` ending at `now_ms` (HPA: strictly after). */
const inside = (rec: Recommendation, now_ms: number, window_ms: number) =>
  rec.at_ms > now_ms - window_ms;

/**
 * The history with `latest` appended, minus every recommendation that can no longer decide a
 * window: one that left both windows, or one a later recommendation outdoes for as long as it
 * stays (a later one at least as high for the scale-down window, at most as low for the
 * scale-up window). What is left has strictly falling values among the scale-down candidates and
 * strictly rising ones among the scale-up candidates: at most twice the distinct counts.
 */
export function remember(
  history: readonly Recommendation[],
  latest: Recommendation,
  behaviour: Behaviour,
): Recommendation[] {
  const all = [...history, latest];
  const kept: Recommendation[] = [];
  let highestLater = -Infinity;
  let lowestLater = Infinity;
  for (let i = all.length - 1; i >= 0; i--) {
    const rec = all[i];
    const forDown = inside(rec, latest.at_ms, behaviour.scale_down_window_ms) &&
      rec.replicas > highestLater;
    const forUp = inside(rec, latest.at_ms, behaviour.scale_up_window_ms) &&
      rec.replicas < lowestLater;
    if (forDown || forUp || i === all.length - 1) kept.push(rec);
    highestLater = Math.max(highestLater, rec.replicas);
    lowestLater = Math.min(lowestLater, rec.replicas);
  }
  return kept.reverse();
}

/** The bounds the windows put on a change: at least `up`, at most `down`. */
export interface Bounds {
  /** The lowest recommendation of the scale-up window: a scale-up goes no further. */
  up: number;
  /** The highest recommendation of the scale-down window (and the hold): a scale-down stops there. */
  down: number;
}

/**
 * The bounds of the windows ending at `now_ms`, `history` holding the latest recommendation.
 * `hold` counts for the scale-down window only.
 */
export function windowBounds(
  history: readonly Recommendation[],
  hold: Recommendation | null,
  now_ms: number,
  behaviour: Behaviour,
): Bounds {
  const latest = history[history.length - 1];
  let up = latest.replicas;
  let down = latest.replicas;
  for (const rec of history) {
    if (inside(rec, now_ms, behaviour.scale_up_window_ms)) up = Math.min(up, rec.replicas);
    if (inside(rec, now_ms, behaviour.scale_down_window_ms)) down = Math.max(down, rec.replicas);
  }
  if (hold !== null && inside(hold, now_ms, behaviour.scale_down_window_ms)) {
    down = Math.max(down, hold.replicas);
  }
  return { up, down };
}

/** The count to go to from `current` within the bounds: unchanged when it lies between them. */
export function stabilised(current: number, bounds: Bounds): number {
  if (current < bounds.up) return bounds.up;
  if (current > bounds.down) return bounds.down;
  return current;
}
