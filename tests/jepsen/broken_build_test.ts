/**
 * The harness catches a deliberately broken build. The node is copied to .tmp/ with one
 * change, and the copy is run under partitions (src/ itself is untouched):
 *
 * - stale reads: `?consistency=linearizable` is served from the local state with no ReadIndex
 *   round, so a node cut off from the leader answers from old state. The linearizability
 *   checker must flag it.
 */
import assert from "node:assert/strict";
import { runJepsen } from "../../scripts/jepsen/run.ts";

const SRC = new URL("../../src/", import.meta.url).pathname;
const COPY = new URL("../../.tmp/jepsen-broken/", import.meta.url).pathname;

/** Copies src/ to `COPY` and applies `edit` to one file; returns the copy's main.ts. */
async function brokenBuild(file: string, from: string, to: string): Promise<string> {
  await Deno.remove(COPY, { recursive: true }).catch(() => {});
  const copy = async (dir: string) => {
    for await (const entry of Deno.readDir(`${SRC}${dir}`)) {
      const rel = `${dir}${entry.name}`;
      if (entry.isDirectory) {
        await Deno.mkdir(`${COPY}src/${rel}`, { recursive: true });
        await copy(`${rel}/`);
      } else await Deno.copyFile(`${SRC}${rel}`, `${COPY}src/${rel}`);
    }
  };
  await Deno.mkdir(`${COPY}src`, { recursive: true });
  await copy("");
  const path = `${COPY}src/${file}`;
  const text = await Deno.readTextFile(path);
  assert.ok(text.includes(from), `${file} still contains the line the broken build changes`);
  await Deno.writeTextFile(path, text.replace(from, to));
  return `${COPY}src/main.ts`;
}

Deno.test("jepsen catches a broken build: linearizable reads served without ReadIndex", async () => {
  const main = await brokenBuild(
    "http/cluster.ts",
    `const linearizable = url.searchParams.get("consistency") === "linearizable";`,
    `const linearizable = false;`,
  );
  try {
    const result = await runJepsen({
      seed: 11,
      time_ms: 40_000,
      nodes: 3,
      clients: 5,
      faults: ["partition"],
      out_dir: ".tmp/jepsen-test",
      firing_bound_ms: 20_000,
      main,
    });
    const lin = result.checks.find((c) => c.name === "linearizability")!;
    assert.equal(lin.ok, false, `the stale reads went unnoticed: see ${result.dir}/report.md`);
  } finally {
    await Deno.remove(COPY, { recursive: true }).catch(() => {});
  }
});
