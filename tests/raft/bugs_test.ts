/**
 * The checkers bite: for each classic Raft bug, switching it on makes the simulator fail within
 * the CI seed budget, and the same seeds pass with the bug off.
 */
import { runSimulation } from "../../src/raft/sim/simulator.ts";
import { assert } from "./assert.ts";
import { BUG_CASES } from "./bug_profiles.ts";

for (const bug of BUG_CASES) {
  Deno.test(`the simulator finds: ${bug.name}`, () => {
    let found: { seed: number; failure: string } | undefined;
    for (let seed = 1; seed <= bug.seeds_max && !found; seed++) {
      const result = runSimulation({ ...bug.withBug, seed });
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
