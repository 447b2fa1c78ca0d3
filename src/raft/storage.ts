/**
 * The durable log as the core sees it. The core only reads it; the shell writes it from each
 * `Ready` (see `Ready` in types.ts) and compacts it after taking snapshots. `MemoryStorage` is the
 * in-memory implementation the simulator and the tests use; the shell backs the same interface
 * with libSQL.
 */
import { assert } from "./errors.ts";
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

export interface Storage {
  /** The persisted hard state, and the configuration of the latest snapshot. */
  initialState(): { hardState: HardState; conf: ConfState };
  /** The first index with an entry: the snapshot's index + 1. */
  firstIndex(): number;
  /** The last index with an entry, or the snapshot's index when there are none. */
  lastIndex(): number;
  /** The term of entry `index`, for `firstIndex() - 1 ≤ index ≤ lastIndex()`. */
  term(index: number): number;
  /** Entries [lo, hi), at least one when lo < hi, then no more than `bytesMax` in all. */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
  /** The latest snapshot. */
  snapshot(): Snapshot;
}

/** Bytes an entry counts for against message and batch limits: its data and a fixed header. */
export function entryBytes(entry: Entry): number {
  return entry.data.byteLength + 24;
}

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/**
 * Storage in memory. `entries[0]` is a dummy at the snapshot index carrying the snapshot term, so
 * `term(firstIndex() - 1)` works like any other lookup.
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snap: Snapshot;
  #ents: Entry[];

  /** Storage of a node that starts a new cluster with `conf` (or joins one, with no voters). */
  constructor(conf: ConfState = EMPTY_CONF) {
    this.#snap = { meta: { index: 0, term: 0, conf }, data: new Uint8Array(0) };
    this.#ents = [{ index: 0, term: 0, kind: "noop", data: new Uint8Array(0) }];
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.#hardState, conf: this.#snap.meta.conf };
  }

  firstIndex(): number {
    return this.#ents[0].index + 1;
  }

  lastIndex(): number {
    return this.#ents[0].index + this.#ents.length - 1;
  }

  term(index: number): number {
    const offset = this.#ents[0].index;
    assert(
      index >= offset && index <= this.lastIndex(),
      `storage term(${index}) outside [${offset}, ${this.lastIndex()}]`,
    );
    return this.#ents[index - offset].term;
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    const offset = this.#ents[0].index;
    assert(lo > offset && hi <= this.lastIndex() + 1, `storage entries [${lo}, ${hi}) unavailable`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.#ents[i - offset];
      bytes += entryBytes(entry);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.#snap;
  }

  hardStateNow(): HardState {
    return this.#hardState;
  }

  setHardState(hardState: HardState): void {
    this.#hardState = hardState;
  }

  /** Appends `entries`, first deleting any stored entry at or after the first one's index. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const offset = this.#ents[0].index;
    const first = entries[0].index;
    assert(first > offset, `append at ${first} at or below the snapshot index ${offset}`);
    assert(
      first <= this.lastIndex() + 1,
      `append at ${first} leaves a gap after ${this.lastIndex()}`,
    );
    this.#ents.length = first - offset;
    for (const entry of entries) this.#ents.push(entry);
  }

  /** Replaces the whole log by `snapshot` (a follower installing its leader's snapshot). */
  applySnapshot(snapshot: Snapshot): void {
    this.#snap = snapshot;
    this.#ents = [{
      index: snapshot.meta.index,
      term: snapshot.meta.term,
      kind: "noop",
      data: new Uint8Array(0),
    }];
  }

  /** Records a snapshot of the state machine at `index` (≤ the last applied index). */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    assert(
      index > this.#snap.meta.index,
      `snapshot at ${index} not after ${this.#snap.meta.index}`,
    );
    assert(index <= this.lastIndex(), `snapshot at ${index} beyond the last index`);
    this.#snap = { meta: { index, term: this.term(index), conf }, data };
    return this.#snap;
  }

  /** Drops entries up to and including `index` (which must be covered by the snapshot). */
  compact(index: number): void {
    const offset = this.#ents[0].index;
    if (index <= offset) return;
    assert(index <= this.#snap.meta.index, `compact to ${index} beyond the snapshot`);
    const dummy: Entry = { index, term: this.term(index), kind: "noop", data: new Uint8Array(0) };
    this.#ents = [dummy, ...this.#ents.slice(index - offset + 1)];
  }
}
