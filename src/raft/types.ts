/**
 * The values the consensus core takes and hands back. Everything here is plain data, so the shell
 * can persist it and send it over the wire (JSON or binary) without knowing the core's internals.
 *
 * Node ids are positive integers; `0` (`NONE`) means "nobody" (no vote, no known leader).
 */

/** A node's id. `NONE` (0) means no node. */
export type NodeId = number;

/** "No node": no vote cast, no leader known. */
export const NONE: NodeId = 0;

/** What an entry carries: a client command, a configuration change, or a leader's empty entry. */
export type EntryKind = "normal" | "conf" | "noop";

/** One log entry. `data` is opaque command bytes for `normal`, an encoded change for `conf`. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** The state that must be on stable storage before the node answers anyone (Raft §5, Figure 2). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** A cluster configuration: who votes and who only follows (learners, thesis §4.2.1). */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** What a snapshot covers: the last included index and term, and the configuration then. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

/** A state-machine snapshot (Raft §7). `data` is the shell's serialized state machine. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** A node's role. `preCandidate` is a candidate running the pre-vote round (thesis §9.6). */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state the shell may show or route by: who leads, and this node's role. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A linearizable read made ready: once the state machine has applied `index`, serve `ctx`. */
export interface ReadState {
  readonly ctx: string;
  readonly index: number;
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** RequestVote, or its pre-vote twin (thesis §9.6) which sends `term` + 1 without taking it. */
export interface VoteRequest extends MessageBase {
  readonly type: "vote" | "preVote";
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Set when leadership transfer asked for the election: voters skip their leader lease. */
  readonly transfer: boolean;
}

/** The answer to a vote or pre-vote. */
export interface VoteResponse extends MessageBase {
  readonly type: "voteResp" | "preVoteResp";
  readonly reject: boolean;
}

/** AppendEntries (Raft §5.3): entries after (prevIndex, prevTerm), and the leader's commit. */
export interface AppendRequest extends MessageBase {
  readonly type: "app";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * The answer to AppendEntries. On success `index` is the last index now matching the leader.
 * On reject `index` is the rejected prevIndex and (hintIndex, hintTerm) point at the largest
 * entry of the follower with term ≤ the leader's prevTerm, so the leader skips a whole term
 * per round trip (Raft §5.3, the optimization the paper sketches; etcd's findConflictByTerm).
 */
export interface AppendResponse extends MessageBase {
  readonly type: "appResp";
  readonly reject: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** A heartbeat (Raft §5.2). `ctx` carries the newest pending ReadIndex (thesis §6.4). */
export interface Heartbeat extends MessageBase {
  readonly type: "heartbeat";
  readonly commit: number;
  readonly ctx: string;
  /** The leader's tick when it sent this, echoed back to time the leader lease. */
  readonly sentTick: number;
}

/** The answer to a heartbeat, echoing `ctx` and `sentTick`. */
export interface HeartbeatResponse extends MessageBase {
  readonly type: "heartbeatResp";
  readonly ctx: string;
  readonly sentTick: number;
}

/** One chunk of InstallSnapshot (Raft §7): bytes [offset, offset + data.length) of the snapshot. */
export interface SnapshotChunk extends MessageBase {
  readonly type: "snap";
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly data: Uint8Array;
}

/**
 * The answer to a snapshot chunk: `nextOffset` is the number of bytes the follower holds, `done`
 * says it has installed the snapshot at `meta.index` (and persisted it: it is sent after persist).
 */
export interface SnapshotResponse extends MessageBase {
  readonly type: "snapResp";
  readonly index: number;
  readonly nextOffset: number;
  readonly done: boolean;
}

/** Leadership transfer (thesis §3.10): the target starts an election at once. */
export interface TimeoutNow extends MessageBase {
  readonly type: "timeoutNow";
}

/** Every message the core sends or takes. Plain serializable objects. */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotChunk
  | SnapshotResponse
  | TimeoutNow;

/** The message type names. */
export type MessageType = Message["type"];

/**
 * Everything one round of the core hands to the shell. The shell must, in this order:
 * 1. install `snapshot` (if any) on storage and in the state machine,
 * 2. delete stored entries from `truncateFrom` on (if set) and append `entries`,
 * 3. persist `hardState` (if set) — steps 1–3 durably (fsync) before going on,
 * 4. send `messages`,
 * 5. apply `committed` to the state machine and serve `readStates` once applied,
 * 6. call `advance()`.
 * Messages come after persistence by construction: no vote, term or append acknowledgement
 * leaves the node before the state it promises is on disk (Raft §5.1, Figure 2 "Persistent state").
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  readonly truncateFrom?: number;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
}
