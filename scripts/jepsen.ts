/**
 * `deno task jepsen --seed N --time 60s --nodes 5 [--clients 5] [--faults kill,pause,...]
 * [--hostile all|off|deep,types,...] [--hostile-rate 4] [--hostile-max 400] [--out .tmp/jepsen]
 * [--bound 20s] [--workers 3]`: a Jepsen-style run on real node processes and worker agents (see
 * scripts/jepsen/run.ts); `clock` and `crash` run only when listed, `clock` needs libfaketime, the
 * `worker-*` faults are in the default set when `--workers` is above 0. Writes
 * `<out>/<seed>/report.md`, `history.json`, `timeline.svg` and the node logs; exits 0 when every
 * checker passes, 1 otherwise.
 */
import { parseArgs } from "node:util";
import { ALL_FAULTS, defaultFaults, type FaultKind } from "./jepsen/nemesis.ts";
import { DEFAULT_HOSTILE, parseHostileKinds } from "./jepsen/hostile.ts";
import { runJepsen } from "./jepsen/run.ts";

function duration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (match === null) throw new Error(`--${flag}: use e.g. 90s, 10m or 500ms, not "${text}"`);
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000 }[match[2] as "ms" | "s" | "m" ?? "s"];
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    seed: { type: "string" },
    time: { type: "string", default: "60s" },
    nodes: { type: "string", default: "5" },
    clients: { type: "string", default: "5" },
    faults: { type: "string" },
    out: { type: "string", default: ".tmp/jepsen" },
    bound: { type: "string", default: "20s" },
    workers: { type: "string", default: "3" },
    hostile: { type: "string", default: "all" },
    "hostile-rate": { type: "string", default: String(DEFAULT_HOSTILE.rate_per_s) },
    "hostile-max": { type: "string", default: String(DEFAULT_HOSTILE.max_requests) },
  },
});
const positive = (text: string, flag: string): number => {
  const n = Number(text);
  if (!(n > 0)) throw new Error(`--${flag}: use a positive number, not "${text}"`);
  return n;
};
const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
const workers = Number(args.workers);
if (!Number.isInteger(workers) || workers < 0) {
  throw new Error(
    `--workers: use a whole number of worker agents (0 for none), not "${args.workers}"`,
  );
}
const faults = (args.faults ?? defaultFaults(workers).join(",")).split(",").filter((f) => f !== "");
for (const f of faults) {
  if (!ALL_FAULTS.includes(f as FaultKind)) {
    throw new Error(`--faults: ${f} is not one of ${ALL_FAULTS.join(", ")}`);
  }
}
const result = await runJepsen({
  seed,
  time_ms: duration(args.time, "time"),
  nodes: Number(args.nodes),
  clients: Number(args.clients),
  faults: faults as FaultKind[],
  out_dir: args.out,
  firing_bound_ms: duration(args.bound, "bound"),
  workers,
  hostile: {
    kinds: parseHostileKinds(args.hostile),
    rate_per_s: positive(args["hostile-rate"], "hostile-rate"),
    max_requests: Math.floor(positive(args["hostile-max"], "hostile-max")),
  },
});
for (const c of result.checks) console.log(`${c.ok ? "pass" : "FAIL"}  ${c.name}: ${c.summary}`);
console.log(`report: ${result.dir}/report.md`);
Deno.exit(result.ok ? 0 : 1);
