/**
 * The loops a node cannot run without, and the points where a test may make them fail. The
 * loops report a failure to the node (`src/node/vitals.ts`), which stops the process. The
 * production node passes no fault hook; a test entry (tests/support/faulty_node.ts) passes one
 * that throws at the named point.
 *
 * @module
 */

/** A loop the node cannot run without. */
export type VitalLoop = "log_flush" | "raft_loop" | "apply" | "timer" | "dispatcher";

/** Where a test can make a vital loop fail. */
export type FaultPoint = "log.flush" | "raft.round" | "apply.effects" | "timer.wake" | "dispatch";

/** Called at each fault point; throws to inject a failure there. */
export type FaultHook = (point: FaultPoint) => void;
