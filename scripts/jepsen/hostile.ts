/**
 * The hostile client: during a run it sends requests no well-behaved client would to random
 * nodes, bounded in rate and count, and records each one (kind, method, path, status). What it
 * sends is drawn from its own seeded stream (the run's seed), so a seed replays the same
 * requests and turning it off does not change the workload's choices.
 *
 * Kinds (`--hostile` selects them):
 *
 * - `deep`: a valid-looking job whose payload is 100,000 nested arrays (or 50,000 nested
 *   objects), alone or in a batch;
 * - `huge`: bodies just under and over MAX_BODY_BYTES (8 MB by default), payloads of 100,000
 *   keys or 200,000 array items, a batch of 20,000 jobs, strings of 1 MB in bounded fields;
 * - `types`: every field of a job with a wrong type (arrays for strings, objects for numbers,
 *   null, booleans), a top-level array, string, number or `null`, `__proto__` keys;
 * - `numbers`: extreme numbers (1e308, 1e999 written out, -0, 2^53 + 1, 5e-324, 400-digit
 *   integers) for every numeric field and in the payload;
 * - `unicode`: lone surrogates (escaped, and as raw CESU bytes), invalid UTF-8, NUL, a BOM,
 *   right-to-left marks, combining characters and emoji in names, keys, ids and headers;
 * - `dupkeys`: JSON text with duplicate keys (`type` once then cron, two payloads, ...);
 * - `content`: wrong, missing or lying content types and encodings (form, text, multipart,
 *   `Content-Encoding: gzip` on plain text), truncated and empty bodies;
 * - `paths`: random paths (traversal, encoded NUL, 8 KB segments, unknown routes), methods
 *   (PUT, PATCH, OPTIONS, HEAD, PROPFIND, ...) and query strings (negative, huge and repeated
 *   `limit`, garbage cursors, unknown `consistency`);
 * - `headers`: oversized headers (a 64 KB value, 200 headers), a 10 KB Idempotency-Key, an
 *   Authorization and a forged `X-Tickraft-Forwarded-By` header.
 *
 * It never names a real node in `/cluster/members/{id}` or `/cluster/transfer-leader` (those
 * would be real membership changes, which are the nemesis's business) and never uses a job id of
 * the workload. Jobs it manages to create point at the sink's `/hostile/` path, which is not a
 * delivery the checkers count.
 *
 * @module
 */
import { sfc32 } from "../../src/prng.ts";
import { sleep } from "../../tests/support/wait.ts";
import { PROXY_HEADER } from "./proxy.ts";

/** The kinds of hostile request. */
export type HostileKind =
  | "deep"
  | "huge"
  | "types"
  | "numbers"
  | "unicode"
  | "dupkeys"
  | "content"
  | "paths"
  | "headers";

/** Every kind `--hostile` accepts. */
export const ALL_HOSTILE: readonly HostileKind[] = [
  "deep",
  "huge",
  "types",
  "numbers",
  "unicode",
  "dupkeys",
  "content",
  "paths",
  "headers",
];

/** How much hostile traffic a run sends. */
export interface HostileOptions {
  kinds: readonly HostileKind[];
  /** Requests started per second, at most (they are sent one at a time). */
  rate_per_s: number;
  /** Requests in the whole run, at most. */
  max_requests: number;
}

/** The default: every kind, 4 requests a second, at most 400. */
export const DEFAULT_HOSTILE: HostileOptions = {
  kinds: ALL_HOSTILE,
  rate_per_s: 4,
  max_requests: 400,
};

/** One hostile request and what came back. */
export interface HostileRecord {
  at_ms: number;
  complete_ms: number;
  node: string;
  kind: HostileKind;
  /** What was sent, in a few words ("payload of 100000 nested arrays"). */
  what: string;
  method: string;
  /** The path and query, cut to 200 characters. */
  path: string;
  /** Bytes of the body sent. */
  body_bytes: number;
  /** The HTTP status, or null when no answer came (refused, reset, timed out). */
  status: number | null;
  /** Whether a 503 carried `Retry-After`. */
  retry_after?: boolean;
  /**
   * Set when the answer was made up by the harness's proxy (a black-holed or down leader that a
   * follower forwarded to), not by a node: what `X-Jepsen-Proxy` said.
   */
  proxy?: string;
  /** Why no answer came. */
  error?: string;
}

/** One request to send. */
interface HostileRequest {
  kind: HostileKind;
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
}

/** A hostile request gets this long to be answered. */
const HOSTILE_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();

/** Seeded choices. */
class Draw {
  readonly #random: () => number;

  constructor(seed: number) {
    this.#random = sfc32(seed);
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#random() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#random() * items.length)];
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }
}

/** What a job body looks like when every field is right, aimed at the sink's hostile path. */
function validJob(sink_url: string, d: Draw): Record<string, unknown> {
  return {
    type: "once",
    timestamp: new Date(Date.now() + d.int(3_600, 86_400) * 1_000).toISOString(),
    webhook_url: `${sink_url}/hostile/${d.int(0, 1_000_000)}`,
    name: `hostile-${d.int(0, 1_000_000)}`,
  };
}

const JOB_FIELDS = [
  "type",
  "name",
  "timestamp",
  "run_at",
  "cron_expression",
  "interval_seconds",
  "timezone",
  "starts_at",
  "last_date",
  "ends_at",
  "webhook_url",
  "method",
  "headers",
  "payload",
  "secret",
  "overlap_policy",
  "catchup_window_seconds",
  "max_attempts",
  "timeout_seconds",
  "idempotency_key",
] as const;

const NUMERIC_FIELDS = [
  "interval_seconds",
  "catchup_window_seconds",
  "max_attempts",
  "timeout_seconds",
] as const;

/** Numbers written out as JSON text (some are beyond what a double holds). */
const EXTREME_NUMBERS = [
  "1e308",
  "-1e308",
  "1e999",
  "-1e999",
  "-0",
  "0.0000000000000000000000001",
  "5e-324",
  "9007199254740993",
  "-9007199254740993",
  "1".repeat(400),
  "0." + "9".repeat(400),
  "1E+2",
  "123456789012345678901234567890e-10",
];

/** Strings with unicode edge cases, as JSON text (escapes kept as written). */
const UNICODE_JSON_STRINGS = [
  String.raw`"\ud800"`,
  String.raw`"\udfff\ud800"`,
  String.raw`"a\ud83d"`,
  String.raw`"\u0000\u0000"`,
  String.raw`"\ufeff\ufeffx"`,
  String.raw`"\u202e\u202dlive"`,
  JSON.stringify("e\u0301\u0301\u0301".repeat(50)),
  JSON.stringify("😀".repeat(100)),
  JSON.stringify("\u{10ffff}\u{e000}\uffff"),
  String.raw`"\uDBFF\uDFFF"`,
];

/** Bytes that are not UTF-8: CESU surrogates, overlong forms, stray continuation bytes. */
const INVALID_UTF8 = [
  [0xed, 0xa0, 0x80],
  [0xc0, 0x80],
  [0xff, 0xfe],
  [0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
];

const WRONG_TYPES = [`[]`, `{}`, `null`, `true`, `[1,2,3]`, `{"a":1}`, `""`, `0`, `-1`, `[null]`];

/** A job body as JSON text, with `field` given the raw JSON `value`. */
function jobWith(sink_url: string, d: Draw, field: string, value: string): string {
  const job = validJob(sink_url, d);
  delete job[field];
  const base = JSON.stringify(job);
  return `${base.slice(0, -1)},${JSON.stringify(field)}:${value}}`;
}

function nestedArrays(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

function nestedObjects(depth: number): string {
  return `{"a":`.repeat(depth) + "1" + "}".repeat(depth);
}

const JSON_TYPE = { "content-type": "application/json" };

function post(
  kind: HostileKind,
  what: string,
  path: string,
  body: string | Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = JSON_TYPE,
): HostileRequest {
  return { kind, what, method: "POST", path, headers, body };
}

function deep(sink_url: string, d: Draw): HostileRequest {
  const objects = d.chance(0.3);
  const depth = objects ? 50_000 : 100_000;
  const value = objects ? nestedObjects(depth) : nestedArrays(depth);
  const what = `payload of ${depth} nested ${objects ? "objects" : "arrays"}`;
  const job = jobWith(sink_url, d, "payload", value);
  return d.chance(0.7)
    ? post("deep", what, "/jobs", job)
    : post("deep", `${what}, in a batch`, "/jobs/batch", `{"jobs":[${job}]}`);
}

function huge(sink_url: string, d: Draw): HostileRequest {
  switch (d.int(0, 4)) {
    case 0: {
      const over = 8 * 1024 * 1024 + d.int(1, 1024);
      return post("huge", `${over} bytes, over MAX_BODY_BYTES`, "/jobs", "x".repeat(over));
    }
    case 1: {
      const keys = Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(",");
      return post(
        "huge",
        "payload of 100000 keys",
        "/jobs",
        jobWith(sink_url, d, "payload", `{${keys}}`),
      );
    }
    case 2: {
      const items = new Array(200_000).fill("0").join(",");
      return post(
        "huge",
        "payload of 200000 items",
        "/jobs",
        jobWith(sink_url, d, "payload", `[${items}]`),
      );
    }
    case 3: {
      const job = JSON.stringify({ ...validJob(sink_url, d), type: "nope" });
      const jobs = new Array(20_000).fill(job).join(",");
      return post("huge", "batch of 20000 invalid jobs", "/jobs/batch", `{"jobs":[${jobs}]}`);
    }
    default: {
      const field = d.pick(["name", "webhook_url", "cron_expression", "timezone", "secret"]);
      const text = JSON.stringify("y".repeat(1024 * 1024));
      return post("huge", `1 MB string in ${field}`, "/jobs", jobWith(sink_url, d, field, text));
    }
  }
}

function types(sink_url: string, d: Draw): HostileRequest {
  if (d.chance(0.2)) {
    const body = d.pick([
      `[]`,
      `"job"`,
      `42`,
      `null`,
      `[{"type":"once"}]`,
      `{"__proto__":{"type":"once"}}`,
    ]);
    const path = d.pick(["/jobs", "/jobs/batch", "/join", "/cluster/transfer-leader"]);
    return post("types", `top-level ${body.slice(0, 20)} to ${path}`, path, body);
  }
  if (d.chance(0.15)) {
    const body = d.pick([
      `{"jobs":{}}`,
      `{"jobs":"all"}`,
      `{"jobs":[1,2]}`,
      `{"jobs":null}`,
      `{"jobs":[[]]}`,
    ]);
    return post("types", `batch ${body}`, "/jobs/batch", body);
  }
  if (d.chance(0.1)) {
    // Wrong types to the cluster routes: never a string, so never a real node's name.
    const path = d.pick(["/join", "/cluster/transfer-leader"]);
    const body = d.pick([`{"to":1}`, `{"to":[]}`, `{"node_id":{},"address":1}`, `{"to":null}`]);
    return post("types", `${body} to ${path}`, path, body);
  }
  const field = d.pick(JOB_FIELDS);
  const value = d.pick(WRONG_TYPES);
  return post("types", `${field}: ${value}`, "/jobs", jobWith(sink_url, d, field, value));
}

function numbers(sink_url: string, d: Draw): HostileRequest {
  const value = d.pick(EXTREME_NUMBERS);
  if (d.chance(0.2)) {
    return post(
      "numbers",
      `payload ${value.slice(0, 20)}`,
      "/jobs",
      jobWith(sink_url, d, "payload", `{"n":${value},"m":[${value}]}`),
    );
  }
  if (d.chance(0.15)) {
    const interval =
      `{"type":"interval","interval_seconds":${value},"webhook_url":"${sink_url}/hostile/n"}`;
    return post("numbers", `interval_seconds ${value.slice(0, 20)}`, "/jobs", interval);
  }
  const field = d.pick(NUMERIC_FIELDS);
  return post(
    "numbers",
    `${field}: ${value.slice(0, 20)}`,
    "/jobs",
    jobWith(sink_url, d, field, value),
  );
}

function unicode(sink_url: string, d: Draw): HostileRequest {
  const roll = d.int(0, 4);
  if (roll === 0) {
    // Raw bytes that are not UTF-8, inside a string of an otherwise valid job.
    const bytes = d.pick(INVALID_UTF8);
    const [head, tail] = [`${jobWith(sink_url, d, "name", `"x`).slice(0, -1)}`, `"}`];
    const body = new Uint8Array([...encoder.encode(head), ...bytes, ...encoder.encode(tail)]);
    return post(
      "unicode",
      `invalid UTF-8 ${bytes.map((b) => b.toString(16))} in name`,
      "/jobs",
      body,
    );
  }
  const text = d.pick(UNICODE_JSON_STRINGS);
  if (roll === 1) {
    const payload = `{${text}:${text},"list":[${text},${text}]}`;
    return post(
      "unicode",
      `${text.slice(0, 24)} as payload key and value`,
      "/jobs",
      jobWith(sink_url, d, "payload", payload),
    );
  }
  if (roll === 2) {
    const field = d.pick([
      "name",
      "idempotency_key",
      "timezone",
      "cron_expression",
      "type",
      "webhook_url",
    ]);
    return post(
      "unicode",
      `${text.slice(0, 24)} in ${field}`,
      "/jobs",
      jobWith(sink_url, d, field, text),
    );
  }
  if (roll === 3) {
    const id = d.pick(["%ED%A0%80", "%F0%9F%98%80", "%EF%BB%BF", "%E2%80%AE", "%C0%80", "%00"]);
    const path = `/jobs/${id}${d.pick(["", "/cancel", "/status", "/executions", "/trigger"])}`;
    const method = path.endsWith("/cancel") || path.endsWith("/trigger") ? "POST" : "GET";
    return {
      kind: "unicode",
      what: `id ${id}`,
      method,
      path,
      headers: JSON_TYPE,
      body: method === "POST" ? "{}" : undefined,
    };
  }
  const headers = {
    ...JSON_TYPE,
    "idempotency-key": d.pick(["\u00ff\u00fe", "%ED%A0%80", "\u00e9t\u00e9"]),
  };
  return post(
    "unicode",
    "latin-1 and escaped bytes in Idempotency-Key",
    "/jobs",
    JSON.stringify(validJob(sink_url, d)),
    headers,
  );
}

function dupkeys(sink_url: string, d: Draw): HostileRequest {
  const job = JSON.stringify(validJob(sink_url, d)).slice(1, -1);
  const extra = d.pick([
    `"type":"cron"`,
    `"type":"once","type":[]`,
    `"payload":1,"payload":{"a":1,"a":2}`,
    `"webhook_url":"http://127.0.0.1:1/","webhook_url":"ftp://x"`,
    `"timestamp":"2000-01-01T00:00:00Z"`,
    `"__proto__":{"max_attempts":999},"constructor":{"prototype":{"x":1}}`,
    `"idempotency_key":"a","idempotency_key":"b"`,
  ]);
  const first = d.chance(0.5);
  const body = first ? `{${extra},${job}}` : `{${job},${extra}}`;
  return post(
    "dupkeys",
    `duplicate keys ${extra.slice(0, 40)}`,
    d.chance(0.8) ? "/jobs" : "/jobs/batch",
    d.chance(0.8) ? body : `{"jobs":[${body}],"jobs":[]}`,
  );
}

function content(sink_url: string, d: Draw): HostileRequest {
  const job = JSON.stringify(validJob(sink_url, d));
  switch (d.int(0, 6)) {
    case 0:
      return post("content", "no content type", "/jobs", encoder.encode(job), {});
    case 1: {
      const type = d.pick([
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json; charset=utf-16",
        "application/jsonx",
        "application/json;;;=",
        "*/*",
        "application/xml",
      ]);
      return post("content", `content type ${type}`, "/jobs", job, { "content-type": type });
    }
    case 2:
      return post("content", "gzip encoding on plain JSON", "/jobs", job, {
        ...JSON_TYPE,
        "content-encoding": "gzip",
      });
    case 3:
      return post("content", "form body as JSON", "/jobs", "type=once&timestamp=now", JSON_TYPE);
    case 4:
      return post("content", "truncated JSON", "/jobs", job.slice(0, d.int(1, job.length - 1)));
    case 5:
      return post("content", "empty body", d.pick(["/jobs", "/jobs/batch", "/jobs/x/cancel"]), "");
    default:
      return post("content", "JSON then garbage", "/jobs", `${job} {"type":"cron"}`);
  }
}

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "FOO"];

function paths(d: Draw): HostileRequest {
  const method = d.pick(METHODS);
  const path = d.pick([
    "/jobs/../../etc/passwd",
    "/jobs/%2e%2e/%2e%2e/health",
    "/jobs/%00",
    `/jobs/${"a".repeat(8_192)}`,
    "/jobs//cancel",
    "/jobs/x/y/z/w",
    "/JOBS",
    "/jobs/batch/batch",
    "/raft/append",
    "/raft/vote",
    `/raft/${d.int(0, 99)}`,
    "/console/jobs/%ff",
    "/metrics/x",
    "/debug/cluster/../cluster",
    "/cluster/members/",
    "/cluster/members/%00",
    `/${d.int(0, 1_000_000)}`,
    "/openapi.json?x=1",
    "//jobs",
    "/jobs?",
  ]);
  const query = d.pick([
    "",
    "?limit=-1",
    "?limit=1e309",
    "?limit=99999999999999999999999",
    "?limit=abc&limit=2",
    "?cursor=%ff%fe%00",
    `?cursor=${"z".repeat(4_096)}`,
    "?consistency=bogus",
    "?consistency=linearizable&consistency=local",
    "?status=__proto__&type=constructor",
    "?%00=%00",
    "?a[b][c][d]=1",
    `?${Array.from({ length: 500 }, (_, i) => `q${i}=${i}`).join("&")}`,
  ]);
  const withBody = method !== "GET" && method !== "HEAD";
  return {
    kind: "paths",
    what: `${method} ${path.slice(0, 40)}${query.slice(0, 40)}`,
    method,
    path: path + query,
    headers: JSON_TYPE,
    body: withBody ? d.pick(["{}", "[]", "null", "x"]) : undefined,
  };
}

function headers(sink_url: string, d: Draw): HostileRequest {
  const job = JSON.stringify(validJob(sink_url, d));
  switch (d.int(0, 4)) {
    case 0:
      return post("headers", "64 KB header value", "/jobs", job, {
        ...JSON_TYPE,
        "x-big": "v".repeat(64 * 1024),
      });
    case 1: {
      const many: Record<string, string> = { ...JSON_TYPE };
      for (let i = 0; i < 200; i++) many[`x-h${i}`] = "v".repeat(100);
      return post("headers", "200 headers", "/jobs", job, many);
    }
    case 2:
      return post("headers", "10 KB Idempotency-Key", "/jobs", job, {
        ...JSON_TYPE,
        "idempotency-key": "k".repeat(10 * 1024),
      });
    case 3:
      return post("headers", "forged X-Tickraft-Forwarded-By", "/jobs", job, {
        ...JSON_TYPE,
        "x-tickraft-forwarded-by": d.pick(["n1", "x".repeat(2_000), "", "n1,n2,n3"]),
      });
    default:
      return {
        kind: "headers",
        what: "Authorization and Cookie garbage",
        method: d.pick(["GET", "POST"]),
        path: d.pick(["/jobs", "/console", "/raft/append"]),
        headers: {
          ...JSON_TYPE,
          authorization: `Bearer ${"a".repeat(4_000)}`,
          cookie: `session=${"%".repeat(1_000)}`,
        },
      };
  }
}

/** The next hostile request of `kind`. */
function request(kind: HostileKind, sink_url: string, d: Draw): HostileRequest {
  switch (kind) {
    case "deep":
      return deep(sink_url, d);
    case "huge":
      return huge(sink_url, d);
    case "types":
      return types(sink_url, d);
    case "numbers":
      return numbers(sink_url, d);
    case "unicode":
      return unicode(sink_url, d);
    case "dupkeys":
      return dupkeys(sink_url, d);
    case "content":
      return content(sink_url, d);
    case "paths":
      return paths(d);
    case "headers":
      return headers(sink_url, d);
  }
}

/** What the hostile client needs from the run. */
export interface HostileContext {
  seed: number;
  now: () => number;
  /** Node names and their client URLs. */
  urls: Map<string, string>;
  sink_url: string;
  records: HostileRecord[];
  /** The client stops at this run time. */
  end_ms: number;
}

/** Sends one request and records it. */
async function sendOne(
  ctx: HostileContext,
  node: string,
  req: HostileRequest,
): Promise<HostileRecord> {
  const body_bytes = req.body === undefined
    ? 0
    : typeof req.body === "string"
    ? encoder.encode(req.body).byteLength
    : req.body.byteLength;
  const record: HostileRecord = {
    at_ms: ctx.now(),
    complete_ms: 0,
    node,
    kind: req.kind,
    what: req.what.slice(0, 120),
    method: req.method,
    path: req.path.slice(0, 200),
    body_bytes,
    status: null,
  };
  try {
    const res = await fetch(`${ctx.urls.get(node)!}${req.path}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(HOSTILE_TIMEOUT_MS),
    });
    await res.body?.cancel();
    record.status = res.status;
    if (res.status === 503) record.retry_after = res.headers.has("retry-after");
    const made_up = res.headers.get(PROXY_HEADER);
    if (made_up !== null) record.proxy = made_up;
  } catch (error) {
    record.error = String(error).slice(0, 200);
  }
  record.complete_ms = ctx.now();
  ctx.records.push(record);
  return record;
}

/** Hostile requests waiting for an answer at once, at most (a hung node holds a few). */
const HOSTILE_INFLIGHT_MAX = 4;

/**
 * Sends hostile requests to random nodes until `ctx.end_ms` or `opts.max_requests`, starting at
 * most `opts.rate_per_s` a second with at most {@link HOSTILE_INFLIGHT_MAX} unanswered; returns
 * once every one is answered or timed out.
 */
export async function runHostile(ctx: HostileContext, opts: HostileOptions): Promise<void> {
  if (opts.kinds.length === 0 || opts.max_requests <= 0 || opts.rate_per_s <= 0) return;
  // Its own stream: the workload's and the nemesis's choices stay the same with it on or off.
  const d = new Draw(ctx.seed ^ 0x5bd1e995);
  const nodes = [...ctx.urls.keys()];
  const gap_ms = 1_000 / opts.rate_per_s;
  const inflight = new Set<Promise<unknown>>();
  for (let sent = 0; sent < opts.max_requests && ctx.now() < ctx.end_ms; sent++) {
    const started = ctx.now();
    if (inflight.size >= HOSTILE_INFLIGHT_MAX) await Promise.race(inflight);
    const kind = d.pick(opts.kinds);
    const one: Promise<unknown> = sendOne(ctx, d.pick(nodes), request(kind, ctx.sink_url, d))
      .finally(() => inflight.delete(one));
    inflight.add(one);
    const wait = gap_ms - (ctx.now() - started);
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(inflight);
}

/** Parses `--hostile`: `off`, `all`, or comma-separated kinds. */
export function parseHostileKinds(text: string): HostileKind[] {
  if (text === "off" || text === "none") return [];
  if (text === "all" || text === "on") return [...ALL_HOSTILE];
  const kinds = text.split(",").filter((k) => k !== "");
  for (const k of kinds) {
    if (!ALL_HOSTILE.includes(k as HostileKind)) {
      throw new Error(`--hostile: ${k} is not one of ${ALL_HOSTILE.join(", ")} (or off, all)`);
    }
  }
  return kinds as HostileKind[];
}
