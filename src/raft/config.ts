/**
 * Configuration of one consensus node. Time is counted in ticks: the shell calls `tick()` at a
 * fixed period (e.g. 100 ms), so `electionTicks: 10` is a one-second election timeout.
 */
import { RaftConfigError } from "./errors.ts";
import type { NodeId } from "./types.ts";
import type { Storage } from "./storage.ts";

/** How leaders serve reads: a quorum round per batch (`safe`) or a clock-bounded lease. */
export type ReadMode = "safe" | "lease";

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Random numbers in [0, 1): the election timeout jitter. Inject a seeded PRNG (`sfc32`). */
  readonly random: () => number;
  /** The last index the state machine has applied (it survives restarts in the shell). */
  readonly appliedIndex?: number;
  /** Election timeout; the actual one is drawn from [electionTicks, 2 × electionTicks). */
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Pre-vote (thesis §9.6): a node must win a trial election before it bumps its term. */
  readonly preVote?: boolean;
  /**
   * Check-quorum (thesis §6.2): a leader that hears from no quorum for an election timeout steps
   * down, and a follower that heard from a leader within the timeout ignores vote requests.
   */
  readonly checkQuorum?: boolean;
  readonly maxEntriesPerMsg?: number;
  readonly maxBytesPerMsg?: number;
  /** In-flight AppendEntries per follower in the replicate state (pipelining window). */
  readonly maxInflightMsgs?: number;
  readonly snapshotChunkBytes?: number;
  /** Bound on the bytes of committed entries handed out in one `Ready`. */
  readonly maxApplyBytes?: number;
  /** Bound on ReadIndex requests waiting at a leader. */
  readonly maxPendingReads?: number;
  /** A learner within this many entries of the leader's commit index may be promoted. */
  readonly learnerCatchUpEntries?: number;
  readonly readMode?: ReadMode;
  /**
   * Lease reads only: the bound on relative clock drift between any two nodes, in percent.
   * The lease lasts (electionTicks − 2) × (100 − drift) / (100 + drift) ticks from the send of the
   * heartbeat round a quorum acknowledged. See docs/raft.md.
   */
  readonly leaseDriftPercent?: number;
}

/** A `RaftConfig` with every default filled in. */
export type ResolvedConfig = Required<RaftConfig>;

/** Fills defaults and rejects configurations that cannot be safe. */
export function resolveConfig(config: RaftConfig): ResolvedConfig {
  const resolved: ResolvedConfig = {
    appliedIndex: 0,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxEntriesPerMsg: 256,
    maxBytesPerMsg: 1 << 20,
    maxInflightMsgs: 64,
    snapshotChunkBytes: 1 << 20,
    maxApplyBytes: 16 << 20,
    maxPendingReads: 1024,
    learnerCatchUpEntries: 64,
    readMode: "safe",
    leaseDriftPercent: 10,
    ...config,
  };
  if (!(resolved.id > 0)) throw new RaftConfigError("id must be a positive integer");
  if (resolved.heartbeatTicks < 1) throw new RaftConfigError("heartbeatTicks must be ≥ 1");
  if (resolved.electionTicks <= resolved.heartbeatTicks) {
    throw new RaftConfigError("electionTicks must be greater than heartbeatTicks");
  }
  if (resolved.maxEntriesPerMsg < 1 || resolved.maxInflightMsgs < 1) {
    throw new RaftConfigError("maxEntriesPerMsg and maxInflightMsgs must be ≥ 1");
  }
  if (resolved.snapshotChunkBytes < 1) throw new RaftConfigError("snapshotChunkBytes must be ≥ 1");
  if (resolved.readMode === "lease") {
    if (!resolved.checkQuorum) {
      throw new RaftConfigError("readMode 'lease' needs checkQuorum: true (thesis §6.4.1)");
    }
    if (leaseTicks(resolved) < 1) {
      throw new RaftConfigError("lease reads need a larger electionTicks or a smaller drift bound");
    }
  }
  return resolved;
}

/**
 * How long a leader lease lasts, in the leader's ticks, from the send of a heartbeat a quorum
 * acknowledged. A follower that acknowledged it refuses votes for `electionTicks` of its own ticks
 * after receipt; one tick is lost to tick granularity at each end, and the drift bound shrinks
 * the follower's real window and stretches the leader's.
 */
export function leaseTicks(config: ResolvedConfig): number {
  const drift = config.leaseDriftPercent;
  return Math.floor(((config.electionTicks - 2) * (100 - drift)) / (100 + drift));
}
