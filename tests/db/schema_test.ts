/** The drizzle schema and the SQL migrations describe the same tables and columns. */
import assert from "node:assert/strict";
import { getTableConfig, type SQLiteTable } from "drizzle-orm/sqlite-core";
import { MIGRATIONS, RAFT_MIGRATIONS } from "../../src/db/migrations.ts";
import { openDatabase } from "../../src/db/open.ts";
import * as schema from "../../src/db/schema.ts";

const STATE_TABLES = [
  schema.meta,
  schema.logEntries,
  schema.jobs,
  schema.executions,
  schema.members,
  schema.workers,
  schema.allocations,
];
const RAFT_TABLES = [schema.raftEntries, schema.raftState, schema.raftSnapshot];

async function columnsOnDisk(file: string, raft: boolean, tables: SQLiteTable[]) {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-schema-" });
  const db = raft ? await openDatabase(dir, file, RAFT_MIGRATIONS) : await openDatabase(dir, file);
  try {
    const out: Record<string, { name: string; notNull: boolean }[]> = {};
    for (const table of tables) {
      const name = getTableConfig(table).name;
      const info = await db.client.execute(`PRAGMA table_info(${name})`);
      out[name] = info.rows.map((r) => ({
        name: String(r.name),
        notNull: Number(r.notnull) === 1 || Number(r.pk) === 1,
      }));
    }
    return out;
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function columnsInSchema(tables: SQLiteTable[]) {
  return Object.fromEntries(tables.map((table) => {
    const config = getTableConfig(table);
    return [
      config.name,
      config.columns.map((c) => ({ name: c.name, notNull: c.notNull || c.primary })),
    ];
  }));
}

Deno.test("state tables: migrations create exactly the drizzle schema", async () => {
  assert.deepEqual(
    await columnsOnDisk("node.db", false, STATE_TABLES),
    columnsInSchema(STATE_TABLES),
  );
});

Deno.test("raft tables: migrations create exactly the drizzle schema", async () => {
  assert.deepEqual(await columnsOnDisk("raft.db", true, RAFT_TABLES), columnsInSchema(RAFT_TABLES));
});

Deno.test("migrations are applied once: reopening a file changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-schema-" });
  try {
    (await openDatabase(dir)).close();
    const db = await openDatabase(dir);
    const applied = await db.client.execute("SELECT id FROM schema_migrations ORDER BY id");
    assert.deepEqual(applied.rows.map((r) => Number(r.id)), MIGRATIONS.map((m) => m.id));
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
