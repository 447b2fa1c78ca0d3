/**
 * Simulation profiles under which each classic Raft bug shows up quickly. The bug tests and the
 * `--bug` flag of scripts/sim.ts use them; each profile with its bug off is also a passing test.
 */
import type { BugSwitches } from "../../src/raft/config.ts";
import { DEFAULT_FAULTS, DEFAULT_OPTIONS, type SimOptions } from "../../src/raft/sim/simulator.ts";

export interface BugCase {
  readonly name: string;
  /** The options with the bug on; `withoutBug` is the same run, fixed. */
  readonly withBug: Omit<SimOptions, "seed">;
  readonly withoutBug: Omit<SimOptions, "seed">;
  /** What the failure must say. */
  readonly expected: RegExp;
  /** Seeds tried, from 1: the CI budget. */
  readonly seeds_max: number;
}

function bugCase(
  name: string,
  bugs: BugSwitches,
  fix: Partial<SimOptions["raft"]>,
  options: Partial<Omit<SimOptions, "seed">>,
  expected: RegExp,
  seeds_max: number,
): BugCase {
  const withBug = { ...DEFAULT_OPTIONS, ...options, bugs };
  const withoutBug = { ...withBug, bugs: {}, raft: { ...withBug.raft, ...fix } };
  return { name, withBug, withoutBug, expected, seeds_max };
}

const safetyOnly = { livenessTicks: 0, partialPartitionInLiveness: "never" as const };

export const BUG_CASES: readonly BugCase[] = [
  bugCase(
    "a vote answered before it is persisted",
    { voteBeforePersist: true },
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
    { commitPreviousTermByCount: true },
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
    { readIndexBeforeOwnTermCommit: true },
    {},
    { ...safetyOnly },
    /stale read/,
    60,
  ),
  bugCase(
    "a leader that never steps down without a quorum",
    { noCheckQuorumStepDown: true },
    {},
    { partialPartitionInLiveness: "deaf" },
    /liveness/,
    120,
  ),
  bugCase(
    "pre-vote off under a partial partition",
    {},
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
