/**
 * Membership changes: one server at a time (thesis §4.1), not joint consensus (thesis §4.3).
 *
 * Why: adding or removing a single voter makes every majority of the old configuration overlap
 * every majority of the new one, so no intermediate joint configuration is needed, and the code
 * (quorum counting, the log entry, recovery after truncation) stays one simple rule. The cluster
 * sizes we run (1, 3, 5 voters) move one server at a time anyway: a replacement is "add learner,
 * promote, remove". Joint consensus would only buy atomic multi-server swaps, which we do not need.
 *
 * The rules that make single-server changes safe:
 * - a configuration takes effect as soon as its entry is appended, committed or not (thesis §4.1);
 * - at most one configuration entry is uncommitted at a time;
 * - a new leader commits an entry of its own term before it appends a configuration entry (the
 *   fix to the single-server bug, Ongaro, raft-dev, 2015; thesis §4.1 errata);
 * - a new voter first joins as a learner and is promoted only once caught up (thesis §4.2.1);
 * - a removed leader manages the cluster until the removal commits, not counting itself, then
 *   steps down (thesis §4.2.2).
 *
 * A configuration entry carries the whole resulting configuration, so a node that only ever sees
 * that entry (a new learner that starts from an empty log) knows the complete membership.
 */
import type { ConfState, Entry, NodeId } from "./types.ts";

/** One change: add a learner, promote a learner to voter, or remove a node. */
export type ConfChange =
  | { readonly op: "addLearner"; readonly node: NodeId }
  | { readonly op: "addVoter"; readonly node: NodeId }
  | { readonly op: "remove"; readonly node: NodeId };

/** What a `conf` entry's data holds. */
export interface ConfEntryData {
  readonly change: ConfChange;
  readonly conf: ConfState;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfEntry(data: ConfEntryData): Uint8Array {
  return encoder.encode(JSON.stringify(data));
}

/** The change and resulting configuration a `conf` entry carries. */
export function decodeConfEntry(entry: Entry): ConfEntryData {
  return JSON.parse(decoder.decode(entry.data)) as ConfEntryData;
}

/** Why a change cannot be applied to `conf`, or undefined when it can. */
export function confChangeError(conf: ConfState, change: ConfChange): string | undefined {
  const isVoter = conf.voters.includes(change.node);
  const isLearner = conf.learners.includes(change.node);
  switch (change.op) {
    case "addLearner":
      return isVoter || isLearner ? `node ${change.node} is already a member` : undefined;
    case "addVoter":
      if (isVoter) return `node ${change.node} is already a voter`;
      return isLearner ? undefined : `add node ${change.node} as a learner first, then promote it`;
    case "remove":
      if (!isVoter && !isLearner) return `node ${change.node} is not a member`;
      return isVoter && conf.voters.length === 1 ? "cannot remove the last voter" : undefined;
  }
}

/** The configuration after `change` (which must be valid for `conf`). */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  const voters = conf.voters.filter((id) => id !== change.node);
  const learners = conf.learners.filter((id) => id !== change.node);
  if (change.op === "addVoter") voters.push(change.node);
  if (change.op === "addLearner") learners.push(change.node);
  return { voters: voters.sort((a, b) => a - b), learners: learners.sort((a, b) => a - b) };
}

/** Votes needed for a majority of `voterCount` voters. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index a majority of voters hold (Raft §5.3/§5.4): sort the match indexes downwards
 * and take the quorum-th.
 */
export function quorumMatchIndex(matches: number[]): number {
  if (matches.length === 0) return 0;
  matches.sort((a, b) => b - a);
  return matches[quorumSize(matches.length) - 1];
}
