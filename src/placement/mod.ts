/**
 * The placement engine's public surface: build a {@link Fleet} from the registry's worker views,
 * `place` or `placeBatch` requests on it, `fleet.apply` what gets committed and `fleet.release`
 * what ends. Pure: no I/O, no clock, seeded randomness only.
 *
 * @example
 * ```ts
 * import { Fleet, place } from "./mod.ts";
 * const fleet = new Fleet(workers);
 * const decision = place(fleet, request, { seed: 42 });
 * const holds = decision.ok ? fleet.apply(decision) : [];
 * ```
 */
export { explanationText, holdsOf, place, placeBatch, rank, SKIP_MAX } from "./engine.ts";
export { FleetError, PlacementRequestError } from "./errors.ts";
export { Fleet } from "./fleet.ts";
export { constraintText, freezeRequest, taintText, tolerates } from "./stack.ts";
export * from "./types.ts";
