/**
 * Opens the node's libSQL file: WAL journal, synchronous=FULL (every commit is fsynced before it
 * is acknowledged) unless the caller keeps its durability elsewhere (a cluster's state file: the
 * Raft log is durable and replays what a crash lost), then applies pending migrations.
 */
import { type Client, createClient } from "@libsql/client/node";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { type Migration, MIGRATIONS } from "./migrations.ts";
import { makeDirectory, readBytes, removeFile, renameFile, writeBytesSynced } from "../runtime.ts";

/**
 * An open database: the raw client for hot paths, drizzle for cold queries. `client` and `orm`
 * change when `replaceWith` swaps the file (snapshot install); holders read them per use.
 */
export interface Database {
  client: Client;
  orm: LibSQLDatabase;
  close(): void;
  /** A consistent copy of the whole file (`VACUUM INTO`), as bytes. */
  copyBytes(): Promise<Uint8Array>;
  /** Replaces the file with `bytes` (a copy from `copyBytes`) and reopens it. */
  replaceWith(bytes: Uint8Array): Promise<void>;
}

/**
 * Opens (creating if needed) `<data_dir>/<file>` and migrates it with `migrations` (the
 * scheduler's state by default; the Raft log has its own file and migrations).
 */
export async function openDatabase(
  data_dir: string,
  file = "node.db",
  migrations: Migration[] = MIGRATIONS,
  synchronous: "FULL" | "NORMAL" = "FULL",
): Promise<Database> {
  await makeDirectory(data_dir);
  const path = `${data_dir.replace(/\/+$/, "")}/${file}`;
  const connect = async () => {
    const client = createClient({ url: `file:${path}` });
    await client.execute("PRAGMA journal_mode=WAL");
    await client.execute(`PRAGMA synchronous=${synchronous}`);
    await client.execute("PRAGMA busy_timeout=5000");
    await migrate(client, migrations);
    return client;
  };
  const client = await connect();
  const db: Database = {
    client,
    orm: drizzle(client),
    close: () => db.client.close(),
    async copyBytes() {
      const copy = `${path}.copy-${crypto.randomUUID()}`;
      try {
        await db.client.execute({ sql: "VACUUM INTO ?", args: [copy] });
        return await readBytes(copy);
      } finally {
        await removeFile(copy).catch(() => {});
      }
    },
    async replaceWith(bytes) {
      const incoming = `${path}.incoming`;
      await writeBytesSynced(incoming, bytes);
      db.client.close();
      for (const suffix of ["-wal", "-shm"]) await removeFile(path + suffix).catch(() => {});
      await renameFile(incoming, path);
      db.client = await connect();
      db.orm = drizzle(db.client);
    },
  };
  return db;
}

async function migrate(client: Client, migrations: Migration[]): Promise<void> {
  await client.execute(
    "CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const applied = new Set(
    (await client.execute("SELECT id FROM schema_migrations")).rows.map((r) => Number(r.id)),
  );
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    await client.batch([
      ...m.sql,
      {
        sql: "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
        args: [m.id, m.name, Date.now()],
      },
    ], "write");
  }
}
