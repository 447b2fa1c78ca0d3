/**
 * A node process with a fault point armed on demand: runs `serve` from src/main.ts with a fault
 * hook that throws at the point named by `TICKRAFT_TEST_FAULT` once the process got SIGUSR2.
 * The production entry passes no hook; this file exists for tests/integration/fail_fast_test.ts.
 * It runs on Deno or Bun (tests/support/process.ts), so it uses `node:process` and src/runtime.ts.
 */
import process from "node:process";
import { serve } from "../../src/main.ts";
import type { FaultPoint } from "../../src/faults.ts";
import { envGet, exitProcess, programArgs } from "../../src/runtime.ts";

const point = envGet("TICKRAFT_TEST_FAULT") as FaultPoint | undefined;
let armed = false;
process.on("SIGUSR2", () => armed = true);

exitProcess(
  await serve(programArgs(), (at) => {
    if (armed && at === point) throw new Error(`injected fault at ${at}`);
  }),
);
