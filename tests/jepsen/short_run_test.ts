/**
 * A short Jepsen-style run on real processes (3 nodes, kill -9 and partition nemeses, about a
 * minute): every checker passes. `deno task jepsen` runs longer ones (README, "Fault testing").
 */
import assert from "node:assert/strict";
import { runJepsen } from "../../scripts/jepsen/run.ts";

Deno.test("jepsen short run: 3 nodes, kill and partition, every checker passes", async () => {
  const result = await runJepsen({
    seed: 7,
    time_ms: 40_000,
    nodes: 3,
    clients: 4,
    faults: ["kill", "partition"],
    out_dir: ".tmp/jepsen-test",
    firing_bound_ms: 20_000,
  });
  const failed = result.checks.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => `${c.name}: ${c.summary}\n${c.violations.join("\n")}`),
    [],
    `see ${result.dir}/report.md`,
  );
  const kinds = new Set(result.history.nemesis.filter((e) => e.applied).map((e) => e.kind));
  assert.ok(kinds.has("kill") && kinds.has("partition"), `faults run: ${[...kinds]}`);
  assert.ok(result.history.ops.length > 100, `${result.history.ops.length} operations`);
  assert.ok(result.stats.delivered > 10, `${result.stats.delivered} one-offs delivered`);
});
