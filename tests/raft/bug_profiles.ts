/**
 * Simulation profiles under which each classic Raft bug shows up quickly. The bug tests use them;
 * each profile run on the real core (and with the fixed configuration) is also a passing test.
 */
import { DEFAULT_FAULTS, DEFAULT_OPTIONS, type SimOptions } from "../../src/raft/sim/simulator.ts";
import type { CoreBugName } from "./broken_core.ts";

export interface BugCase {
  readonly name: string;
  /** The broken core the failing run uses (`broken_core.ts`); none for a configuration bug. */
  readonly bug: CoreBugName | undefined;
  /** The options of the failing run; `withoutBug` is the same run, fixed, on the real core. */
  readonly withBug: Omit<SimOptions, "seed">;
  readonly withoutBug: Omit<SimOptions, "seed">;
  /** What the failure must say. */
  readonly expected: RegExp;
  /** Seeds tried, from 1: the CI budget. */
  readonly seeds_max: number;
}

function bugCase(
  name: string,
  bug: CoreBugName | undefined,
  fix: Partial<SimOptions["raft"]>,
  options: Partial<Omit<SimOptions, "seed">>,
  expected: RegExp,
  seeds_max: number,
): BugCase {
  const withBug = { ...DEFAULT_OPTIONS, ...options };
  const withoutBug = { ...withBug, raft: { ...withBug.raft, ...fix } };
  return { name, bug, withBug, withoutBug, expected, seeds_max };
}

const safetyOnly = { livenessTicks: 0, partialPartitionInLiveness: "never" as const };

export const BUG_CASES: readonly BugCase[] = [
  bugCase(
    "a vote answered before it is persisted",
    "voteBeforePersist",
    {},
    {
      ...safetyOnly,
      faults: { ...DEFAULT_FAULTS, crashAfterPersist: 0.3, churn: 0, delayMax_ticks: 6 },
      raft: { ...DEFAULT_OPTIONS.raft, electionTicks: 20, preVote: false, checkQuorum: false },
    },
    /two leaders in term|log matching|leader completeness/,
    120,
  ),
  bugCase(
    "commit by counting replicas of an earlier term's entry",
    "commitPreviousTermByCount",
    {},
    {
      ...safetyOnly,
      faults: { ...DEFAULT_FAULTS, crashAfterPersist: 0.1, churn: 0, crash: 0.01 },
      raft: { ...DEFAULT_OPTIONS.raft, maxEntriesPerMsg: 1, preVote: false, checkQuorum: false },
    },
    /leader completeness|applies|log matching|two leaders/,
    120,
  ),
  bugCase(
    "ReadIndex before the leader's own-term commit",
    "readIndexBeforeOwnTermCommit",
    {},
    { ...safetyOnly },
    /stale read/,
    60,
  ),
  bugCase(
    "a leader that never steps down without a quorum",
    "noCheckQuorumStepDown",
    {},
    { partialPartitionInLiveness: "deaf" },
    /liveness/,
    120,
  ),
  bugCase(
    "pre-vote off under a partial partition",
    undefined,
    { preVote: true },
    {
      partialPartitionInLiveness: "cut",
      faults: { ...DEFAULT_FAULTS, churn: 0 },
      raft: { ...DEFAULT_OPTIONS.raft, preVote: false, checkQuorum: false },
    },
    /liveness/,
    60,
  ),
];
