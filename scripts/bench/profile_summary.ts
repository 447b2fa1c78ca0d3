/**
 * Where the time goes in a V8 CPU profile (`deno run --cpu-prof`, e.g. through
 * `bench:single --cpu-prof-dir`): the share of samples inside given functions (inclusive, each
 * sample counted once per name) and the largest self times. For the tables in docs/benchmarks.md.
 *
 * ```sh
 * deno run --allow-read scripts/bench/profile_summary.ts CPU.123.cpuprofile [--top 15] [--inside executeStmt,fetch]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const DEFAULT_INSIDE = [
  "(idle)",
  "(program)",
  "(garbage collector)",
  "executeStmt",
  "prepare",
  "columns",
  "write",
  "query",
  "writeTransaction",
  "fetch",
  "rowToJob",
  "apply",
  "#settleJobs",
  "#deliver",
  "#recordOutcome",
  "stringifyChecked",
];

function label(node: ProfileNode): string {
  const file = node.callFrame.url.replace(/^.*\//, "");
  const name = node.callFrame.functionName || "(anonymous)";
  return file === "" ? name : `${name} ${file}:${node.callFrame.lineNumber + 1}`;
}

function summarize(profile: Profile, inside: string[], top: number): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const within = new Map<string, number>(inside.map((name) => [name, 0]));
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = byId.get(at)!.callFrame.functionName;
      if (within.has(name) && !seen.has(name)) {
        seen.add(name);
        within.set(name, within.get(name)! + dt);
      }
    }
  });
  const pct = (us: number) => `${(100 * us / total).toFixed(1)}%`;
  const lines = [
    `${(total / 1e6).toFixed(1)} s sampled`,
    "",
    "| inside | share |",
    "| --- | --- |",
  ];
  for (const [name, us] of within) lines.push(`| ${name} | ${pct(us)} |`);
  lines.push("", "| self time | share |", "| --- | --- |");
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${name} | ${pct(us)} |`);
  }
  return lines;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { top: { type: "string", default: "15" }, inside: { type: "string" } },
  });
  const inside = values.inside === undefined ? DEFAULT_INSIDE : values.inside.split(",");
  for (const path of positionals) {
    const profile = JSON.parse(await Deno.readTextFile(path)) as Profile;
    console.log([`## ${path}`, ...summarize(profile, inside, Number(values.top)), ""].join("\n"));
  }
}
