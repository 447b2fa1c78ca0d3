/**
 * Which webhook targets a job may use: the URL rules checked at creation (http or https, not a
 * port fetch blocks, no reserved header), and `WEBHOOK_DENY_PRIVATE`, which keeps deliveries out
 * of loopback, private and link-local networks: checked on the literal address at creation and
 * on every resolved address at delivery (docs/webhooks.md).
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { type PinnedRequest, pinRequest } from "../../runtime.ts";

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
export class DeniedTargetError extends Error {}

/** The system resolver (getaddrinfo, as fetch uses: /etc/hosts, then DNS): every address. */
export async function systemResolve(hostname: string): Promise<string[]> {
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
 * address), throws DeniedTargetError when any address is refused, and for an http URL returns the
 * request pinned to the first checked address only (`pinRequest` in src/runtime.ts), so the
 * connection cannot reach an address a second lookup would give (DNS rebinding). An https URL
 * is not pinned: Deno's `tcp` transport would send the request without TLS, so fetch resolves
 * the name again itself (the window docs/webhooks.md describes).
 */
export async function checkedTarget(
  url: URL,
  resolve: (hostname: string) => Promise<string[]>,
  signal: AbortSignal,
): Promise<PinnedRequest | undefined> {
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
  return pinRequest(url, addresses[0]);
}
