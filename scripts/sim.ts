/**
 * The Raft simulator's command line.
 *
 *   deno task sim --seed 42            replay one seed and print its trace
 *   deno task sim --seeds 1000         run seeds 1..1000 and print a summary and any failures
 *   deno task sim --seeds 200 --nodes 5 --ticks 3000
 */
import { parseArgs } from "node:util";
import { DEFAULT_OPTIONS, runSimulation, type SimOptions } from "../src/raft/sim/simulator.ts";

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
  --bug NAME  switch on a test-only bug (repeatable): voteBeforePersist, commitPreviousTermByCount,
              readIndexBeforeOwnTermCommit, noCheckQuorumStepDown`,
  );
  Deno.exit(values.help ? 0 : 2);
}

const nodes = Number(values.nodes);
if (![1, 3, 5].includes(nodes)) {
  console.error("--nodes must be 1, 3 or 5");
  Deno.exit(2);
}
const bugNames = [
  "voteBeforePersist",
  "commitPreviousTermByCount",
  "readIndexBeforeOwnTermCommit",
  "noCheckQuorumStepDown",
];
const bugs: Record<string, boolean> = {};
for (const name of values.bug) {
  if (!bugNames.includes(name)) {
    console.error(`--bug must be one of ${bugNames.join(", ")}`);
    Deno.exit(2);
  }
  bugs[name] = true;
}
const base: Omit<SimOptions, "seed"> = {
  ...DEFAULT_OPTIONS,
  raft: {
    ...DEFAULT_OPTIONS.raft,
    preVote: !values["no-pre-vote"],
    checkQuorum: !values["no-check-quorum"],
    readMode: values.lease ? "lease" : "safe",
  },
  bugs,
  nodes,
  faultTicks: values.ticks ? Number(values.ticks) : DEFAULT_OPTIONS.faultTicks,
};

if (values.seed !== undefined) {
  const result = runSimulation({ ...base, seed: Number(values.seed), trace: true });
  const lines = values.trace ? result.trace : result.trace.slice(-200);
  for (const line of lines) console.log(line);
  console.log(JSON.stringify({ ...result, trace: undefined }, null, 2));
  Deno.exit(result.ok ? 0 : 1);
}

const count = Number(values.seeds);
const first = Number(values.first);
const started = performance.now();
const faults: Record<string, number> = {};
let steps = 0;
const failures: { seed: number; failure: string }[] = [];
for (let seed = first; seed < first + count; seed++) {
  const result = runSimulation({ ...base, seed });
  steps += result.steps;
  for (const [k, v] of Object.entries(result.faults)) faults[k] = (faults[k] ?? 0) + v;
  if (!result.ok) {
    failures.push({ seed, failure: result.failure ?? "" });
    console.log(
      `seed ${seed} FAILED: ${result.failure}  (replay: deno task sim --seed ${seed} --nodes ${nodes})`,
    );
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify(
    {
      nodes,
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
Deno.exit(failures.length === 0 ? 0 : 1);
