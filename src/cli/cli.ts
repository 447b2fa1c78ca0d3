/**
 * The CLI: `tickraft [global flags] <group> <command> [args] [flags]`, talking to a node over HTTP.
 * It reads the command line, builds a client from `--url`/`--token` (or `TICKRAFT_URL`,
 * `TICKRAFT_TOKEN`), runs the command and maps failures to exit codes: 1 when the request failed
 * (with the server's message and status), 2 for a usage error (with the command's help).
 *
 * @example
 * ```ts
 * if (isCliInvocation(Deno.args)) Deno.exit(await runCli(Deno.args));
 * ```
 *
 * @module
 */
import {
  indexAfterGlobals,
  type OptionSpecs,
  type OptionValues,
  parseOptions,
  takeJsonBody,
  UsageError,
} from "./args.ts";
import { ApiError, ConnectionError, TickraftClient } from "./client.ts";
import { envGet } from "../runtime.ts";
import { CLUSTER_COMMANDS } from "./cluster_commands.ts";
import { type Command, CommandError } from "./command.ts";
import { JOB_COMMANDS } from "./jobs.ts";
import { ALLOCATION_COMMANDS, WORKER_COMMANDS } from "./workers.ts";

const DEFAULT_URL = "http://127.0.0.1:8080";

const GLOBAL_OPTIONS: OptionSpecs = {
  url: {
    type: "string",
    placeholder: "url",
    help: `The node to talk to (default $TICKRAFT_URL or ${DEFAULT_URL})`,
  },
  token: {
    type: "string",
    placeholder: "token",
    help: "Sent as Authorization: Bearer (default $TICKRAFT_TOKEN)",
  },
  json: { type: "boolean", help: "Print the server's JSON instead of tables" },
  help: { type: "boolean", short: "h", help: "Print this help" },
};

interface Group {
  summary: string;
  commands: Record<string, Command>;
}

const GROUPS: Record<string, Group> = {
  jobs: { summary: "Create, inspect and change jobs", commands: JOB_COMMANDS },
  cluster: { summary: "Inspect the cluster and change its members", commands: CLUSTER_COMMANDS },
  workers: {
    summary: "Inspect, drain and remove registered workers (the agent itself is tickraft worker)",
    commands: WORKER_COMMANDS,
  },
  allocations: {
    summary: "Inspect allocations: occurrences of worker jobs placed on workers",
    commands: ALLOCATION_COMMANDS,
  },
};

/** Whether `args` name a CLI group (`jobs`, `cluster`, `workers`, `allocations`), possibly after global flags. */
export function isCliInvocation(args: string[]): boolean {
  return Object.hasOwn(GROUPS, args[indexAfterGlobals(args, GLOBAL_OPTIONS)] ?? "");
}

/** Runs the command in `args`; resolves with the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  const at = indexAfterGlobals(args, GLOBAL_OPTIONS);
  const group_name = args[at];
  const group = GROUPS[group_name];
  if (group === undefined) throw new Error("runCli: call it only when isCliInvocation(args)");
  const name = args[at + 1];
  if (name === "--help" || name === "-h") {
    console.log(groupHelp(group_name, group));
    return 0;
  }
  if (name === undefined || !Object.hasOwn(group.commands, name)) {
    const problem = name === undefined
      ? `give a ${group_name} command`
      : `unknown command "${group_name} ${name}" (the command comes right after "${group_name}")`;
    return usageFailure(problem, groupHelp(group_name, group));
  }
  const command = group.commands[name];
  const help = () => commandHelp(`${group_name} ${name}`, command);
  try {
    const { body, rest } = takeJsonBody([...args.slice(0, at), ...args.slice(at + 2)]);
    const { values, positionals } = parseOptions(rest, { ...command.options, ...GLOBAL_OPTIONS });
    if (values.help === true) {
      console.log(help());
      return 0;
    }
    checkArguments(command, positionals, body);
    await command.run({
      client: clientFrom(values),
      raw: values.json === true,
      values,
      args: positionals,
      body,
      print: (text) => console.log(text),
    });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error.message, help());
    if (error instanceof ApiError) {
      const code = error.code === null ? "" : ` ${error.code}`;
      console.error(`tickraft: ${error.message} (HTTP ${error.status}${code})`);
      return 1;
    }
    if (error instanceof ConnectionError || error instanceof CommandError) {
      console.error(`tickraft: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

function usageFailure(problem: string, help: string): number {
  console.error(`tickraft: ${problem}\n\n${help}`);
  return 2;
}

function checkArguments(command: Command, positionals: string[], body: string | undefined): void {
  if (positionals.length < command.args.length) {
    const missing = command.args.slice(positionals.length).map((a) => `<${a}>`);
    throw new UsageError(`missing ${missing.join(" ")}`);
  }
  if (positionals.length > command.args.length) {
    throw new UsageError(`unexpected argument "${positionals[command.args.length]}"`);
  }
  if (body !== undefined && command.takes_body !== true) {
    throw new UsageError("a JSON body (--json '{…}') is only for jobs create");
  }
}

/** The client for `--url`/`--token`, else `TICKRAFT_URL`/`TICKRAFT_TOKEN`; the token is never shown. */
function clientFrom(values: OptionValues): TickraftClient {
  const from_flag = typeof values.url === "string";
  const url = from_flag ? values.url as string : envGet("TICKRAFT_URL") || DEFAULT_URL;
  if (!/^https?:\/\/./.test(url) || !URL.canParse(url)) {
    const where = from_flag ? "--url" : "TICKRAFT_URL";
    throw new UsageError(`${where} "${url}" is not an http(s) URL, e.g. ${DEFAULT_URL}`);
  }
  const token = typeof values.token === "string" ? values.token : envGet("TICKRAFT_TOKEN");
  return new TickraftClient(url, token === undefined || token === "" ? null : token);
}

function optionLines(specs: OptionSpecs): [string, string][] {
  return Object.entries(specs).map(([name, spec]) => {
    const short = spec.short === undefined ? "" : `-${spec.short}, `;
    const value = spec.placeholder === undefined ? "" : ` <${spec.placeholder}>`;
    return [`${short}--${name}${value}`, spec.help];
  });
}

/** Sections of `[left, right]` rows, the left column aligned across all sections. */
function columns(sections: [string, [string, string][]][]): string {
  const width = Math.max(...sections.flatMap(([, rows]) => rows.map(([left]) => left.length)));
  return sections
    .filter(([, rows]) => rows.length > 0)
    .map(([title, rows]) =>
      `${title}:\n${rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join("\n")}`
    )
    .join("\n\n");
}

function commandHelp(path: string, command: Command): string {
  const args = command.args.map((a) => ` <${a}>`).join("");
  const body: [string, string][] = command.takes_body
    ? [["--json '{…}'", "The job as JSON (a value starting with {)"]]
    : [];
  const examples = (command.examples ?? []).map((e) => `  ${e}`).join("\n");
  return [
    `Usage: tickraft ${path}${args} [flags]`,
    "",
    command.summary,
    "",
    columns([
      ["Flags", [...body, ...optionLines(command.options)]],
      ["Global flags", optionLines(GLOBAL_OPTIONS)],
    ]),
    ...(examples === "" ? [] : ["", "Examples:", examples]),
  ].join("\n");
}

function groupHelp(group_name: string, group: Group): string {
  const commands = Object.entries(group.commands).map(([name, command]): [string, string] => [
    `${name}${command.args.map((a) => ` <${a}>`).join("")}`,
    command.summary,
  ]);
  return [
    `Usage: tickraft ${group_name} <command> [args] [flags]`,
    "",
    group.summary,
    "",
    columns([["Commands", commands], ["Global flags", optionLines(GLOBAL_OPTIONS)]]),
    "",
    `"tickraft ${group_name} <command> --help" shows a command's flags.`,
  ].join("\n");
}
