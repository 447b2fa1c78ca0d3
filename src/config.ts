/**
 * Node configuration from flags and environment variables, validated at start.
 *
 * Every setting is declared once in `SETTINGS`: its environment variable (the seed scheduler's
 * names where it had one), its flag, its default and its help text. `--help` and the README's
 * configuration table are produced from, or checked against, this one list.
 */
import { parseArgs } from "node:util";
import { z } from "zod";

/** Parses "250ms", "10s", "5m", "2h", "30d" or a bare number of seconds into milliseconds. */
export function parseDurationMs(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (match === null) {
    throw new Error(`"${text}" is not a duration: use a number with ms, s, m, h or d (e.g. 30s)`);
  }
  const factor_ms = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (match[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"
  ];
  return Math.round(Number(match[1]) * factor_ms);
}

/** Parses "500MB", "2GB", "1024KiB" or a bare number of bytes. */
export function parseBytes(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(text);
  if (match === null) {
    throw new Error(`"${text}" is not a size: use a number with B, KB, MB or GB (e.g. 512MB)`);
  }
  const unit = (match[2] ?? "b").toLowerCase().replace(/b$/, "").replace(/i$/, "");
  const power = { "": 0, k: 1, m: 2, g: 3, t: 4 }[unit as "" | "k" | "m" | "g" | "t"];
  return Math.round(Number(match[1]) * 1024 ** power);
}

const duration = z.string().transform((text, ctx) => {
  try {
    return parseDurationMs(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const bytes = z.string().transform((text, ctx) => {
  try {
    return parseBytes(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const positiveInt = z.coerce.number().int().positive();
const logLevel = z.string().transform((text) => text.toLowerCase()).pipe(
  z.enum(["debug", "info", "warn", "error"]),
);
const port = z.coerce.number().int().min(0).max(65_535);
const secretList = z.string().transform((text) =>
  text.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
);
const tokenList = secretList.pipe(z.array(
  z.string().regex(
    /^[A-Za-z0-9._~+/-]{16,}=*$/,
    "use tokens of 16+ characters among A-Z a-z 0-9 - . _ ~ + / (e.g. openssl rand -hex 32)",
  ),
));
const boolean = z.string().transform((text) => text.toLowerCase()).pipe(
  z.enum(["true", "false"], { error: "use true or false" }),
).transform((text) => text === "true");

interface Setting {
  env: string;
  flag: string;
  default: string;
  help: string;
  schema: z.ZodType;
}

/** Every configuration setting: environment variable, flag, default and meaning. */
export const SETTINGS = {
  node_id: {
    env: "NODE_ID",
    flag: "node-id",
    default: "node-1",
    help: "Unique node identifier",
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "use 1-64 letters, digits, . _ or -"),
  },
  host: {
    env: "HTTP_HOST",
    flag: "host",
    default: "0.0.0.0",
    help: "Address the HTTP server listens on",
    schema: z.string().min(1),
  },
  http_port: {
    env: "HTTP_PORT",
    flag: "http-port",
    default: "8080",
    help: "HTTP API port (0 picks a free port)",
    schema: port,
  },
  data_dir: {
    env: "DATA_DIR",
    flag: "data-dir",
    default: "./data",
    help: "Folder of the node's libSQL file",
    schema: z.string().min(1),
  },
  log_level: {
    env: "LOG_LEVEL",
    flag: "log-level",
    default: "INFO",
    help: "DEBUG, INFO, WARN or ERROR",
    schema: logLevel,
  },
  execution_timeout_ms: {
    env: "JOB_EXECUTION_TIMEOUT",
    flag: "job-execution-timeout",
    default: "5m",
    help: "Timeout of one webhook attempt (default for jobs without timeout_seconds)",
    schema: duration,
  },
  max_attempts: {
    env: "MAX_EXECUTION_ATTEMPTS",
    flag: "max-execution-attempts",
    default: "3",
    help: "Attempts per occurrence, first one included (default for jobs without max_attempts)",
    schema: positiveInt,
  },
  retry_backoff_base_ms: {
    env: "RETRY_BACKOFF_BASE",
    flag: "retry-backoff-base",
    default: "1s",
    help: "First retry delay; doubles per attempt, with jitter",
    schema: duration,
  },
  retry_backoff_max_ms: {
    env: "RETRY_BACKOFF_MAX",
    flag: "retry-backoff-max",
    default: "5m",
    help: "Longest retry delay",
    schema: duration,
  },
  history_retention_ms: {
    env: "EXECUTION_HISTORY_RETENTION",
    flag: "execution-history-retention",
    default: "30d",
    help: "How long finished executions are kept",
    schema: duration,
  },
  history_per_job: {
    env: "EXECUTION_HISTORY_PER_JOB",
    flag: "execution-history-per-job",
    default: "100",
    help: "Most executions kept per job (oldest pruned first)",
    schema: positiveInt,
  },
  queue_job_limit: {
    env: "QUEUE_JOB_LIMIT",
    flag: "queue-job-limit",
    default: "100000",
    help: "Most jobs stored; creates beyond it get 507",
    schema: positiveInt,
  },
  queue_memory_limit_bytes: {
    env: "QUEUE_MEMORY_LIMIT",
    flag: "queue-memory-limit",
    default: "",
    help: "Resident memory above which creates get 507 (e.g. 2GB); empty: QUEUE_MEMORY_PERCENT",
    schema: z.union([z.literal("").transform(() => null), bytes]),
  },
  queue_memory_percent: {
    env: "QUEUE_MEMORY_PERCENT",
    flag: "queue-memory-percent",
    default: "50",
    help: "Share of system memory used as the limit when QUEUE_MEMORY_LIMIT is empty",
    schema: z.coerce.number().min(1).max(100),
  },
  max_inflight_deliveries: {
    env: "MAX_INFLIGHT_DELIVERIES",
    flag: "max-inflight-deliveries",
    default: "256",
    help: "Most webhook calls in flight at once; due work waits beyond it",
    schema: positiveInt,
  },
  catchup_window_ms: {
    env: "DEFAULT_CATCHUP_WINDOW",
    flag: "default-catchup-window",
    default: "1h",
    help: "An occurrence missed by less than this fires once late; older ones are recorded missed",
    schema: duration,
  },
  health_failure_threshold: {
    env: "HEALTH_FAILURE_THRESHOLD",
    flag: "health-failure-threshold",
    default: "0.1",
    help: "Share of failed webhook attempts (last 1,000) above which /health says degraded",
    schema: z.coerce.number().min(0).max(1),
  },
  webhook_secrets: {
    env: "WEBHOOK_SECRET",
    flag: "webhook-secret",
    default: "",
    help: "HMAC-SHA256 signing secret(s), comma-separated for rotation; empty: unsigned",
    schema: secretList,
  },
  webhook_deny_private: {
    env: "WEBHOOK_DENY_PRIVATE",
    flag: "webhook-deny-private",
    default: "false",
    help: "true: refuse webhook targets in loopback, private and link-local ranges (after DNS)",
    schema: boolean,
  },
  worker_ttl_ms: {
    env: "WORKER_TTL",
    flag: "worker-ttl",
    default: "15s",
    help: "A worker not heard from this long is marked lost; its allocations are placed again",
    schema: duration,
  },
  inprogress_timeout_ms: {
    env: "JOB_INPROGRESS_TIMEOUT",
    flag: "job-inprogress-timeout",
    default: "5m",
    help: "Lease of a worker job's allocation (to start, then to finish) unless lease_seconds",
    schema: duration,
  },
  placement_strategy: {
    env: "PLACEMENT_STRATEGY",
    flag: "placement-strategy",
    default: "binpack",
    help: "Placement of worker jobs without a strategy: binpack, spread (least used) or random",
    schema: z.enum(["binpack", "spread", "random"]),
  },
  max_body_bytes: {
    env: "MAX_BODY_BYTES",
    flag: "max-body-bytes",
    default: "8MB",
    help: "Largest request body; larger ones get 413",
    schema: bytes,
  },
  batch_max_jobs: {
    env: "BATCH_MAX_JOBS",
    flag: "batch-max-jobs",
    default: "10000",
    help: "Most jobs in one POST /jobs/batch",
    schema: positiveInt,
  },
  input_depth_max: {
    env: "INPUT_MAX_DEPTH",
    flag: "input-max-depth",
    default: "64",
    help: "Deepest nesting of arrays and objects in payload or any JSON field; deeper gets 400",
    schema: positiveInt,
  },
  input_keys_max: {
    env: "INPUT_MAX_KEYS",
    flag: "input-max-keys",
    default: "10000",
    help: "Most keys in one JSON object of a request body; more gets 400",
    schema: positiveInt,
  },
  input_items_max: {
    env: "INPUT_MAX_ITEMS",
    flag: "input-max-items",
    default: "100000",
    help: "Most items in one JSON array inside a job's field; more gets 400",
    schema: positiveInt,
  },
  input_string_chars_max: {
    env: "INPUT_MAX_STRING",
    flag: "input-max-string",
    default: "65536",
    help: "Longest JSON string (key or value, in UTF-16 units) in a request body; longer gets 413",
    schema: positiveInt,
  },
  payload_bytes_max: {
    env: "INPUT_MAX_PAYLOAD",
    flag: "input-max-payload",
    default: "256KiB",
    help: "Largest payload of a job, as compact JSON in UTF-8; larger gets 413",
    schema: bytes,
  },
  headers_bytes_max: {
    env: "INPUT_MAX_HEADERS",
    flag: "input-max-headers",
    default: "16KiB",
    help: "Largest headers object of a job, as compact JSON in UTF-8; larger gets 413",
    schema: bytes,
  },
  query_bytes_max: {
    env: "INPUT_MAX_QUERY",
    flag: "input-max-query",
    default: "4KiB",
    help: "Longest query string of a /jobs request; longer gets 400",
    schema: bytes,
  },
  api_tokens_admin: {
    env: "API_TOKENS_ADMIN",
    flag: "api-tokens-admin",
    default: "",
    help: "API bearer tokens allowed every call, comma-separated; both lists empty: no auth",
    schema: tokenList,
  },
  api_tokens_read: {
    env: "API_TOKENS_READ",
    flag: "api-tokens-read",
    default: "",
    help: "API bearer tokens allowed GET and HEAD only (writes get 403), comma-separated",
    schema: tokenList,
  },
  auth_open_health: {
    env: "AUTH_OPEN_HEALTH",
    flag: "auth-open-health",
    default: "true",
    help: "true: /health, /ready and /metrics answer without a token; false: they need one too",
    schema: boolean,
  },
  commit_batch_max: {
    env: "COMMIT_BATCH_MAX",
    flag: "commit-batch-max",
    default: "20000",
    help: "Most commands written in one group commit (one transaction, one fsync)",
    schema: positiveInt,
  },
  proposal_queue_max: {
    env: "PROPOSAL_QUEUE_MAX",
    flag: "proposal-queue-max",
    default: "100000",
    help: "Most commands waiting for a commit; writes beyond it get 503",
    schema: positiveInt,
  },
  peers: {
    env: "CLUSTER_NODES",
    flag: "peers",
    default: "",
    help: "Static cluster members as name=url,name=url (this node included); empty: one node alone",
    schema: z.string(),
  },
  discovery_strategy: {
    env: "DISCOVERY_STRATEGY",
    flag: "discovery-strategy",
    default: "auto",
    help:
      "auto, static, fly or dns (auto: static with CLUSTER_NODES, fly on Fly.io, else one node)",
    schema: z.enum(["auto", "static", "fly", "dns"]),
  },
  dns_service: {
    env: "DNS_SERVICE",
    flag: "dns-service",
    default: "",
    help: "Headless Service FQDN for dns discovery, or _<port>._tcp.<service> for SRV records",
    schema: z.string(),
  },
  bootstrap_expect: {
    env: "BOOTSTRAP_EXPECT",
    flag: "bootstrap-expect",
    default: "3",
    help: "Nodes fly/dns discovery must see before a new cluster bootstraps",
    schema: positiveInt,
  },
  discovery_wait_ms: {
    env: "DISCOVERY_WAIT",
    flag: "discovery-wait",
    default: "2m",
    help: "How long a booting node retries discovery before it gives up",
    schema: duration,
  },
  cluster_secret: {
    env: "CLUSTER_SECRET",
    flag: "cluster-secret",
    default: "",
    help: "Shared secret that authenticates Raft traffic between nodes (16+ chars; cluster only)",
    schema: z.string().refine((v) => v === "" || v.length >= 16, "use at least 16 characters"),
  },
  advertise_url: {
    env: "ADVERTISE_URL",
    flag: "advertise-url",
    default: "",
    help: "URL other nodes reach this node at; empty: its entry in CLUSTER_NODES",
    schema: z.string(),
  },
  join_url: {
    env: "JOIN_URL",
    flag: "join",
    default: "",
    help: "URL of a cluster member to join through (POST /join) when this node has no Raft state",
    schema: z.string(),
  },
  raft_tick_ms: {
    env: "RAFT_TICK",
    flag: "raft-tick",
    default: "100ms",
    help: "Raft clock period; heartbeats and election timeouts count in ticks",
    schema: duration,
  },
  raft_election_ticks: {
    env: "RAFT_ELECTION_TICKS",
    flag: "raft-election-ticks",
    default: "10",
    help: "Election timeout in ticks (randomized up to twice this)",
    schema: z.coerce.number().int().min(3),
  },
  raft_heartbeat_ticks: {
    env: "RAFT_HEARTBEAT_TICKS",
    flag: "raft-heartbeat-ticks",
    default: "1",
    help: "Heartbeat interval in ticks",
    schema: positiveInt,
  },
  snapshot_entries: {
    env: "SNAPSHOT_ENTRIES",
    flag: "snapshot-entries",
    default: "20000",
    help: "Log entries applied between two snapshots (the log is compacted up to a snapshot)",
    schema: positiveInt,
  },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
/** The validated configuration of one node. */
export type Config = { [K in keyof Settings]: z.output<Settings[K]["schema"]> };

/** A configuration error: the message names the variable or flag and what to fix. */
export class ConfigError extends Error {}

/** Text of `--help`. */
export function helpText(): string {
  const lines = [
    "tickraft: a Raft-replicated job scheduler",
    "",
    "Usage: tickraft [serve] [flags]",
    "",
    "Every flag can also be set by its environment variable; flags win.",
    "",
  ];
  for (const s of Object.values(SETTINGS) as Setting[]) {
    const def = s.default === "" ? "" : ` (default ${s.default})`;
    lines.push(`  --${s.flag.padEnd(30)} ${s.env.padEnd(28)} ${s.help}${def}`);
  }
  lines.push(`  --${"help".padEnd(30)} ${"".padEnd(28)} Print this text`);
  return lines.join("\n");
}

/** Result of reading the command line: either the help text was asked for, or a config. */
export type LoadResult = { help: true } | { help: false; config: Config };

/**
 * Reads flags (win) and environment variables (`env`), applies defaults and validates.
 * Throws `ConfigError` whose message lists every bad setting.
 */
export function loadConfig(args: string[], env: Record<string, string | undefined>): LoadResult {
  const options: Record<string, { type: "string" } | { type: "boolean" }> = {
    help: { type: "boolean" },
  };
  for (const s of Object.values(SETTINGS) as Setting[]) options[s.flag] = { type: "string" };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; run with --help for the flags`);
  }
  if (parsed.values.help === true) return { help: true };
  const extra = parsed.positionals.filter((p) => p !== "serve");
  if (extra.length > 0) {
    throw new ConfigError(`unknown command "${extra[0]}"; run with --help for usage`);
  }
  const config: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting][]) {
    const fromFlag = parsed.values[s.flag];
    const raw = typeof fromFlag === "string" ? fromFlag : env[s.env] ?? s.default;
    const result = s.schema.safeParse(raw);
    if (result.success) config[key] = result.data;
    else {
      const where = typeof fromFlag === "string" ? `--${s.flag}` : s.env;
      problems.push(`${where}="${raw}": ${result.error.issues.map((i) => i.message).join("; ")}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join(", ")}`);
  return { help: false, config: config as Config };
}

/** The defaults, for tests and embedding; `overrides` replace single values. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  const result = loadConfig([], {});
  if (result.help) throw new Error("unreachable");
  return { ...result.config, ...overrides };
}
