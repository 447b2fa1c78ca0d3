/**
 * `deno task fuzz --runs N [--seed S]`: runs every fuzz suite (`tests/**\/*_fuzz_test.ts`) with
 * `FUZZ_RUNS=N` (and `FUZZ_SEED=S` to replay a failure fast-check printed), longer than the test
 * suite's budget.
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "1000" }, seed: { type: "string" } },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs "${values.runs}" is not a positive whole number; e.g. --runs 5000`);
  Deno.exit(2);
}

async function fuzzSuites(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await fuzzSuites(path));
    else if (entry.name.endsWith("_fuzz_test.ts")) found.push(path);
  }
  return found;
}

const suites = (await fuzzSuites("tests")).sort();
console.log(`fuzz: ${suites.length} suites, ${runs} runs each: ${suites.join(", ")}`);
const env: Record<string, string> = { FUZZ_RUNS: String(runs) };
if (values.seed !== undefined) env.FUZZ_SEED = values.seed;
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["test", "--allow-all", ...suites],
  env,
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(code);
