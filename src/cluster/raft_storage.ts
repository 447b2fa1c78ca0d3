/**
 * The Raft log on libSQL (`raft.db`), behind the core's synchronous `Storage` interface.
 *
 * The core reads the log synchronously, so the entries since the latest snapshot are also held in
 * memory (snapshots and compaction bound them). Writes go to the file first: `persist(ready)`
 * writes the Ready's snapshot, truncation, entries and hard state in one transaction (one fsync,
 * WAL with synchronous=FULL) and only then updates memory, so nothing the core reads as stable
 * is missing from disk. Every entry and snapshot carries a CRC-32 that is checked when the file
 * is read back at start, with the shape of every row (hard state, configuration, kinds, terms,
 * consecutive indexes). Anything that does not hold, or a page SQLite cannot read, stops the
 * open with {@link CorruptLogError} naming the entry's index and how to recover.
 */
import type { InStatement } from "@libsql/client/node";
import { CorruptDataError, FIX_CLUSTER_MEMBER, isSqliteCorruption } from "../db/corrupt.ts";
import { RAFT_MIGRATIONS } from "../db/migrations.ts";
import { type Database, openDatabase } from "../db/open.ts";
import { fixedChunks } from "../db/statement_cache.ts";
import { entryBytes, type Storage } from "../raft/storage.ts";
import type {
  ConfState,
  Entry,
  EntryKind,
  HardState,
  Ready,
  Snapshot,
  SnapshotMeta,
} from "../raft/types.ts";

/**
 * `raft.db` holds data that does not match its checksum or shape: the node must not start on it.
 * The message names the entry (`index`) and says to rejoin from a peer.
 */
export class CorruptLogError extends CorruptDataError {
  override name = "CorruptLogError";

  constructor(what: string, why: string, index?: number) {
    super({ file: "raft.db", what, index }, why, FIX_CLUSTER_MEMBER);
  }
}

const KINDS: ReadonlySet<string> = new Set<EntryKind>(["normal", "conf", "noop"]);

function isUint(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A stored integer column (libSQL gives numbers, or bigints for large values). */
function uintColumn(value: unknown, what: string, column: string, index?: number): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (!isUint(n)) throw new CorruptLogError(what, `${column} is ${String(value)}`, index);
  return n;
}

function parseJson(text: unknown, what: string, index?: number): unknown {
  try {
    return JSON.parse(String(text));
  } catch {
    throw new CorruptLogError(what, "its value is not JSON", index);
  }
}

function hardStateOf(text: unknown): HardState {
  const value = parseJson(text, "the hard state") as Record<string, unknown> | null;
  if (
    typeof value !== "object" || value === null ||
    !isUint(value.term) || !isUint(value.vote) || !isUint(value.commit)
  ) {
    throw new CorruptLogError("the hard state", "it is not {term, vote, commit}");
  }
  return { term: value.term, vote: value.vote, commit: value.commit };
}

function confOf(text: unknown, index: number): ConfState {
  const what = `the snapshot at ${index}`;
  const value = parseJson(text, what, index) as Record<string, unknown> | null;
  const ids = (v: unknown) =>
    Array.isArray(v) && v.every((id) => Number.isSafeInteger(id) && id >= 1);
  if (typeof value !== "object" || value === null || !ids(value.voters) || !ids(value.learners)) {
    throw new CorruptLogError(what, "its configuration is not {voters, learners}", index);
  }
  return { voters: value.voters as number[], learners: value.learners as number[] };
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const ENTRY_INSERT_ROWS_MAX = 200;
/** Rows per entries INSERT: a fixed set, so the prepared statements are reused. */
const ENTRY_INSERT_CHUNK_SIZES = [ENTRY_INSERT_ROWS_MAX, 16, 4, 1];

function toBytes(value: unknown, what: string, index: number): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new CorruptLogError(what, `its data is a ${typeof value}, not a blob`, index);
}

export class SqliteRaftStorage implements Storage {
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot;
  /** `#ents[0]` is a dummy at the snapshot index carrying the snapshot term. */
  #ents: Entry[];

  private constructor(readonly db: Database, conf: ConfState) {
    this.#snapshot = { meta: { index: 0, term: 0, conf }, data: new Uint8Array(0) };
    this.#ents = [{ index: 0, term: 0, kind: "noop", data: new Uint8Array(0) }];
  }

  /**
   * Opens `<data_dir>/raft.db`. A new file starts with configuration `bootstrap` (the initial
   * voters, or no voters for a node that will join an existing cluster).
   */
  static async open(data_dir: string, bootstrap: ConfState): Promise<SqliteRaftStorage> {
    let db: Database;
    try {
      db = await openDatabase(data_dir, "raft.db", RAFT_MIGRATIONS);
    } catch (error) {
      throw isSqliteCorruption(error)
        ? new CorruptLogError("the file", (error as Error).message)
        : error;
    }
    const storage = new SqliteRaftStorage(db, bootstrap);
    try {
      await storage.#load();
    } catch (error) {
      db.close();
      throw isSqliteCorruption(error)
        ? new CorruptLogError("the file", (error as Error).message)
        : error;
    }
    return storage;
  }

  /** Whether the file held any Raft state when opened (false on a node's first start). */
  get initialized(): boolean {
    return this.#hardState.term > 0 || this.#snapshot.meta.index > 0 || this.#ents.length > 1;
  }

  async #load(): Promise<void> {
    const state = await this.db.client.execute(
      "SELECT value FROM raft_state WHERE key = 'hard_state'",
    );
    if (state.rows.length > 0) this.#hardState = hardStateOf(state.rows[0].value);
    const snap = await this.db.client.execute("SELECT * FROM raft_snapshot WHERE id = 1");
    if (snap.rows.length === 0) {
      // A new file: the bootstrap configuration becomes durable as the empty snapshot at 0, so
      // a restart uses it whatever flags the node is restarted with.
      await this.db.write(this.#snapshotStatements(this.#snapshot));
    } else {
      const row = snap.rows[0];
      const index = uintColumn(row.idx, "the snapshot", "its index");
      const what = `the snapshot at ${index}`;
      const data = toBytes(row.data, what, index);
      if (crc32(data) !== Number(row.crc)) {
        throw new CorruptLogError(what, "its data fails its checksum", index);
      }
      this.#snapshot = {
        meta: {
          index,
          term: uintColumn(row.term, what, "its term", index),
          conf: confOf(row.conf, index),
        },
        data,
      };
    }
    const base = this.#snapshot.meta;
    this.#ents = [{ index: base.index, term: base.term, kind: "noop", data: new Uint8Array(0) }];
    const rows = await this.db.client.execute({
      sql: "SELECT idx, term, kind, data, crc FROM raft_entries WHERE idx > ? ORDER BY idx",
      args: [base.index],
    });
    for (const row of rows.rows) {
      const index = uintColumn(row.idx, "an entry", "its index");
      const what = `entry ${index}`;
      const data = toBytes(row.data, what, index);
      if (crc32(data) !== Number(row.crc)) {
        throw new CorruptLogError(what, "its data fails its checksum", index);
      }
      if (index !== this.lastIndex() + 1) {
        throw new CorruptLogError(what, `it follows entry ${this.lastIndex()}`, index);
      }
      const term = uintColumn(row.term, what, "its term", index);
      if (term < this.#ents[this.#ents.length - 1].term) {
        throw new CorruptLogError(what, `its term ${term} is below the previous entry's`, index);
      }
      if (typeof row.kind !== "string" || !KINDS.has(row.kind)) {
        throw new CorruptLogError(what, `its kind is ${String(row.kind)}`, index);
      }
      this.#ents.push({ index, term, kind: row.kind as EntryKind, data });
    }
    if (this.#hardState.commit > this.lastIndex()) {
      throw new CorruptLogError(
        "the hard state",
        `its commit index ${this.#hardState.commit} is beyond the last entry ${this.lastIndex()}`,
      );
    }
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.#hardState, conf: this.#snapshot.meta.conf };
  }

  firstIndex(): number {
    return this.#ents[0].index + 1;
  }

  lastIndex(): number {
    return this.#ents[0].index + this.#ents.length - 1;
  }

  term(index: number): number {
    const offset = this.#ents[0].index;
    if (index < offset || index > this.lastIndex()) {
      throw new RangeError(`raft storage: term(${index}) outside [${offset}, ${this.lastIndex()}]`);
    }
    return this.#ents[index - offset].term;
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    const offset = this.#ents[0].index;
    if (lo <= offset || hi > this.lastIndex() + 1) {
      throw new RangeError(`raft storage: entries [${lo}, ${hi}) unavailable`);
    }
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
    return this.#snapshot;
  }

  /**
   * Makes a Ready's snapshot, truncation, entries and hard state durable (one transaction, one
   * fsync), then visible to the core.
   */
  async persist(rd: Pick<Ready, "snapshot" | "truncateFrom" | "entries" | "hardState">) {
    const statements: InStatement[] = [];
    if (rd.snapshot !== undefined) {
      statements.push(...this.#snapshotStatements(rd.snapshot));
      if (!this.#agreesWith(rd.snapshot.meta)) {
        statements.push({
          sql: "DELETE FROM raft_entries WHERE idx > ?",
          args: [rd.snapshot.meta.index],
        });
      }
    }
    if (rd.truncateFrom !== undefined) {
      statements.push({ sql: "DELETE FROM raft_entries WHERE idx >= ?", args: [rd.truncateFrom] });
    }
    for (const chunk of fixedChunks(rd.entries, ENTRY_INSERT_CHUNK_SIZES)) {
      statements.push({
        sql: `INSERT OR REPLACE INTO raft_entries (idx, term, kind, data, crc) VALUES ${
          chunk.map(() => "(?, ?, ?, ?, ?)").join(",")
        }`,
        args: chunk.flatMap((e) => [e.index, e.term, e.kind, e.data, crc32(e.data)]),
      });
    }
    // The commit index is volatile in Raft (Figure 2): a change of it alone is not worth an
    // fsync; it is written with the next entries, term or vote, and relearned from the leader.
    const commitOnly = rd.hardState !== undefined && statements.length === 0 &&
      rd.hardState.term === this.#hardState.term && rd.hardState.vote === this.#hardState.vote;
    if (rd.hardState !== undefined && !commitOnly) {
      statements.push({
        sql:
          "INSERT INTO raft_state (key, value) VALUES ('hard_state', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args: [JSON.stringify(rd.hardState)],
      });
    }
    if (statements.length === 0) return;
    await this.db.write(statements);
    if (rd.snapshot !== undefined) this.#installInMemory(rd.snapshot);
    if (rd.truncateFrom !== undefined) {
      this.#ents.length = Math.max(1, rd.truncateFrom - this.#ents[0].index);
    }
    for (const entry of rd.entries) {
      const at = entry.index - this.#ents[0].index;
      if (at <= 0) continue;
      this.#ents.length = at;
      this.#ents.push(entry);
    }
    if (rd.hardState !== undefined) this.#hardState = rd.hardState;
  }

  /**
   * Raises the stored commit index to `applied` (entries the state machine applied were
   * committed), since commit-only changes are not written as they happen.
   */
  async raiseCommit(applied: number): Promise<void> {
    if (applied <= this.#hardState.commit) return;
    const hardState = { ...this.#hardState, commit: Math.min(applied, this.lastIndex()) };
    await this.db.write([{
      sql:
        "INSERT INTO raft_state (key, value) VALUES ('hard_state', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      args: [JSON.stringify(hardState)],
    }]);
    this.#hardState = hardState;
  }

  /**
   * Records a snapshot the shell took of its state machine at `meta.index` (applied, hence
   * committed) and drops the log up to it.
   */
  async compact(meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    if (meta.index <= this.#snapshot.meta.index) return;
    await this.db.write(this.#snapshotStatements({ meta, data }));
    this.#installInMemory({ meta, data });
  }

  #snapshotStatements(snapshot: Snapshot): InStatement[] {
    const { meta, data } = snapshot;
    return [
      {
        sql:
          "INSERT OR REPLACE INTO raft_snapshot (id, idx, term, conf, data, crc) VALUES (1, ?, ?, ?, ?, ?)",
        args: [meta.index, meta.term, JSON.stringify(meta.conf), data, crc32(data)],
      },
      { sql: "DELETE FROM raft_entries WHERE idx <= ?", args: [meta.index] },
    ];
  }

  /** Whether the log holds the snapshot's last entry (then the entries after it stay). */
  #agreesWith(meta: SnapshotMeta): boolean {
    const offset = this.#ents[0].index;
    return meta.index <= this.lastIndex() && meta.index >= offset &&
      this.#ents[meta.index - offset].term === meta.term;
  }

  /** Drops entries up to the snapshot; keeps later ones only if they agree with it (§7). */
  #installInMemory(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    const offset = this.#ents[0].index;
    const tail = this.#agreesWith(snapshot.meta) ? this.#ents.slice(index - offset + 1) : [];
    this.#ents = [{ index, term, kind: "noop", data: new Uint8Array(0) }, ...tail];
    this.#snapshot = snapshot;
  }

  close(): void {
    this.db.close();
  }
}
