/**
 * The checkers bite: for each classic Raft bug, the broken core (or the broken configuration)
 * makes the simulator fail within the CI seed budget, and the same seeds pass on the real core.
 */
import { runSimulation } from "../../src/raft/sim/simulator.ts";
import { assert } from "./assert.ts";
import { BUG_CASES } from "./bug_profiles.ts";
import { brokenCore } from "./broken_core.ts";

for (const bug of BUG_CASES) {
  Deno.test(`the simulator finds: ${bug.name}`, async () => {
    await using core = bug.bug === undefined ? undefined : await brokenCore(bug.bug);
    const runBroken = core?.simulator.runSimulation ?? runSimulation;
    let found: { seed: number; failure: string } | undefined;
    for (let seed = 1; seed <= bug.seeds_max && !found; seed++) {
      const result = runBroken({ ...bug.withBug, seed });
      if (!result.ok) found = { seed, failure: result.failure ?? "" };
    }
    assert(found, `not found within ${bug.seeds_max} seeds`);
    assert(
      bug.expected.test(found.failure),
      `seed ${found.seed} failed otherwise: ${found.failure}`,
    );
    for (let seed = 1; seed <= found.seed; seed++) {
      const control = runSimulation({ ...bug.withoutBug, seed });
      assert(control.ok, `seed ${seed} fails without the bug too: ${control.failure}`);
    }
  });
}
