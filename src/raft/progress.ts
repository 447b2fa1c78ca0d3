/**
 * What a leader knows of each follower's log (Raft §5.3: nextIndex and matchIndex), and how it
 * sends to it, after etcd's progress tracker:
 * - `probe`: one AppendEntries at a time until the leader finds where the logs match;
 * - `replicate`: optimistic pipelining, up to `maxInflightMsgs` unacknowledged messages;
 * - `snapshot`: the follower needs a snapshot; entries wait until it is installed.
 */
import { assert } from "./errors.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe: a message is out and the leader waits for its answer (or a heartbeat answer). */
  probeSent = false;
  /** In replicate: the last index of each unacknowledged message, oldest first. */
  inflights: number[] = [];
  /** In snapshot: the snapshot being sent and how many of its bytes the follower holds. */
  pendingSnapshot = 0;
  snapshotOffset = 0;
  /** Heard from since the last check-quorum round (thesis §6.2). */
  recentActive = false;
  /** The `sentTick` of the newest heartbeat it acknowledged (for the leader lease). */
  leaseAckTick = Number.NEGATIVE_INFINITY;

  constructor(next: number, public isLearner: boolean, readonly inflightMax: number) {
    this.next = next;
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.#reset("probe");
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.#reset("replicate");
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#reset("snapshot");
    this.pendingSnapshot = snapshotIndex;
    this.snapshotOffset = 0;
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.inflights = [];
    this.pendingSnapshot = 0;
    this.snapshotOffset = 0;
  }

  /** An acknowledgement up to `index`. Returns whether it told the leader anything new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the message whose prevIndex was `rejected`; `matchHint` is the follower's hint
   * (the last index that may match). Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Optimistically advance after sending entries up to `last` (replicate) or note the probe. */
  sentEntries(count: number, last: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.next = last + 1;
        this.inflights.push(last);
        assert(this.inflights.length <= this.inflightMax, "in-flight window overflow");
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** Frees in-flight slots acknowledged by an answer up to `index`. */
  freeInflightsTo(index: number): void {
    let n = 0;
    while (n < this.inflights.length && this.inflights[n] <= index) n++;
    if (n > 0) this.inflights.splice(0, n);
  }

  /** Whether the leader must hold back entries to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.length >= this.inflightMax;
      case "snapshot":
        return true;
    }
  }
}
