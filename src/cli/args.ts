/**
 * Argument parsing of the CLI: the one module that knows `node:util` `parseArgs`, so it can be
 * swapped for `@std/cli` once JSR is reachable (docs: DESIGN.md, "CLI").
 *
 * @example
 * ```ts
 * const { values, positionals } = parseOptions(["abc", "--limit", "5"], {
 *   limit: { type: "string", help: "Page size", placeholder: "n" },
 * });
 * // values.limit === "5", positionals = ["abc"]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** The command line is wrong (exit 2 with the command's help). */
export class UsageError extends Error {}

/** One flag: its kind and the help line it shows. */
export interface OptionSpec {
  type: "string" | "boolean";
  help: string;
  /** Name of the value in the help, e.g. `id` shows `--to <id>`. */
  placeholder?: string;
  short?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type OptionValues = Record<string, string | boolean | undefined>;

/** Parses `args` strictly against `specs`: an unknown flag or a missing value is a usage error. */
export function parseOptions(
  args: string[],
  specs: OptionSpecs,
): { values: OptionValues; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.short === undefined
      ? { type: spec.type }
      : { type: spec.type, short: spec.short };
  }
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: parsed.values as OptionValues, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * Index of the first argument after leading global flags (`--url x`, `--token=y`, `--json`), where
 * a command group must stand. Only flags named in `globals` are skipped, so a server flag such as
 * `--data-dir jobs` never reads as the `jobs` group.
 */
export function indexAfterGlobals(args: string[], globals: OptionSpecs): number {
  let i = 0;
  while (i < args.length && args[i].startsWith("--")) {
    const [flag, inline] = args[i].slice(2).split(/=(.*)/s);
    const spec = globals[flag];
    if (spec === undefined || flag === "help") break;
    i += spec.type === "string" && inline === undefined ? 2 : 1;
  }
  return i;
}

const looksLikeJson = (text: string) => text.trimStart().startsWith("{");

/**
 * Takes a JSON body given as `--json '{…}'` (or `--json={…}`) out of `args`. `--json` is also the
 * boolean "print raw JSON" flag: it takes a value only when the next argument is a JSON object,
 * so `jobs create --json '{…}' --json` sends the body and prints the answer raw.
 */
export function takeJsonBody(args: string[]): { body: string | undefined; rest: string[] } {
  const rest: string[] = [];
  const bodies: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg.startsWith("--json=") && looksLikeJson(arg.slice("--json=".length))) {
      bodies.push(arg.slice("--json=".length));
    } else if (arg === "--json" && i + 1 < args.length && looksLikeJson(args[i + 1])) {
      bodies.push(args[++i]);
    } else rest.push(arg);
  }
  if (bodies.length > 1) throw new UsageError("give one --json '{…}' body, not several");
  return { body: bodies[0], rest };
}
