/**
 * What a node finds when a file it reads at start does not hold what it wrote: a row that fails
 * its checksum, a value of the wrong shape, a page SQLite cannot read. The node must not start
 * on such data (it would apply or serve something no other node has), so opening throws
 * {@link CorruptDataError}, and the node runtime catches it, logs its message and exits non-zero.
 *
 * @module
 */

/** Where the bad data is and what the operator should do about it. */
export interface CorruptDataLocation {
  /** The file, e.g. `raft.db` or `node.db`. */
  file: string;
  /** What is bad, e.g. `entry 17`, `the snapshot at 4000`, `the hard state`, `job 01J…`. */
  what: string;
  /** The log index of the bad entry or snapshot, when it has one. */
  index?: number;
}

/** Data on disk is corrupt; the message says where, why, and how to recover. */
export class CorruptDataError extends Error {
  override name = "CorruptDataError";
  readonly file: string;
  readonly index: number | undefined;

  constructor(location: CorruptDataLocation, why: string, fix: string) {
    super(`${location.file}: ${location.what} is corrupt (${why}); ${fix}`);
    this.file = location.file;
    this.index = location.index;
  }
}

/** Recovery of a cluster member: its peers hold every committed entry. */
export const FIX_CLUSTER_MEMBER =
  "stop this node, move its data directory aside and start it again with JOIN_URL (or discovery) so it rejoins and copies the state from a peer";

/** Recovery of a node alone: nothing else holds its data. */
export const FIX_SINGLE_NODE =
  "stop the node and restore the data directory from a backup; the file is left as it is for inspection";

/** A libSQL error that means the file itself is damaged (SQLITE_CORRUPT, SQLITE_NOTADB). */
export function isSqliteCorruption(error: unknown): boolean {
  const text = `${(error as { code?: unknown })?.code ?? ""} ${(error as Error)?.message ?? ""}`;
  return /SQLITE_CORRUPT|SQLITE_NOTADB|malformed|not a database/i.test(text);
}
