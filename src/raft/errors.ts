/**
 * A broken invariant of the consensus core. It means the core is wrong: the simulator stops on
 * it and prints the seed.
 */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvariantError";
  }
}

/** Throws an `InvariantError` with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

/** A configuration the core cannot run with; the message says which field to fix. */
export class RaftConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaftConfigError";
  }
}
