/**
 * A node process with a fault point armed on demand: runs `serve` from src/main.ts with a fault
 * hook that throws at the point named by `TICKRAFT_TEST_FAULT` once the process got SIGUSR2.
 * The production entry passes no hook; this file exists for tests/integration/fail_fast_test.ts.
 */
import { serve } from "../../src/main.ts";
import type { FaultPoint } from "../../src/faults.ts";

const point = Deno.env.get("TICKRAFT_TEST_FAULT") as FaultPoint | undefined;
let armed = false;
Deno.addSignalListener("SIGUSR2", () => armed = true);

Deno.exit(
  await serve(Deno.args, (at) => {
    if (armed && at === point) throw new Error(`injected fault at ${at}`);
  }),
);
