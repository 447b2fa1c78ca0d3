/**
 * Opens the node's libSQL file: WAL journal, synchronous=FULL (every commit is fsynced before it
 * is acknowledged) unless the caller keeps its durability elsewhere (a cluster's state file: the
 * Raft log is durable and replays what a crash lost), then applies pending migrations.
 *
 * The hot paths (the logs' group writes, the scheduler's and the API's point reads) go through
 * {@link Database.write} and {@link Database.query}: a second connection on the same file, made
 * with the `libsql` engine that `@libsql/client` wraps, whose prepared statements are kept in a
 * {@link StatementCache} by SQL text. `@libsql/client` prepares every statement again on every
 * call, which was a third of the node's CPU time under load (issue 14). Cold work (migrations,
 * drizzle listings, `VACUUM INTO`, loading at start) stays on `client`.
 */
import { type Client, createClient, type InStatement, type InValue } from "@libsql/client/node";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import Libsql from "libsql";
import { type Migration, MIGRATIONS } from "./migrations.ts";
import { makeDirectory, readBytes, removeFile, renameFile, writeBytesSynced } from "../runtime.ts";
import { StatementCache, type StatementCacheStats } from "./statement_cache.ts";

/** A row of {@link Database.query}: values by column name. */
export type SqlRow = Readonly<Record<string, unknown>>;

/** Prepared statements kept per connection; a node uses a few dozen distinct texts. */
export const STATEMENT_CACHE_CAPACITY = 256;

/**
 * An open database: `write` and `query` for hot paths, the raw client and drizzle for cold
 * queries. `client` and `orm` change when `replaceWith` swaps the file (snapshot install);
 * holders read them per use.
 */
export interface Database {
  client: Client;
  orm: LibSQLDatabase;
  /**
   * Runs `statements` in order in one write transaction (`BEGIN IMMEDIATE` ... `COMMIT`, so one
   * fsync with synchronous=FULL) through cached prepared statements; on any error it rolls back
   * and rethrows. Synchronous underneath: it blocks the event loop for the transaction.
   */
  write(statements: readonly InStatement[]): Promise<void>;
  /** Runs one read through a cached prepared statement; rows keyed by column name. */
  query(sql: string, args?: readonly InValue[]): Promise<SqlRow[]>;
  /** Hits, misses and evictions of the prepared-statement cache since the file was opened. */
  statementCache(): StatementCacheStats;
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
  const cache = new StatementCache(STATEMENT_CACHE_CAPACITY);
  const openEngine = () => {
    const engine = new Libsql(path);
    engine.exec(`PRAGMA synchronous=${synchronous}`);
    engine.exec("PRAGMA busy_timeout=5000");
    cache.reset((sql) => engine.prepare(sql));
    return engine;
  };
  let engine = openEngine();
  const db: Database = {
    client,
    orm: drizzle(client),
    write(statements) {
      try {
        writeTransaction(engine, cache, statements);
        return Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      }
    },
    query(sql, args = []) {
      try {
        return Promise.resolve(cache.get(sql).all(bindable(args)) as SqlRow[]);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    statementCache: () => cache.stats(),
    close: () => {
      engine.close();
      db.client.close();
    },
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
      engine.close();
      db.client.close();
      for (const suffix of ["-wal", "-shm"]) await removeFile(path + suffix).catch(() => {});
      await renameFile(incoming, path);
      db.client = await connect();
      db.orm = drizzle(db.client);
      engine = openEngine();
    },
  };
  return db;
}

/** `statements` in one `BEGIN IMMEDIATE` transaction; rolled back if any of them fails. */
function writeTransaction(
  engine: Libsql.Database,
  cache: StatementCache,
  statements: readonly InStatement[],
): void {
  cache.get("BEGIN IMMEDIATE").run();
  try {
    for (const statement of statements) {
      if (typeof statement === "string") cache.get(statement).run();
      else cache.get(statement.sql).run(bindable(statement.args ?? []));
    }
    cache.get("COMMIT").run();
  } catch (error) {
    if (engine.inTransaction) engine.exec("ROLLBACK");
    throw error;
  }
}

/**
 * Arguments as the engine binds them, converted as `@libsql/client` converts them (booleans to
 * 0/1, dates to epoch milliseconds, ArrayBuffers to bytes), so a value is stored the same
 * whichever path wrote it.
 */
function bindable(
  args: readonly InValue[] | Readonly<Record<string, InValue>>,
): unknown[] | Record<string, unknown> {
  if (Array.isArray(args)) return args.map(bindValue);
  const named: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args)) {
    named[/^[@$:]/.test(name) ? name.slice(1) : name] = bindValue(value);
  }
  return named;
}

function bindValue(value: InValue): unknown {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Date) return value.valueOf();
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value === undefined) {
    throw new TypeError("undefined cannot be bound as an SQL argument: pass null");
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new RangeError(`${value} cannot be bound as an SQL argument: only finite numbers`);
  }
  return value;
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
