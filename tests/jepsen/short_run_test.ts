/**
 * A short Jepsen-style run on real processes (3 nodes and 3 worker agents, kill -9 and partition
 * nemeses of nodes, kill -9, SIGSTOP and partition of workers, the hostile client, about a
 * minute): every checker passes, the "no node died or stopped answering" one and the worker
 * checkers (every due worker occurrence started and completed, none ran twice at once, no
 * worker's capacity over-allocated) included. `deno task jepsen` runs longer ones (README, "Fault testing").
 * The hostile client sends every kind, `deep` included (a payload of 100,000 nested arrays
 * stopped a node's Raft loop before the HTTP edge bounded input shapes, issue 9).
 */
import assert from "node:assert/strict";
import { ALL_HOSTILE } from "../../scripts/jepsen/hostile.ts";
import { runJepsen } from "../../scripts/jepsen/run.ts";

Deno.test("jepsen short run: 3 nodes, 3 workers, kill, partition, worker faults, hostile client, every checker passes", async () => {
  const result = await runJepsen({
    seed: 43,
    time_ms: 30_000,
    nodes: 3,
    clients: 4,
    faults: ["kill", "partition", "worker-kill", "worker-pause", "worker-partition"],
    workers: 3,
    out_dir: ".tmp/jepsen-test",
    firing_bound_ms: 20_000,
    hostile: { kinds: ALL_HOSTILE, rate_per_s: 4, max_requests: 400 },
  });
  const failed = result.checks.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => `${c.name}: ${c.summary}\n${c.violations.join("\n")}`),
    [],
    `see ${result.dir}/report.md`,
  );
  const kinds = new Set(result.history.nemesis.filter((e) => e.applied).map((e) => e.kind));
  assert.ok(kinds.has("kill") && kinds.has("partition"), `faults run: ${[...kinds]}`);
  assert.ok([...kinds].some((k) => k.startsWith("worker-")), `faults run: ${[...kinds]}`);
  const names = result.checks.map((c) => c.name);
  for (
    const name of [
      "every due worker occurrence started and completed",
      "no worker occurrence ran twice at once",
      "no worker's capacity over-allocated",
    ]
  ) assert.ok(names.includes(name), `checker ${name} ran`);
  const w = result.worker_stats!;
  assert.ok(w.completed > 10, `${w.completed} worker occurrences completed`);
  assert.ok(w.samples > 50, `${w.samples} samples of GET /workers`);
  assert.ok(result.history.ops.length > 100, `${result.history.ops.length} operations`);
  assert.ok(result.stats.delivered > 10, `${result.stats.delivered} one-offs delivered`);
  const hostileKinds = new Set(result.history.hostile.map((r) => r.kind));
  assert.ok(hostileKinds.size >= 6, `hostile kinds sent: ${[...hostileKinds]}`);
  assert.ok(
    result.history.hostile.length > 50,
    `${result.history.hostile.length} hostile requests`,
  );
});
