/**
 * The CI budget of the deterministic simulation: a few hundred seeds across cluster sizes and read
 * modes. A long run is `deno task sim --seeds 10000` (see docs/raft.md).
 */
import { DEFAULT_OPTIONS, runSimulation, type SimOptions } from "../../src/raft/sim/simulator.ts";
import { assert, assertEquals } from "./assert.ts";

function runSeeds(options: Omit<SimOptions, "seed">, seeds: number): void {
  const failures: string[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const result = runSimulation({ ...options, seed });
    if (!result.ok) failures.push(`seed ${seed}: ${result.failure}`);
  }
  assertEquals(failures, []);
}

Deno.test("simulation: 1 node", () => runSeeds({ ...DEFAULT_OPTIONS, nodes: 1 }, 100));

Deno.test("simulation: 3 nodes", () => runSeeds({ ...DEFAULT_OPTIONS, nodes: 3 }, 600));

Deno.test("simulation: 5 nodes", () => runSeeds({ ...DEFAULT_OPTIONS, nodes: 5 }, 300));

Deno.test("simulation: 3 nodes with leader-lease reads", () =>
  runSeeds({ ...DEFAULT_OPTIONS, raft: { ...DEFAULT_OPTIONS.raft, readMode: "lease" } }, 300));

Deno.test("simulation: a seed replays exactly", () => {
  const a = runSimulation({ ...DEFAULT_OPTIONS, seed: 4242, trace: true });
  const b = runSimulation({ ...DEFAULT_OPTIONS, seed: 4242, trace: true });
  assertEquals(a.trace, b.trace);
  assertEquals(a.steps, b.steps);
  assert(a.trace.length > 1000, "the trace records the run");
});

Deno.test("simulation: faults are actually injected", () => {
  const r = runSimulation({ ...DEFAULT_OPTIONS, nodes: 5, seed: 7 });
  for (
    const kind of ["partitions", "crashes", "slowPersists", "snapshots", "dropped", "duplicated"]
  ) {
    assert(r.faults[kind] > 0, `no ${kind}`);
  }
  assert(r.committed > 100 && r.readsServed > 50, "the client got work done");
});
