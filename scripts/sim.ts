/**
 * The Raft simulator's command line.
 *
 *   deno task sim --seed 42            replay one seed and print its trace
 *   deno task sim --seeds 1000         run seeds 1..1000 and print a summary and any failures
 *   deno task sim --seeds 200 --nodes 5 --ticks 3000
 *   deno task sim --seeds 200 --bug readIndexBeforeOwnTermCommit   run a broken core
 *
 * `--bug` runs the simulator of a broken copy of src/raft/ (tests/raft/broken_core.ts), made in
 * .tmp/ and deleted at the end; the real core has no bug switches.
 */
import { parseArgs } from "node:util";
import { DEFAULT_OPTIONS, runSimulation, type SimOptions } from "../src/raft/sim/simulator.ts";
import {
  brokenCore,
  CORE_BUGS,
  type CoreBugName,
  isCoreBugName,
} from "../tests/raft/broken_core.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    seeds: { type: "string" },
    first: { type: "string", default: "1" },
    nodes: { type: "string", default: "3" },
    ticks: { type: "string" },
    trace: { type: "boolean", default: false },
    bug: { type: "string", multiple: true, default: [] },
    "no-pre-vote": { type: "boolean", default: false },
    "no-check-quorum": { type: "boolean", default: false },
    lease: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help || (values.seed === undefined && values.seeds === undefined)) {
  console.log(
    `usage: deno task sim (--seed N [--trace] | --seeds N [--first S]) [--nodes 1|3|5] [--ticks N]
  --seed N    replay seed N with a readable trace (the last 200 lines; --trace for all)
  --seeds N   run N seeds starting at --first (default 1); print seeds, steps, faults, failures
  --nodes     cluster size (default 3)
  --ticks     ticks of the fault phase (default ${DEFAULT_OPTIONS.faultTicks})
  --lease     leader-lease reads instead of ReadIndex rounds
  --no-pre-vote, --no-check-quorum
  --bug NAME  run a copy of the core with this bug edited in (repeatable): ${
      Object.keys(CORE_BUGS).join(", ")
    }`,
  );
  Deno.exit(values.help ? 0 : 2);
}

const nodes = Number(values.nodes);
if (![1, 3, 5].includes(nodes)) {
  console.error("--nodes must be 1, 3 or 5");
  Deno.exit(2);
}
const bugs: CoreBugName[] = [];
for (const name of values.bug) {
  if (!isCoreBugName(name)) {
    console.error(`--bug must be one of ${Object.keys(CORE_BUGS).join(", ")}`);
    Deno.exit(2);
  }
  bugs.push(name);
}
const base: Omit<SimOptions, "seed"> = {
  ...DEFAULT_OPTIONS,
  raft: {
    ...DEFAULT_OPTIONS.raft,
    preVote: !values["no-pre-vote"],
    checkQuorum: !values["no-check-quorum"],
    readMode: values.lease ? "lease" : "safe",
  },
  nodes,
  faultTicks: values.ticks ? Number(values.ticks) : DEFAULT_OPTIONS.faultTicks,
};

/** The flags that shape a run, for the replay hint of a failed seed. */
const shapeFlags = [
  `--nodes ${nodes}`,
  ...(values.ticks ? [`--ticks ${values.ticks}`] : []),
  ...(values.lease ? ["--lease"] : []),
  ...(values["no-pre-vote"] ? ["--no-pre-vote"] : []),
  ...(values["no-check-quorum"] ? ["--no-check-quorum"] : []),
  ...bugs.map((name) => `--bug ${name}`),
].join(" ");

type Run = typeof runSimulation;

/** Replays one seed with its trace; exit code 1 if it fails. */
function replay(run: Run, seed: number): number {
  const result = run({ ...base, seed, trace: true });
  const lines = values.trace ? result.trace : result.trace.slice(-200);
  for (const line of lines) console.log(line);
  console.log(JSON.stringify({ ...result, trace: undefined }, null, 2));
  return result.ok ? 0 : 1;
}

/** Runs `count` seeds from `first` and prints each failure and a summary; exit code 1 on any. */
function runSeeds(run: Run, first: number, count: number): number {
  const started = performance.now();
  const faults: Record<string, number> = {};
  let steps = 0;
  const failures: { seed: number; failure: string }[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result = run({ ...base, seed });
    steps += result.steps;
    for (const [k, v] of Object.entries(result.faults)) faults[k] = (faults[k] ?? 0) + v;
    if (!result.ok) {
      failures.push({ seed, failure: result.failure ?? "" });
      console.log(
        `seed ${seed} FAILED: ${result.failure}  (replay: deno task sim --seed ${seed} ${shapeFlags})`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify(
      {
        nodes,
        bugs,
        seedsRun: count,
        steps,
        faultsInjected: faults,
        failures: failures.length,
        failedSeeds: failures.map((f) => f.seed),
        seconds: Number(seconds.toFixed(1)),
        seedsPerMinute: Math.round((count / seconds) * 60),
      },
      null,
      2,
    ),
  );
  return failures.length === 0 ? 0 : 1;
}

/** Runs on the real core, or on a broken copy (deleted before returning) when `--bug` is given. */
async function main(): Promise<number> {
  await using core = bugs.length > 0 ? await brokenCore(...bugs) : undefined;
  for (const name of bugs) console.log(`broken core, ${name}: ${CORE_BUGS[name].summary}`);
  const run = core?.simulator.runSimulation ?? runSimulation;
  if (values.seed !== undefined) return replay(run, Number(values.seed));
  return runSeeds(run, Number(values.first), Number(values.seeds));
}

Deno.exit(await main());
