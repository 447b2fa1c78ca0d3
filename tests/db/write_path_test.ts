/**
 * The hot write and read path of `Database` (src/db/open.ts) on a real libSQL file: one
 * transaction per `write`, rolled back as a whole on failure, prepared statements reused by SQL
 * text (the cache's counters), the same durability setting as the client connection, and the
 * two connections on the file seeing each other's commits; `fixedChunks` cuts any count into
 * the fixed sizes that keep SQL texts a fixed set.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { openDatabase } from "../../src/db/open.ts";
import { fixedChunks, StatementCache } from "../../src/db/statement_cache.ts";

async function withDb(
  run: (db: Awaited<ReturnType<typeof openDatabase>>, dir: string) => Promise<void>,
  synchronous: "FULL" | "NORMAL" = "FULL",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-write-path-" });
  const db = await openDatabase(dir, "node.db", undefined, synchronous);
  try {
    await run(db, dir);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const PUT =
  "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

Deno.test("write commits its statements together and reuses each prepared statement", async () => {
  await withDb(async (db) => {
    const before = db.statementCache();
    for (let i = 0; i < 50; i++) {
      await db.write([{ sql: PUT, args: ["a", String(i)] }, { sql: PUT, args: ["b", String(i)] }]);
    }
    const after = db.statementCache();
    // BEGIN IMMEDIATE, COMMIT and PUT: prepared once each, then hit on every later use.
    assert.equal(after.misses - before.misses, 3);
    assert.equal(after.hits - before.hits, 50 * 4 - 3);
    const rows = await db.client.execute("SELECT key, value FROM meta WHERE key IN ('a', 'b')");
    assert.deepEqual(rows.rows.map((r) => [r.key, r.value]), [["a", "49"], ["b", "49"]]);
  });
});

Deno.test("a failing statement rolls back the whole write and the next write works", async () => {
  await withDb(async (db) => {
    await db.write([{ sql: PUT, args: ["kept", "1"] }]);
    await assert.rejects(
      db.write([
        { sql: PUT, args: ["lost", "1"] },
        { sql: "INSERT INTO meta (key, value) VALUES (?, ?)", args: ["kept", "2"] },
      ]),
      /UNIQUE constraint failed/,
    );
    assert.deepEqual(await db.query("SELECT key FROM meta WHERE key = ?", ["lost"]), []);
    await db.write([{ sql: PUT, args: ["after", "1"] }]);
    const keys = await db.query("SELECT key, value FROM meta WHERE key IN (?, ?, ?) ORDER BY key", [
      "after",
      "kept",
      "lost",
    ]);
    assert.deepEqual(keys, [{ key: "after", value: "1" }, { key: "kept", value: "1" }]);
  });
});

Deno.test("undefined is refused with what to pass instead, and nothing is written", async () => {
  await withDb(async (db) => {
    await assert.rejects(
      db.write([{ sql: PUT, args: ["x", undefined as unknown as null] }]),
      /undefined cannot be bound.*pass null/,
    );
    assert.deepEqual(await db.query("SELECT key FROM meta WHERE key = ?", ["x"]), []);
  });
});

Deno.test("the engine connection keeps the file's synchronous setting", async () => {
  await withDb(async (db) => {
    assert.deepEqual(await db.query("PRAGMA synchronous"), [{ synchronous: 2 }]);
  });
  await withDb(async (db) => {
    assert.deepEqual(await db.query("PRAGMA synchronous"), [{ synchronous: 1 }]);
  }, "NORMAL");
});

Deno.test("both connections see each other's commits, also after replaceWith", async () => {
  await withDb(async (db) => {
    await db.write([{ sql: PUT, args: ["k", "engine"] }]);
    assert.equal(
      (await db.client.execute("SELECT value FROM meta WHERE key = 'k'")).rows[0].value,
      "engine",
    );
    await db.client.execute({ sql: PUT, args: ["k", "client"] });
    assert.deepEqual(await db.query("SELECT value FROM meta WHERE key = ?", ["k"]), [{
      value: "client",
    }]);
    const copy = await db.copyBytes();
    await db.write([{ sql: PUT, args: ["k", "after copy"] }]);
    await db.replaceWith(copy);
    assert.deepEqual(await db.query("SELECT value FROM meta WHERE key = ?", ["k"]), [{
      value: "client",
    }]);
    await db.write([{ sql: PUT, args: ["k", "replaced"] }]);
    assert.equal(
      (await db.client.execute("SELECT value FROM meta WHERE key = 'k'")).rows[0].value,
      "replaced",
    );
  });
});

Deno.test("the cache evicts the least recently used text beyond its capacity", () => {
  const prepared: string[] = [];
  const cache = new StatementCache(2);
  cache.reset((sql) => {
    prepared.push(sql);
    return {} as ReturnType<Parameters<StatementCache["reset"]>[0]>;
  });
  cache.get("a");
  cache.get("b");
  cache.get("a");
  cache.get("c"); // evicts b, the least recently used
  cache.get("a");
  cache.get("b");
  assert.deepEqual(prepared, ["a", "b", "c", "b"]);
  assert.deepEqual(cache.stats(), { size: 2, capacity: 2, hits: 2, misses: 4, evictions: 2 });
});

Deno.test("fixedChunks keeps order, covers every item, and uses only the given sizes", () => {
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 2_000 }), (items) => {
      const chunks = fixedChunks(items);
      assert.deepEqual(chunks.flat(), items);
      for (const chunk of chunks) assert.ok([512, 64, 8, 1].includes(chunk.length));
      assert.ok(chunks.length <= Math.floor(items.length / 512) + 21);
    }),
  );
  assert.throws(() => fixedChunks([1, 2, 3], [2]), /must end in 1/);
});
