/**
 * The placement engine's errors. Each message says what to change; the HTTP layer maps
 * {@link PlacementRequestError} to 400 and {@link FleetError} to 409 (a stale fleet view).
 */

/** A request the engine cannot evaluate: a bad operand, weight, count or resource amount. */
export class PlacementRequestError extends Error {
  override name = "PlacementRequestError";
}

/** A fleet operation that does not match the fleet: an unknown worker, a hold that does not fit. */
export class FleetError extends Error {
  override name = "FleetError";
}

/** Throws when an invariant of the engine does not hold: a bug, never a user's mistake. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`placement invariant violated: ${message}`);
}
