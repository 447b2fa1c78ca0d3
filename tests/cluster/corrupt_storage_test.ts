/**
 * Corrupt data on disk, in real libSQL files: bytes flipped inside `raft.db` (an entry, the
 * snapshot, the file header), bad rows (hard state, entry kind) and a bad `node.db` row. Each is
 * refused at open with a CorruptDataError that names the entry's index and says how to recover;
 * a real node process started on such a directory exits 1 with that message.
 */
import assert from "node:assert/strict";
import { CorruptDataError } from "../../src/db/corrupt.ts";
import { openDatabase } from "../../src/db/open.ts";
import { CorruptLogError, SqliteRaftStorage } from "../../src/cluster/raft_storage.ts";
import type { Entry } from "../../src/raft/types.ts";
import { SchedulerState } from "../../src/scheduler/state.ts";

const CONF = { voters: [1], learners: [] };
const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
const EXIT_TIMEOUT_MS = 30_000;
const utf8 = new TextEncoder();

const entry = (index: number, text: string): Entry => ({
  index,
  term: 1,
  kind: "normal",
  data: utf8.encode(text),
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-corrupt-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A raft.db with entries 1-3 whose data holds markers, and a snapshot at 1 (closed). */
async function writeLog(dir: string): Promise<void> {
  const s = await SqliteRaftStorage.open(dir, CONF);
  await s.persist({
    entries: [entry(1, "first"), entry(2, "MARKER-OF-ENTRY-TWO"), entry(3, "third")],
    hardState: { term: 1, vote: 1, commit: 3 },
  });
  await s.compact({ index: 1, term: 1, conf: CONF }, utf8.encode("MARKER-OF-THE-SNAPSHOT"));
  // Into the main file, where a flipped byte lands in a page (a WAL frame has its own checksum).
  await s.db.client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
  s.close();
}

/** Flips one byte of `marker` inside the file. */
async function flipInFile(path: string, marker: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const needle = utf8.encode(marker);
  const at = bytes.findIndex((_, i) => needle.every((b, j) => bytes[i + j] === b));
  assert.ok(at >= 0, `${marker} not found in ${path}`);
  bytes[at + 3] ^= 0x20;
  await Deno.writeFile(path, bytes);
}

/** Opening must fail with CorruptLogError at `index` (if given) and a message matching `text`. */
async function refusedOpen(dir: string, text: RegExp, index?: number): Promise<void> {
  await assert.rejects(() => SqliteRaftStorage.open(dir, CONF), (error: Error) => {
    assert.ok(error instanceof CorruptLogError, `${error}`);
    assert.ok(error instanceof CorruptDataError);
    assert.equal(error.index, index);
    assert.match(error.message, text);
    assert.match(error.message, /move its data directory aside .* rejoins/);
    return true;
  });
}

/** Runs a node on `dir` until it exits (killed after EXIT_TIMEOUT_MS); its code and output. */
async function runNodeUntilExit(
  dir: string,
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      MAIN,
      "--host",
      "127.0.0.1",
      "--data-dir",
      dir,
      ...(
        env.CLUSTER_NODES === undefined ? ["--http-port", "0"] : ["--http-port", env.PORT]
      ),
    ],
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(EXIT_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

Deno.test("a byte flipped in an entry's data: refused with the entry's index", async () => {
  await withDir(async (dir) => {
    await writeLog(dir);
    await flipInFile(`${dir}/raft.db`, "MARKER-OF-ENTRY-TWO");
    await refusedOpen(dir, /^raft\.db: entry 2 is corrupt \(its data fails its checksum\)/, 2);
  });
});

Deno.test("a byte flipped in the snapshot: refused with the snapshot's index", async () => {
  await withDir(async (dir) => {
    await writeLog(dir);
    await flipInFile(`${dir}/raft.db`, "MARKER-OF-THE-SNAPSHOT");
    await refusedOpen(dir, /^raft\.db: the snapshot at 1 is corrupt \(its data fails/, 1);
  });
});

Deno.test("a damaged file header: SQLite's error becomes CorruptLogError", async () => {
  await withDir(async (dir) => {
    await writeLog(dir);
    const bytes = await Deno.readFile(`${dir}/raft.db`);
    bytes.fill(0x41, 0, 16);
    await Deno.writeFile(`${dir}/raft.db`, bytes);
    await refusedOpen(dir, /^raft\.db: the file is corrupt \(.*(not a database|NOTADB)/i);
  });
});

Deno.test("bad rows: the hard state, an entry's kind and term, a gap", async () => {
  const cases: [string, RegExp, number | undefined][] = [
    [
      "UPDATE raft_state SET value = '{\"term\":1}' WHERE key = 'hard_state'",
      /the hard state is corrupt \(it is not \{term, vote, commit\}\)/,
      undefined,
    ],
    [
      "UPDATE raft_state SET value = 'garbage' WHERE key = 'hard_state'",
      /the hard state is corrupt \(its value is not JSON\)/,
      undefined,
    ],
    [
      "UPDATE raft_entries SET kind = 'exotic' WHERE idx = 3",
      /entry 3 is corrupt \(its kind is exotic\)/,
      3,
    ],
    ["UPDATE raft_entries SET term = 0 WHERE idx = 3", /entry 3 is corrupt \(its term 0/, 3],
    ["DELETE FROM raft_entries WHERE idx = 2", /entry 3 is corrupt \(it follows entry 1\)/, 3],
    [
      "UPDATE raft_snapshot SET conf = '{\"voters\":[0]}'",
      /the snapshot at 1 is corrupt \(its configuration/,
      1,
    ],
  ];
  for (const [sql, text, index] of cases) {
    await withDir(async (dir) => {
      await writeLog(dir);
      const db = await openDatabase(dir, "raft.db", []);
      await db.client.execute(sql);
      db.close();
      await refusedOpen(dir, text, index);
    });
  }
});

Deno.test("a cluster node on a corrupt raft.db exits 1 saying which entry and what to do", async () => {
  await withDir(async (dir) => {
    await writeLog(dir);
    await flipInFile(`${dir}/raft.db`, "MARKER-OF-ENTRY-TWO");
    const port = String(40_000 + Math.floor(Math.random() * 20_000));
    const { code, output } = await runNodeUntilExit(dir, {
      NODE_ID: "node-1",
      CLUSTER_NODES: `node-1=http://127.0.0.1:${port}`,
      CLUSTER_SECRET: "corrupt-storage-test-secret",
      PORT: port,
    });
    assert.equal(code, 1, output);
    assert.match(output, /tickraft: raft\.db: entry 2 is corrupt .* rejoins/);
  });
});

Deno.test("a single node on a node.db with a row apply never wrote exits 1 saying what to do", async () => {
  await withDir(async (dir) => {
    const db = await openDatabase(dir);
    await db.client.execute(
      "INSERT INTO meta (key, value) VALUES ('applied_index', 'not-a-number')",
    );
    db.close();
    const { code, output } = await runNodeUntilExit(dir, {});
    assert.equal(code, 1, output);
    assert.match(
      output,
      /tickraft: node\.db: the applied index \(meta\.applied_index\) is corrupt .* restore the data directory from a backup/,
    );
    // The state machine refuses the same file when opened in-process.
    const again = await openDatabase(dir);
    try {
      await assert.rejects(() => new SchedulerState().load(again), CorruptDataError);
    } finally {
      again.close();
    }
  });
});
