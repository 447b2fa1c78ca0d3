/** The Raft log on a real libSQL file: what persist() wrote is what a reopen reads. */
import assert from "node:assert/strict";
import { CorruptLogError, crc32, SqliteRaftStorage } from "../../src/cluster/raft_storage.ts";
import type { Entry } from "../../src/raft/types.ts";

const CONF = { voters: [1, 2, 3], learners: [] };
const entry = (index: number, term: number, text = `cmd-${index}`): Entry => ({
  index,
  term,
  kind: "normal",
  data: new TextEncoder().encode(text),
});

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-raftlog-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("crc32 matches the IEEE check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("entries and hard state survive a reopen; truncation replaces a conflicting tail", async () => {
  await withDir(async (dir) => {
    let s = await SqliteRaftStorage.open(dir, CONF);
    assert.equal(s.initialized, false);
    await s.persist({
      entries: [entry(1, 1), entry(2, 1), entry(3, 2)],
      hardState: { term: 2, vote: 1, commit: 2 },
    });
    await s.persist({ truncateFrom: 3, entries: [entry(3, 3, "other"), entry(4, 3)] });
    s.close();
    s = await SqliteRaftStorage.open(dir, { voters: [], learners: [] });
    assert.equal(s.initialized, true);
    assert.deepEqual(s.initialState(), { hardState: { term: 2, vote: 1, commit: 2 }, conf: CONF });
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 4);
    assert.deepEqual(s.entries(1, 5, 1 << 20).map((e) => [e.index, e.term]), [
      [1, 1],
      [2, 1],
      [3, 3],
      [4, 3],
    ]);
    assert.equal(new TextDecoder().decode(s.entries(3, 4, 1 << 20)[0].data), "other");
    s.close();
  });
});

Deno.test("compaction keeps the snapshot and the entries after it", async () => {
  await withDir(async (dir) => {
    let s = await SqliteRaftStorage.open(dir, CONF);
    await s.persist({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)) });
    const data = new TextEncoder().encode("state at 3");
    await s.compact({ index: 3, term: 1, conf: CONF }, data);
    s.close();
    s = await SqliteRaftStorage.open(dir, CONF);
    assert.equal(s.firstIndex(), 4);
    assert.equal(s.lastIndex(), 5);
    assert.equal(s.term(3), 1);
    assert.deepEqual(s.snapshot().meta, { index: 3, term: 1, conf: CONF });
    assert.equal(new TextDecoder().decode(s.snapshot().data), "state at 3");
    assert.throws(() => s.entries(3, 5, 1 << 20), RangeError);
    s.close();
  });
});

Deno.test("an installed snapshot that the log does not match discards the whole log", async () => {
  await withDir(async (dir) => {
    let s = await SqliteRaftStorage.open(dir, CONF);
    await s.persist({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    await s.persist({
      snapshot: { meta: { index: 10, term: 4, conf: CONF }, data: new Uint8Array([1, 2]) },
      entries: [],
    });
    s.close();
    s = await SqliteRaftStorage.open(dir, CONF);
    assert.equal(s.firstIndex(), 11);
    assert.equal(s.lastIndex(), 10);
    s.close();
  });
});

Deno.test("a corrupted entry stops the open with CorruptLogError", async () => {
  await withDir(async (dir) => {
    const s = await SqliteRaftStorage.open(dir, CONF);
    await s.persist({ entries: [entry(1, 1), entry(2, 1)] });
    await s.db.client.execute("UPDATE raft_entries SET data = X'00' WHERE idx = 2");
    s.close();
    await assert.rejects(() => SqliteRaftStorage.open(dir, CONF), CorruptLogError);
  });
});

Deno.test("a commit-only hard state change is not written; raiseCommit restores it from the applied index", async () => {
  await withDir(async (dir) => {
    let s = await SqliteRaftStorage.open(dir, CONF);
    await s.persist({
      entries: [entry(1, 1), entry(2, 1)],
      hardState: { term: 1, vote: 1, commit: 0 },
    });
    await s.persist({ entries: [], hardState: { term: 1, vote: 1, commit: 2 } });
    s.close();
    s = await SqliteRaftStorage.open(dir, CONF);
    assert.equal(s.initialState().hardState.commit, 0, "commit alone is volatile");
    await s.raiseCommit(2);
    s.close();
    s = await SqliteRaftStorage.open(dir, CONF);
    assert.deepEqual(s.initialState().hardState, { term: 1, vote: 1, commit: 2 });
    s.close();
  });
});
