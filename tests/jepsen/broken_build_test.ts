/**
 * The harness catches a deliberately broken build: the run's copy of src/ gets one change
 * (src/ itself is untouched) and runs under partitions.
 *
 * - stale reads: `?consistency=linearizable` is served from the local state with no ReadIndex
 *   round, so a node cut off from the leader answers from old state. The linearizability
 *   checker must flag it.
 */
import assert from "node:assert/strict";
import { runJepsen } from "../../scripts/jepsen/run.ts";

Deno.test("jepsen catches a broken build: linearizable reads served without ReadIndex", async () => {
  const result = await runJepsen({
    seed: 11,
    time_ms: 40_000,
    nodes: 3,
    clients: 5,
    faults: ["partition"],
    out_dir: ".tmp/jepsen-test",
    firing_bound_ms: 20_000,
    edit: {
      file: "http/cluster_routes.ts",
      from: `const linearizable = url.searchParams.get("consistency") === "linearizable";`,
      to: `const linearizable = false;`,
    },
  });
  const lin = result.checks.find((c) => c.name === "linearizability")!;
  assert.equal(lin.ok, false, `the stale reads went unnoticed: see ${result.dir}/report.md`);
});
