/**
 * The command line of `tickraft worker`: flags to {@link AgentOptions}, checked the way the
 * server checks a registration (docs/workers.md), so a mistake is reported before anything is
 * sent. Pure: the host's facts (name, pid, cores, memory) and the environment come in as values.
 *
 * @example
 * ```ts
 * const options = parseAgentArgs(
 *   ["--server", "http://127.0.0.1:8080", "--exec", "sh -c 'cat'", "--labels", "tier=batch"],
 *   { hostname: "box", pid: 42, cores: 2, memory_total_mb: 4096 },
 *   {},
 * );
 * // options.id === "box-42", options.capacity.cpu_millis === 2000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LogLevel } from "../logger.ts";
import type { HostInfo } from "./runtime.ts";

/** The command line is wrong: exit 2 with the help. */
export class AgentUsageError extends Error {}

/** A taint of the worker: jobs that do not tolerate it are kept off (`NoSchedule`) or avoided. */
export interface Taint {
  key: string;
  value: string;
  effect: "NoSchedule" | "PreferNoSchedule";
}

/** What the worker offers, as registered. */
export interface Capacity {
  cpu_millis: number;
  memory_mb: number;
  disk_mb: number;
  slots: number;
}

/** How the agent runs an allocation. */
export type Runner =
  | { kind: "handler"; url: string }
  | { kind: "exec"; argv: string[] };

/** Everything `tickraft worker` was told. */
export interface AgentOptions {
  /** Nodes to talk to, in the order tried. */
  servers: string[];
  id: string;
  pool: string;
  region: string;
  zone: string;
  labels: Record<string, string>;
  taints: Taint[];
  capacity: Capacity;
  /** Sent as `Authorization: Bearer`; null sends none. */
  token: string | null;
  /** Signs `--handler` requests (`X-Tickraft-Signature`); null sends them unsigned. */
  secret: string | null;
  runner: Runner;
  log_level: LogLevel;
}

/** The result of reading the command line: options, or a request for the help. */
export type ParsedAgentArgs = AgentOptions | { help: true };

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const ID_MAX_CHARS = 64;
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
const TAINT_EFFECTS: readonly Taint["effect"][] = ["NoSchedule", "PreferNoSchedule"];

const FLAGS = {
  server: { type: "string", multiple: true },
  id: { type: "string" },
  pool: { type: "string" },
  region: { type: "string" },
  zone: { type: "string" },
  labels: { type: "string", multiple: true },
  taints: { type: "string", multiple: true },
  cpu: { type: "string" },
  memory: { type: "string" },
  disk: { type: "string" },
  slots: { type: "string" },
  token: { type: "string" },
  secret: { type: "string" },
  handler: { type: "string" },
  exec: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The help of `tickraft worker --help`. */
export const AGENT_HELP =
  `usage: tickraft worker --server URL[,URL…] (--handler URL | --exec 'cmd …') [flags]

Runs allocations of worker jobs (executor {"type": "worker"}) on this host: registers with a node,
heartbeats its usage, long-polls its allocations and reports each outcome (docs/workers.md).
SIGTERM or SIGINT drains (nothing new starts, what runs finishes); a second one exits at once.

  --server <urls>      Nodes to talk to, comma-separated; the next one is tried when one fails
  --handler <url>      POST each allocation, signed as a webhook, to this local endpoint
  --exec <command>     Run each allocation as this command (quoted words, no shell); the
                       payload is on stdin, TICKRAFT_ALLOCATION_ID, TICKRAFT_JOB_ID,
                       TICKRAFT_ATTEMPT and TICKRAFT_IDEMPOTENCY_KEY in its environment
  --id <id>            Worker id, 1-64 of [A-Za-z0-9._-] (default: <hostname>-<pid>)
  --pool <pool>        Pool (default: default)
  --region <region>    Region (default: empty)
  --zone <zone>        Zone (default: empty)
  --labels <k=v,…>     Labels that constraints match
  --taints <k=v:E,…>   Taints, E is NoSchedule or PreferNoSchedule (k:E for an empty value)
  --cpu <millis>       CPU offered, in millicores (default: 1000 per core)
  --memory <mb>        Memory offered, in MiB (default: the host's memory)
  --disk <mb>          Disk offered, in MiB (default: 0)
  --slots <n>          Allocations run at once, at least 1 (default: 1)
  --token <token>      Sent as Authorization: Bearer (default: $TICKRAFT_TOKEN)
  --secret <secret>    Signs --handler requests (default: $TICKRAFT_WORKER_SECRET)
  --log-level <level>  debug, info, warn or error (default: info)
  -h, --help           Print this help`;

/** Reads `args` (after the word `worker`); throws {@link AgentUsageError} with what to fix. */
export function parseAgentArgs(
  args: string[],
  host: HostInfo,
  env: Record<string, string>,
): ParsedAgentArgs {
  let values;
  try {
    values = parseArgs({ args, options: FLAGS, allowPositionals: false, strict: true }).values;
  } catch (error) {
    throw new AgentUsageError((error as Error).message);
  }
  if (values.help === true) return { help: true };
  const servers = (values.server ?? []).flatMap(splitList).map(checkServer);
  if (servers.length === 0) {
    throw new AgentUsageError("give --server with the URL of a node, e.g. http://127.0.0.1:8080");
  }
  const id = values.id ?? defaultId(host);
  if (!ID_PATTERN.test(id)) {
    throw new AgentUsageError(`--id "${id}" must be 1-64 of [A-Za-z0-9._-]`);
  }
  return {
    servers,
    id,
    pool: values.pool ?? "default",
    region: values.region ?? "",
    zone: values.zone ?? "",
    labels: parseLabels((values.labels ?? []).flatMap(splitList)),
    taints: (values.taints ?? []).flatMap(splitList).map(parseTaint),
    capacity: {
      cpu_millis: integerFlag("cpu", values.cpu, host.cores * 1000, 0),
      memory_mb: integerFlag("memory", values.memory, host.memory_total_mb, 0),
      disk_mb: integerFlag("disk", values.disk, 0, 0),
      slots: integerFlag("slots", values.slots, 1, 1),
    },
    token: nonEmpty(values.token ?? env.TICKRAFT_TOKEN),
    secret: nonEmpty(values.secret ?? env.TICKRAFT_WORKER_SECRET),
    runner: parseRunner(values.handler, values.exec),
    log_level: parseLogLevel(values["log-level"]),
  };
}

const splitList = (text: string) => text.split(",").map((s) => s.trim()).filter((s) => s !== "");

const nonEmpty = (text: string | undefined) => text === undefined || text === "" ? null : text;

function checkServer(url: string): string {
  if (!/^https?:\/\/./.test(url) || !URL.canParse(url)) {
    throw new AgentUsageError(`--server "${url}" is not an http(s) URL, e.g. http://10.0.0.1:8080`);
  }
  return url.replace(/\/+$/, "");
}

/** `<hostname>-<pid>`, with characters an id cannot hold replaced and the host name cut to fit. */
function defaultId(host: HostInfo): string {
  const suffix = `-${host.pid}`;
  const name = host.hostname.replace(/[^A-Za-z0-9._-]/g, "-") || "worker";
  return name.slice(0, ID_MAX_CHARS - suffix.length) + suffix;
}

function parseLabels(pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new AgentUsageError(`--labels "${pair}" must be key=value`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

function parseTaint(text: string): Taint {
  const colon = text.lastIndexOf(":");
  const effect = text.slice(colon + 1);
  if (colon <= 0 || !(TAINT_EFFECTS as readonly string[]).includes(effect)) {
    throw new AgentUsageError(
      `--taints "${text}" must be key=value:Effect or key:Effect, Effect one of ${
        TAINT_EFFECTS.join(", ")
      }`,
    );
  }
  const pair = text.slice(0, colon);
  const at = pair.indexOf("=");
  const key = at < 0 ? pair : pair.slice(0, at);
  if (key === "") throw new AgentUsageError(`--taints "${text}" has an empty key`);
  return { key, value: at < 0 ? "" : pair.slice(at + 1), effect: effect as Taint["effect"] };
}

function integerFlag(name: string, text: string | undefined, fallback: number, min: number) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(n) || n < min) {
    throw new AgentUsageError(`--${name} must be an integer ≥ ${min}, got "${text}"`);
  }
  return n;
}

function parseRunner(handler: string | undefined, exec: string | undefined): Runner {
  if ((handler === undefined) === (exec === undefined)) {
    throw new AgentUsageError("give exactly one of --handler URL or --exec 'command …'");
  }
  if (handler !== undefined) {
    if (!/^https?:\/\/./.test(handler) || !URL.canParse(handler)) {
      throw new AgentUsageError(
        `--handler "${handler}" is not an http(s) URL, e.g. http://127.0.0.1:3000/run`,
      );
    }
    return { kind: "handler", url: handler };
  }
  const argv = splitCommand(exec as string);
  if (argv.length === 0) {
    throw new AgentUsageError("--exec needs a command, e.g. --exec './job.sh'");
  }
  return { kind: "exec", argv };
}

function parseLogLevel(text: string | undefined): LogLevel {
  if (text === undefined) return "info";
  if (!(LOG_LEVELS as readonly string[]).includes(text)) {
    throw new AgentUsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${text}"`);
  }
  return text as LogLevel;
}

/**
 * Splits a command line into words the way a POSIX shell quotes them, without running a shell:
 * whitespace separates words, `'…'` is literal, `"…"` keeps spaces and honours `\"` and `\\`,
 * a backslash outside quotes escapes the next character. No variables, globs or pipes: for those,
 * run a shell explicitly (`--exec "sh -c '…'"`).
 */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let in_word = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new AgentUsageError(`--exec has an unclosed ' in: ${line}`);
      word += line.slice(i + 1, end);
      in_word = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && (line[j + 1] === '"' || line[j + 1] === "\\")) j++;
        word += line[j];
      }
      if (j >= line.length) throw new AgentUsageError(`--exec has an unclosed " in: ${line}`);
      in_word = true;
      i = j;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      in_word = true;
    } else if (/\s/.test(c)) {
      if (in_word) words.push(word);
      word = "";
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push(word);
  return words;
}
