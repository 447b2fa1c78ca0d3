/**
 * Webhook delivery: sends one attempt of one execution and reports what happened. It holds no
 * scheduling state: retries, backoff timing and recording outcomes belong to the caller, which
 * passes the results through the replicated log. The wire contract is documented in
 * `docs/webhooks.md`.
 *
 * @example
 * ```ts
 * const result = await deliver({
 *   job_id: "job-1", execution_id: "exec-1", scheduled_at_ms: Date.UTC(2026, 0, 1), attempt: 1,
 *   redelivery: false, payload: { hello: "world" }, url: "http://127.0.0.1:8080/hook",
 *   method: "POST", headers: {}, secrets: ["s3cret"], timeout_ms: 10_000,
 * }, { clock: systemClock });
 * if (!result.ok && result.retryable) {
 *   const delay_ms = backoffDelayMs(1, { base_ms: 1_000, max_ms: 60_000 }, Math.random());
 * }
 * ```
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import type { Clock } from "../clock.ts";

/**
 * Why an attempt failed: the classes of the reference scheduler, and `denied` for a target that
 * `WEBHOOK_DENY_PRIVATE` refuses (never retried).
 */
export type ErrorClass = "timeout" | "connection_error" | "dns_error" | "http_error" | "denied";

/** HTTP methods a job may use. GET and DELETE carry no body. */
export type WebhookMethod = "POST" | "PUT" | "PATCH" | "GET" | "DELETE";

/** One attempt to deliver one execution of a job. */
export interface DeliveryRequest {
  job_id: string;
  execution_id: string;
  /** The occurrence this execution belongs to, in Unix milliseconds. */
  scheduled_at_ms: number;
  /** 1 for the first attempt of an execution, 2 for its first retry, and so on. */
  attempt: number;
  /** True when re-sent after a crash or failover for the same attempt. */
  redelivery: boolean;
  /** The job's JSON payload; `undefined` is sent as `null`. */
  payload: unknown;
  url: string;
  method: WebhookMethod;
  /** Extra headers from the job; reserved names (see {@link isReservedHeader}) are dropped. */
  headers: Record<string, string>;
  /** HMAC secrets; the request is signed with each (rotation). Empty: unsigned. */
  secrets: string[];
  /** Limit for the whole attempt: connect, send, response headers and the body excerpt. */
  timeout_ms: number;
}

/** The outcome of one attempt. */
export interface DeliveryResult {
  /** True for a 2xx response. */
  ok: boolean;
  /** The response status, or null when no response arrived. */
  status_code: number | null;
  /** Null on success and when aborted by the caller. */
  error_class: ErrorClass | null;
  /** A human-readable reason, or null on success. */
  error: string | null;
  /** Whether another attempt may succeed; see `docs/webhooks.md` for the rule. */
  retryable: boolean;
  /** True when the caller's signal stopped the attempt (replace policy, shutdown). */
  aborted: boolean;
  duration_ms: number;
  /** The first ≤ 512 characters of the response body, or null when no response arrived. */
  response_excerpt: string | null;
}

/** Options of {@link deliver}. */
export interface DeliverOptions {
  /** Source of the signature timestamp, the duration and the timeout timer. */
  clock: Clock;
  /** Aborting it stops the attempt; the result then has `aborted: true`. */
  signal?: AbortSignal;
  /** Substitute for the global `fetch` (tests). */
  fetch?: typeof fetch;
  /**
   * `WEBHOOK_DENY_PRIVATE`: refuse targets whose address (a literal, or every address the name
   * resolves to now) is in a range {@link deniedAddressRange} names; an http target is then
   * connected to the address that was checked. Off by default.
   */
  deny_private?: boolean;
  /** Resolves a host name to its addresses when `deny_private` is on; the system resolver by default. */
  resolve?: (hostname: string) => Promise<string[]>;
}

/** Version reported in the `User-Agent` header. */
export const TICKRAFT_VERSION = "0.1.0";

/** Characters of the response body kept in {@link DeliveryResult.response_excerpt}. */
export const RESPONSE_EXCERPT_MAX_CHARS = 512;

/** Bytes of a response body read (and mostly discarded) before the rest is cancelled. */
export const RESPONSE_DRAIN_MAX_BYTES = 64 * 1024;

/** Bytes that always hold at least {@link RESPONSE_EXCERPT_MAX_CHARS} complete UTF-8 characters. */
const EXCERPT_MAX_BYTES = RESPONSE_EXCERPT_MAX_CHARS * 4;

const ERROR_MAX_CHARS = 512;

/** Ports the Fetch standard (and Deno's fetch) refuses to connect to. */
const BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1,
  7,
  9,
  11,
  13,
  15,
  17,
  19,
  20,
  21,
  22,
  23,
  25,
  37,
  42,
  43,
  53,
  69,
  77,
  79,
  87,
  95,
  101,
  102,
  103,
  104,
  109,
  110,
  111,
  113,
  115,
  117,
  119,
  123,
  135,
  137,
  139,
  143,
  161,
  179,
  389,
  427,
  465,
  512,
  513,
  514,
  515,
  526,
  530,
  531,
  532,
  540,
  548,
  554,
  556,
  563,
  587,
  601,
  636,
  989,
  990,
  993,
  995,
  1719,
  1720,
  1723,
  2049,
  3659,
  4045,
  4190,
  5060,
  5061,
  6000,
  6566,
  6665,
  6666,
  6667,
  6668,
  6669,
  6679,
  6697,
  10080,
]);

/** Headers Tickraft sets itself, lower-cased; a job cannot set or override them. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "user-agent",
  "idempotency-key",
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
]);

/** Methods sent without a body. */
const BODYLESS_METHODS: ReadonlySet<WebhookMethod> = new Set(["GET", "DELETE"]);

/** Failure texts of Deno's fetch (hyper / getaddrinfo) that mean name resolution failed. */
const DNS_FAILURE =
  /dns error|getaddrinfo|failed to lookup address|name or service not known|nodename nor servname|temporary failure in name resolution|no address associated with hostname/i;

const encoder = new TextEncoder();

/**
 * The idempotency key of an occurrence: the same for every attempt and every redelivery of
 * that occurrence, different for every other occurrence.
 */
export function idempotencyKey(job_id: string, scheduled_at_ms: number): string {
  return `${job_id}:${scheduled_at_ms}`;
}

/** True for header names (any case) that a job may not set: Tickraft's own and framing ones. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED_HEADERS.has(lower) || lower.startsWith("x-tickraft-");
}

/**
 * Why a URL cannot be a webhook target, or null when it can: it must parse, use http or https
 * and avoid the ports fetch blocks. The API can use it to reject a job at creation time.
 */
export function webhookUrlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `invalid URL: ${url}`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `unsupported URL scheme: ${parsed.protocol}`;
  }
  if (parsed.port !== "" && BLOCKED_PORTS.has(Number(parsed.port))) {
    return `port ${parsed.port} is blocked by fetch`;
  }
  return null;
}

/** The setting that turns the private-range check on, named in its messages. */
const DENY_SETTING = "WEBHOOK_DENY_PRIVATE";
const DENY_HINT =
  `refused by ${DENY_SETTING}=true, which keeps webhooks out of loopback, private and link-local networks: use a public address, or turn ${DENY_SETTING} off on a node whose users may reach its network`;

/** Denied IPv4 ranges: base address, prefix length, what it is. */
const DENIED_V4: readonly (readonly [string, number, string])[] = [
  ["0.0.0.0", 8, "unspecified, this network"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "carrier-grade NAT"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved, broadcast"],
];

/** Denied IPv6 ranges (after the forms that embed an IPv4 address are unwrapped). */
const DENIED_V6: readonly (readonly [string, number, string])[] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["100::", 64, "discard-only"],
  ["2001:db8::", 32, "documentation"],
  ["3fff::", 20, "documentation"],
  ["fc00::", 7, "unique-local"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "site-local"],
  ["ff00::", 8, "multicast"],
];

/** IPv6 forms that carry an IPv4 address: prefix, prefix length, the word it starts at. */
const EMBEDDING_V6: readonly (readonly [string, number, number, string])[] = [
  ["::ffff:0:0", 96, 6, "IPv4-mapped"],
  ["::", 96, 6, "IPv4-compatible"],
  ["64:ff9b::", 96, 6, "NAT64"],
  ["2002::", 16, 1, "6to4"],
];

/** A dotted-quad IPv4 address as an unsigned 32-bit number, or null. */
function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

/** An IPv6 address (any textual form, dotted IPv4 tail allowed) as eight 16-bit words, or null. */
function parseIPv6(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string, v4_tail: boolean): number[] | null => {
    if (part === "") return [];
    const groups = part.split(":");
    const words: number[] = [];
    for (const [i, group] of groups.entries()) {
      const v4 = v4_tail && i === groups.length - 1 ? parseIPv4(group) : null;
      if (v4 !== null) words.push(Math.floor(v4 / 65_536), v4 % 65_536);
      else if (/^[0-9a-f]{1,4}$/i.test(group)) words.push(parseInt(group, 16));
      else return null;
    }
    return words;
  };
  const head = parse(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? parse(halves[1], true) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  if (head.length + tail.length > 7) return null;
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

function inV4(address: number, base: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(address / size) === Math.floor(parseIPv4(base)! / size);
}

function inV6(words: number[], base: string, prefix: number): boolean {
  const base_words = parseIPv6(base)!;
  for (let bit = 0; bit < prefix; bit += 16) {
    const bits = Math.min(16, prefix - bit);
    const shift = 16 - bits;
    if (words[bit / 16] >> shift !== base_words[bit / 16] >> shift) return false;
  }
  return true;
}

function v4Text(address: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".");
}

function deniedV4(address: number): string | null {
  for (const [base, prefix, what] of DENIED_V4) {
    if (inV4(address, base, prefix)) return `${what} (${base}/${prefix})`;
  }
  return null;
}

/** The bare address of a literal: without the brackets of a URL host or an IPv6 zone id. */
function bareAddress(address: string): string {
  return address.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
}

/** True for an IPv4 or IPv6 address literal (URL brackets allowed), false for a host name. */
export function isIpAddress(address: string): boolean {
  const bare = bareAddress(address);
  return parseIPv4(bare) !== null || parseIPv6(bare) !== null;
}

/**
 * The range an IP address is in when `WEBHOOK_DENY_PRIVATE` refuses it, e.g.
 * `"loopback (127.0.0.0/8)"`, or null when it is allowed or not an address at all. Refused:
 * unspecified, loopback, private (RFC 1918), carrier-grade NAT, link-local (cloud metadata
 * services live at 169.254.169.254), IETF and benchmarking blocks, documentation, multicast,
 * reserved and broadcast IPv4; unspecified, loopback, discard-only, documentation, unique-local,
 * link-local, site-local and multicast IPv6; and an IPv4-mapped, IPv4-compatible, NAT64 or 6to4
 * IPv6 address whose IPv4 address is refused. Takes any textual form (`[::1]`, `fe80::1%eth0`,
 * `::ffff:10.0.0.1`, `::ffff:a00:1`).
 */
export function deniedAddressRange(address: string): string | null {
  const bare = bareAddress(address);
  const v4 = parseIPv4(bare);
  if (v4 !== null) return deniedV4(v4);
  const words = parseIPv6(bare);
  if (words === null) return null;
  for (const [base, prefix, what] of DENIED_V6.slice(0, 2)) {
    if (inV6(words, base, prefix)) return `${what} (${base}/${prefix})`;
  }
  for (const [base, prefix, at, what] of EMBEDDING_V6) {
    if (!inV6(words, base, prefix)) continue;
    const embedded = words[at] * 65_536 + words[at + 1];
    const range = deniedV4(embedded);
    return range === null ? null : `${what} ${v4Text(embedded)}, ${range}`;
  }
  for (const [base, prefix, what] of DENIED_V6.slice(2)) {
    if (inV6(words, base, prefix)) return `${what} (${base}/${prefix})`;
  }
  return null;
}

/**
 * Why `WEBHOOK_DENY_PRIVATE` refuses a job's URL at creation, or null: only an address literal
 * can be judged then (`http://127.0.0.1/`, `http://[::ffff:10.0.0.1]/`, and the forms the URL
 * parser turns into them, such as `http://2130706433/`). A host name is checked at every
 * delivery, after it is resolved, since what it resolves to can change after creation.
 */
export function deniedTargetAtCreation(url: string): string | null {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return null; // webhookUrlProblem reports it
  }
  const range = deniedAddressRange(host);
  return range === null ? null : `webhook address ${host} is ${range}: ${DENY_HINT}`;
}

/** A webhook target that `WEBHOOK_DENY_PRIVATE` refuses. */
class DeniedTargetError extends Error {}

/** The system resolver (getaddrinfo, as fetch uses: /etc/hosts, then DNS): every address. */
async function systemResolve(hostname: string): Promise<string[]> {
  const found = await lookup(hostname, { all: true, verbatim: true });
  return found.map((a) => a.address);
}

/** `promise`, or a rejection with the signal's reason once `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The `WEBHOOK_DENY_PRIVATE` check at delivery: resolves the URL's host (a literal is its own
 * address), throws DeniedTargetError when any address is refused, and for an http URL returns a
 * client whose connections go to the first checked address only (a `tcp` transport), so the
 * connection cannot reach an address a second lookup would give (DNS rebinding). An https URL
 * gets no client: Deno's `tcp` transport would send the request without TLS, so fetch resolves
 * the name again itself (the window docs/webhooks.md describes).
 */
async function checkedTarget(
  url: URL,
  resolve: (hostname: string) => Promise<string[]>,
  signal: AbortSignal,
): Promise<Deno.HttpClient | undefined> {
  const literal = isIpAddress(url.hostname);
  const addresses = literal ? [bareAddress(url.hostname)] : await untilAborted(
    resolve(url.hostname),
    signal,
  );
  if (addresses.length === 0) throw new Error(`dns error: ${url.hostname} has no address`);
  for (const address of addresses) {
    const range = deniedAddressRange(address);
    if (range === null) continue;
    throw new DeniedTargetError(
      literal
        ? `webhook address ${address} is ${range}: ${DENY_HINT}`
        : `webhook host ${url.hostname} resolves to ${address}, ${range}: ${DENY_HINT}`,
    );
  }
  if (url.protocol !== "http:") return undefined;
  const port = url.port === "" ? 80 : Number(url.port);
  const hostname = addresses[0].includes(":") ? `[${addresses[0]}]` : addresses[0];
  return Deno.createHttpClient({ proxy: { transport: "tcp", hostname, port } });
}

/**
 * The JSON body of a delivery: exactly `job_id`, `scheduled_at` (ISO 8601 UTC), `attempt` and
 * `payload`, in that order. Methods without a body (GET, DELETE) send nothing.
 */
export function webhookBody(
  req: Pick<DeliveryRequest, "job_id" | "scheduled_at_ms" | "attempt" | "payload">,
): string {
  return JSON.stringify({
    job_id: req.job_id,
    scheduled_at: new Date(req.scheduled_at_ms).toISOString(),
    attempt: req.attempt,
    payload: req.payload === undefined ? null : req.payload,
  });
}

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmacSha256Hex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

/**
 * The `X-Tickraft-Signature` value: `v1=<hex>` per secret, comma-separated, each the
 * HMAC-SHA256 of `${timestamp_s}.${body}` under that secret. Empty string for no secrets.
 */
export async function signatureHeader(
  secrets: string[],
  timestamp_s: number,
  body: string,
): Promise<string> {
  const message = `${timestamp_s}.${body}`;
  const signatures = await Promise.all(secrets.map((s) => hmacSha256Hex(s, message)));
  return signatures.map((hex) => `v1=${hex}`).join(",");
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Receiver-side check of a signature header against one secret: true when any `v1=` entry
 * matches (compared in constant time) and `timestamp_s` is within `tolerance_s` of `now_s`,
 * in either direction.
 */
export async function verifySignature(
  secret: string,
  header: string,
  timestamp_s: number,
  body: string,
  now_s: number,
  tolerance_s = 300,
): Promise<boolean> {
  if (!Number.isFinite(timestamp_s) || !Number.isFinite(now_s)) return false;
  if (Math.abs(now_s - timestamp_s) > tolerance_s) return false;
  const expected = await hmacSha256Hex(secret, `${timestamp_s}.${body}`);
  let matched = false;
  for (const entry of header.split(",")) {
    const [scheme, value] = entry.trim().split("=", 2);
    if (scheme === "v1" && value !== undefined) {
      matched = constantTimeEqual(value.toLowerCase(), expected) || matched;
    }
  }
  return matched;
}

/**
 * Delay before the next attempt after attempt `attempt` failed, with "equal jitter": the
 * exponential ceiling `min(max_ms, base_ms * 2^(attempt-1))` halved, plus a random share of the
 * other half. The delay stays within [ceiling/2, ceiling], so a failing receiver always gets a
 * pause, while retries from many jobs still spread. `random01` in [0, 1] is injected so the
 * caller can fix it in a replicated command. Throws RangeError for invalid arguments.
 */
export function backoffDelayMs(
  attempt: number,
  policy: { base_ms: number; max_ms: number },
  random01: number,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
  if (!(policy.base_ms >= 0) || !(policy.max_ms >= 0) || !Number.isFinite(policy.max_ms)) {
    throw new RangeError(`invalid backoff policy ${JSON.stringify(policy)}`);
  }
  if (!(random01 >= 0 && random01 <= 1)) {
    throw new RangeError(`random01 must be in [0, 1], got ${random01}`);
  }
  const exponent = Math.min(attempt - 1, 1023);
  const ceiling_ms = Math.min(policy.max_ms, policy.base_ms * 2 ** exponent);
  const half_ms = ceiling_ms / 2;
  return Math.round(half_ms + random01 * half_ms);
}

/**
 * Whether a response status is worth another attempt: 5xx, 408 (request timeout), 425 (too
 * early) and 429 (too many requests). Other 4xx and 3xx (redirects are not followed) are not.
 */
export function isRetryableStatus(status_code: number): boolean {
  return status_code >= 500 || status_code === 408 || status_code === 425 ||
    status_code === 429;
}

function clip(text: string, max_chars: number): string {
  return text.length <= max_chars ? text : `${text.slice(0, max_chars - 1)}…`;
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

function abortReasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? "no reason" : String(reason);
}

/** Reads at most RESPONSE_DRAIN_MAX_BYTES of the body, keeps an excerpt, cancels the rest. */
async function readExcerpt(res: Response): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const head = new Uint8Array(EXCERPT_MAX_BYTES);
  let head_bytes = 0;
  let read_bytes = 0;
  try {
    while (read_bytes < RESPONSE_DRAIN_MAX_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, EXCERPT_MAX_BYTES - head_bytes);
      head.set(value.subarray(0, take), head_bytes);
      head_bytes += take;
      read_bytes += value.byteLength;
    }
  } catch {
    // A body cut short (timeout, reset) still leaves the status as the outcome.
  } finally {
    await reader.cancel().catch(() => {});
  }
  const text = new TextDecoder().decode(head.subarray(0, head_bytes));
  return Array.from(text).slice(0, RESPONSE_EXCERPT_MAX_CHARS).join("");
}

/** Outgoing headers: the job's (minus reserved ones) and Tickraft's own. */
async function buildHeaders(
  req: DeliveryRequest,
  body: string,
  now_ms: number,
  has_body: boolean,
): Promise<Headers> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (!isReservedHeader(name)) headers.set(name, value);
  }
  const timestamp_s = Math.floor(now_ms / 1000);
  if (has_body) headers.set("Content-Type", "application/json");
  headers.set("User-Agent", `tickraft/${TICKRAFT_VERSION}`);
  headers.set("Idempotency-Key", idempotencyKey(req.job_id, req.scheduled_at_ms));
  headers.set("X-Tickraft-Timestamp", String(timestamp_s));
  if (req.secrets.length > 0) {
    headers.set("X-Tickraft-Signature", await signatureHeader(req.secrets, timestamp_s, body));
  }
  headers.set("X-Tickraft-Job-Id", req.job_id);
  headers.set("X-Tickraft-Execution-Id", req.execution_id);
  headers.set("X-Tickraft-Attempt", String(req.attempt));
  headers.set("X-Tickraft-Scheduled-At", new Date(req.scheduled_at_ms).toISOString());
  if (req.redelivery) headers.set("X-Tickraft-Redelivery", "true");
  return headers;
}

/**
 * Sends one attempt and classifies the outcome; never throws for network or HTTP failures.
 * Success is a 2xx. Redirects are not followed (a 3xx is a non-retryable `http_error`). Only
 * the first {@link RESPONSE_DRAIN_MAX_BYTES} of a response body are read. A request that
 * cannot be sent at all (bad URL, blocked port, invalid job header) is a non-retryable
 * `connection_error`. With `opts.deny_private`, a target in a refused range (checked after
 * resolving the name, see {@link deniedAddressRange}) is a non-retryable `denied`, and nothing
 * is sent. Aborting `opts.signal` ends the attempt with `aborted: true`, `error_class: null` and
 * `retryable: false`.
 */
export async function deliver(req: DeliveryRequest, opts: DeliverOptions): Promise<DeliveryResult> {
  const { clock, signal } = opts;
  const fetchFn = opts.fetch ?? fetch;
  const started_ms = clock.now();
  const result = (
    fields: Omit<DeliveryResult, "duration_ms" | "aborted"> & { aborted?: boolean },
  ): DeliveryResult => ({
    aborted: false,
    ...fields,
    error: fields.error === null ? null : clip(fields.error, ERROR_MAX_CHARS),
    duration_ms: Math.max(0, clock.now() - started_ms),
  });
  const abortedResult = (reason: unknown): DeliveryResult =>
    result({
      ok: false,
      status_code: null,
      error_class: null,
      error: `aborted: ${abortReasonText(reason)}`,
      retryable: false,
      aborted: true,
      response_excerpt: null,
    });
  const rejected = (reason: string): DeliveryResult =>
    result({
      ok: false,
      status_code: null,
      error_class: "connection_error",
      error: `request not sent: ${reason}`,
      retryable: false,
      response_excerpt: null,
    });

  if (signal?.aborted) return abortedResult(signal.reason);
  const url_problem = webhookUrlProblem(req.url);
  if (url_problem !== null) return rejected(url_problem);

  const has_body = !BODYLESS_METHODS.has(req.method);
  const body = has_body ? webhookBody(req) : "";
  let headers: Headers;
  try {
    headers = await buildHeaders(req, body, started_ms, has_body);
  } catch (err) {
    return rejected(errorText(err));
  }

  let ended_by: "timeout" | "caller" | null = null;
  const controller = new AbortController();
  const timer = clock.setTimeout(() => {
    ended_by ??= "timeout";
    controller.abort(new DOMException(`timed out after ${req.timeout_ms} ms`, "TimeoutError"));
  }, req.timeout_ms);
  const onCallerAbort = () => {
    ended_by ??= "caller";
    controller.abort(signal?.reason);
  };
  signal?.addEventListener("abort", onCallerAbort, { once: true });

  let client: Deno.HttpClient | undefined;
  try {
    let res: Response;
    try {
      if (opts.deny_private) {
        client = await checkedTarget(
          new URL(req.url),
          opts.resolve ?? systemResolve,
          controller.signal,
        );
      }
      res = await fetchFn(req.url, {
        method: req.method,
        headers,
        body: has_body ? body : undefined,
        redirect: "manual",
        signal: controller.signal,
        client,
      });
    } catch (err) {
      if (err instanceof DeniedTargetError) {
        return result({
          ok: false,
          status_code: null,
          error_class: "denied",
          error: err.message,
          retryable: false,
          response_excerpt: null,
        });
      }
      if (ended_by === "caller") return abortedResult(signal?.reason);
      if (ended_by === "timeout") {
        return result({
          ok: false,
          status_code: null,
          error_class: "timeout",
          error: `timeout: no response within ${req.timeout_ms} ms`,
          retryable: true,
          response_excerpt: null,
        });
      }
      const text = errorText(err);
      return result({
        ok: false,
        status_code: null,
        error_class: DNS_FAILURE.test(text) ? "dns_error" : "connection_error",
        error: text,
        retryable: true,
        response_excerpt: null,
      });
    }
    const excerpt = await readExcerpt(res);
    const status = res.status;
    if (status >= 200 && status < 300) {
      return result({
        ok: true,
        status_code: status,
        error_class: null,
        error: null,
        retryable: false,
        response_excerpt: excerpt,
      });
    }
    const location = res.headers.get("location");
    const error = status >= 300 && status < 400
      ? `HTTP ${status}: redirect not followed${location === null ? "" : ` (to ${location})`}`
      : `HTTP ${status}`;
    return result({
      ok: false,
      status_code: status,
      error_class: "http_error",
      error,
      retryable: isRetryableStatus(status),
      response_excerpt: excerpt,
    });
  } finally {
    client?.close();
    clock.clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}
