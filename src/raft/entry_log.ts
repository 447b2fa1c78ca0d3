/**
 * The node's view of its log: the persisted part in `Storage` plus the unstable tail (entries and
 * possibly a snapshot the core has accepted but the shell has not persisted yet). Entries from
 * `unstableOffset` on supersede whatever storage holds at those indexes.
 */
import { assert } from "./errors.ts";
import { entryBytes, type Storage } from "./storage.ts";
import type { Entry, Snapshot } from "./types.ts";

export class RaftLog {
  /** Highest index known committed (Raft §5.3). */
  committed: number;
  /** Highest index handed to the shell to apply. */
  applied: number;
  #unstableOffset: number;
  #unstableEntries: Entry[] = [];
  #unstableSnapshot: Snapshot | undefined;

  constructor(readonly storage: Storage, committed: number, applied: number) {
    this.committed = committed;
    this.applied = applied;
    this.#unstableOffset = storage.lastIndex() + 1;
    assert(applied <= committed, `applied ${applied} > committed ${committed}`);
    assert(
      committed <= this.lastIndex(),
      `committed ${committed} > last index ${this.lastIndex()}`,
    );
  }

  firstIndex(): number {
    if (this.#unstableSnapshot) return this.#unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.#unstableEntries.length > 0) {
      return this.#unstableOffset + this.#unstableEntries.length - 1;
    }
    if (this.#unstableSnapshot) return this.#unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "the last entry's term is always known");
    return term;
  }

  /** The term of entry `index`, or undefined when compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index >= this.#unstableOffset) {
      const entry = this.#unstableEntries[index - this.#unstableOffset];
      if (entry) return entry.term;
      if (this.#unstableSnapshot && index === this.#unstableSnapshot.meta.index) {
        return this.#unstableSnapshot.meta.term;
      }
      return undefined;
    }
    if (this.#unstableSnapshot) {
      return index === this.#unstableSnapshot.meta.index
        ? this.#unstableSnapshot.meta.term
        : undefined;
    }
    if (index < this.storage.firstIndex() - 1 || index > this.storage.lastIndex()) return undefined;
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a log is at least as up to date if its last term is higher, or equal and longer. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries [lo, hi): no more than `countMax`, and within `bytesMax` except that the first entry
   * always goes. Undefined when `lo` is compacted away.
   */
  slice(lo: number, hi: number, countMax: number, bytesMax: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    hi = Math.min(hi, this.lastIndex() + 1, lo + countMax);
    if (lo >= hi) return [];
    const out: Entry[] = [];
    let bytes = 0;
    if (lo < this.#unstableOffset) {
      const stored = this.storage.entries(lo, Math.min(hi, this.#unstableOffset), bytesMax);
      for (const entry of stored) {
        bytes += entryBytes(entry);
        out.push(entry);
      }
      if (out.length < Math.min(hi, this.#unstableOffset) - lo) return out;
    }
    for (let i = Math.max(lo, this.#unstableOffset); i < hi; i++) {
      const entry = this.#unstableEntries[i - this.#unstableOffset];
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry);
    }
    return out;
  }

  /**
   * The follower side of AppendEntries (Raft §5.3, receiver steps 2–4). Returns the index of the
   * last new entry, or undefined when (prevIndex, prevTerm) does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.#findConflict(entries);
    if (conflict !== undefined) {
      assert(
        conflict > this.committed,
        `truncating committed entry ${conflict} (≤ ${this.committed})`,
      );
      this.append(entries.slice(conflict - prevIndex - 1));
    }
    return lastNew;
  }

  /** The first entry of `entries` that is new or conflicts with the log (§5.3 step 3). */
  #findConflict(entries: readonly Entry[]): number | undefined {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return undefined;
  }

  /**
   * Fast backtracking: the largest index ≤ `index` whose term is ≤ `term`, with its term. Every
   * entry after it has a larger term than `term`, so none can match (etcd's findConflictByTerm).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i >= this.firstIndex() - 1; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) return { index: i, term: t ?? 0 };
    }
    return { index: i, term: 0 };
  }

  /** Appends entries, truncating the log at the first one's index. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    assert(
      first > this.committed,
      `append at ${first} would overwrite committed ${this.committed}`,
    );
    assert(
      first <= this.lastIndex() + 1,
      `append at ${first} leaves a gap after ${this.lastIndex()}`,
    );
    if (first === this.#unstableOffset + this.#unstableEntries.length) {
      for (const entry of entries) this.#unstableEntries.push(entry);
    } else if (first <= this.#unstableOffset) {
      this.#unstableOffset = first;
      this.#unstableEntries = entries.slice();
    } else {
      this.#unstableEntries.length = first - this.#unstableOffset;
      for (const entry of entries) this.#unstableEntries.push(entry);
    }
  }

  /** Replaces the log by a snapshot (Raft §7, receiver steps 6–8). */
  restore(snapshot: Snapshot): void {
    this.#unstableSnapshot = snapshot;
    this.#unstableEntries = [];
    this.#unstableOffset = snapshot.meta.index + 1;
    this.committed = snapshot.meta.index;
    this.applied = snapshot.meta.index;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** What the shell must persist next. */
  unstable(): { snapshot?: Snapshot; entries: Entry[]; offset: number } {
    return {
      snapshot: this.#unstableSnapshot,
      entries: this.#unstableEntries,
      offset: this.#unstableOffset,
    };
  }

  hasUnstable(): boolean {
    return this.#unstableEntries.length > 0 || this.#unstableSnapshot !== undefined;
  }

  /** The shell persisted everything `unstable()` returned. */
  stableAll(): void {
    this.#unstableOffset = this.lastIndex() + 1;
    this.#unstableEntries = [];
    this.#unstableSnapshot = undefined;
    assert(
      this.storage.lastIndex() === this.#unstableOffset - 1,
      `storage last index ${this.storage.lastIndex()} ≠ log last index ${this.#unstableOffset - 1}`,
    );
  }

  /** The last index persisted and still part of this log: what a leader counts as its own match. */
  stableLastIndex(): number {
    return this.#unstableSnapshot ? 0 : this.#unstableOffset - 1;
  }

  /** Committed entries not yet handed out, within `bytesMax` (at least one if any). */
  nextCommitted(bytesMax: number): Entry[] {
    if (this.applied >= this.committed) return [];
    return this.slice(this.applied + 1, this.committed + 1, Number.MAX_SAFE_INTEGER, bytesMax) ??
      [];
  }

  hasNextCommitted(): boolean {
    return this.applied < this.committed;
  }
}
