/**
 * Measures the Raft wire format: the binary codec of `src/cluster/codec.ts` against a JSON
 * codec (byte fields as base64, decoded with the same validation), in µs per encode and decode
 * and in bytes, for three shapes: 64 heartbeats, an AppendEntries of 256 × 200-byte entries, and
 * a 1 MiB snapshot chunk; then the cost of the HMAC-SHA256 request authentication on the chosen
 * body; last, the whole path on loopback (HttpTransport → Deno.serve → raftRoutes) with
 * AppendEntries of 4 × 200-byte entries. The JSON codec lives here only, as the baseline the
 * choice was made against (docs/transport.md).
 *
 * Run: ./deno run --allow-net scripts/bench_codec.ts
 *
 * @module
 */
import { raftRoutes } from "../src/cluster/raft_routes.ts";
import { silentLogger } from "../src/logger.ts";
import { RaftAuth } from "../src/cluster/auth.ts";
import { CodecError, decodeMessages, encodeMessages } from "../src/cluster/codec.ts";
import { raftPath } from "../src/cluster/route_table.ts";
import { HttpTransport } from "../src/cluster/transport.ts";
import { sfc32 } from "../src/prng.ts";
import type { Entry, EntryKind, Message } from "../src/raft/types.ts";
import { perCallMs } from "./bench/timing.ts";

// ------------------------------------------------------------------------- the JSON baseline

type Json = Record<string, unknown>;

function toJson(m: Message): Json {
  switch (m.type) {
    case "app":
      return {
        ...m,
        entries: m.entries.map((e) => ({ ...e, data: e.data.toBase64() })),
      };
    case "snap":
      return { ...m, data: m.data.toBase64() };
    default:
      return { ...m };
  }
}

function jsonEncode(msgs: readonly Message[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, m: msgs.map(toJson) }));
}

function field(o: Json, key: string): unknown {
  if (!Object.hasOwn(o, key)) throw new CodecError(`missing ${key}`);
  return o[key];
}

function uint(o: Json, key: string): number {
  const v = field(o, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new CodecError(`${key} must be a non-negative integer`);
  }
  return v;
}

function id(o: Json, key: string): number {
  const v = uint(o, key);
  if (v < 1) throw new CodecError(`${key} must be ≥ 1`);
  return v;
}

function bool(o: Json, key: string): boolean {
  const v = field(o, key);
  if (typeof v !== "boolean") throw new CodecError(`${key} must be a boolean`);
  return v;
}

function str(o: Json, key: string): string {
  const v = field(o, key);
  if (typeof v !== "string") throw new CodecError(`${key} must be a string`);
  return v;
}

function obj(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new CodecError(`${what} must be an object`);
  }
  return v as Json;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new CodecError(`${what} must be an array`);
  return v;
}

function b64(o: Json, key: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(str(o, key));
  } catch {
    throw new CodecError(`${key} must be base64`);
  }
}

const KINDS = new Set(["normal", "conf", "noop"]);

function fromJson(v: unknown): Message {
  const o = obj(v, "message");
  const base = { from: id(o, "from"), to: id(o, "to"), term: uint(o, "term") };
  const type = field(o, "type");
  switch (type) {
    case "vote":
    case "preVote":
      return {
        type,
        ...base,
        lastIndex: uint(o, "lastIndex"),
        lastTerm: uint(o, "lastTerm"),
        transfer: bool(o, "transfer"),
      };
    case "voteResp":
    case "preVoteResp":
      return { type, ...base, reject: bool(o, "reject") };
    case "app": {
      const prevIndex = uint(o, "prevIndex");
      const entries = arr(field(o, "entries"), "entries").map((raw, i): Entry => {
        const e = obj(raw, "entry");
        const kind = str(e, "kind");
        if (!KINDS.has(kind)) throw new CodecError("unknown entry kind");
        const index = uint(e, "index");
        if (index !== prevIndex + 1 + i) throw new CodecError("entry indexes not consecutive");
        return { index, term: uint(e, "term"), kind: kind as EntryKind, data: b64(e, "data") };
      });
      return {
        type,
        ...base,
        prevIndex,
        prevTerm: uint(o, "prevTerm"),
        entries,
        commit: uint(o, "commit"),
      };
    }
    case "appResp":
      return {
        type,
        ...base,
        reject: bool(o, "reject"),
        index: uint(o, "index"),
        hintIndex: uint(o, "hintIndex"),
        hintTerm: uint(o, "hintTerm"),
      };
    case "heartbeat":
      return {
        type,
        ...base,
        commit: uint(o, "commit"),
        ctx: str(o, "ctx"),
        sentTick: uint(o, "sentTick"),
      };
    case "heartbeatResp":
      return { type, ...base, ctx: str(o, "ctx"), sentTick: uint(o, "sentTick") };
    case "snap": {
      const meta = obj(field(o, "meta"), "meta");
      const conf = obj(field(meta, "conf"), "conf");
      const ids = (key: string) => arr(field(conf, key), key).map((x) => id({ x }, "x"));
      const offset = uint(o, "offset");
      const totalBytes = uint(o, "totalBytes");
      const data = b64(o, "data");
      if (offset + data.byteLength > totalBytes) throw new CodecError("chunk beyond totalBytes");
      return {
        type,
        ...base,
        meta: {
          index: uint(meta, "index"),
          term: uint(meta, "term"),
          conf: { voters: ids("voters"), learners: ids("learners") },
        },
        offset,
        totalBytes,
        data,
      };
    }
    case "snapResp":
      return {
        type,
        ...base,
        index: uint(o, "index"),
        nextOffset: uint(o, "nextOffset"),
        done: bool(o, "done"),
      };
    case "timeoutNow":
      return { type, ...base };
    default:
      throw new CodecError(`unknown type ${String(type)}`);
  }
}

function jsonDecode(bytes: Uint8Array): Message[] {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new CodecError("not JSON");
  }
  const o = obj(body, "body");
  if (field(o, "v") !== 1) throw new CodecError("unsupported version");
  return arr(field(o, "m"), "m").map(fromJson);
}

// ------------------------------------------------------------------------- the cases

const random = sfc32(7);
function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

const TERM = 42;
const cases: { name: string; msgs: Message[]; iterations: number }[] = [
  {
    name: "64 heartbeats",
    msgs: Array.from({ length: 64 }, (_, i): Message => ({
      type: "heartbeat",
      from: 1,
      to: 2,
      term: TERM,
      commit: 1_234_567 + i,
      ctx: i % 8 === 0 ? `read-${i}` : "",
      sentTick: 98_765 + i,
    })),
    iterations: 20_000,
  },
  {
    name: "append 256 × 200 B",
    msgs: [{
      type: "app",
      from: 1,
      to: 2,
      term: TERM,
      prevIndex: 1_000_000,
      prevTerm: TERM,
      commit: 999_990,
      entries: Array.from({ length: 256 }, (_, i) => ({
        index: 1_000_001 + i,
        term: TERM,
        kind: "normal" as const,
        data: randomBytes(200),
      })),
    }],
    iterations: 2_000,
  },
  {
    name: "snapshot chunk 1 MiB",
    msgs: [{
      type: "snap",
      from: 1,
      to: 2,
      term: TERM,
      meta: { index: 5_000_000, term: TERM, conf: { voters: [1, 2, 3], learners: [] } },
      offset: 1 << 20,
      totalBytes: 64 << 20,
      data: randomBytes(1 << 20),
    }],
    iterations: 100,
  },
];

/** µs per call of `fn`: the median of 5 rounds of `iterations` calls after a warm-up. */
function perCall(iterations: number, fn: () => void): number {
  return perCallMs(fn, { warmup_calls: Math.min(iterations, 200), rounds: 5, calls: iterations }) *
    1_000;
}

const codecs = [
  { name: "binary", encode: encodeMessages, decode: decodeMessages },
  { name: "json", encode: jsonEncode, decode: jsonDecode },
];

console.log("| case | codec | bytes | encode µs | decode µs |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const c of cases) {
  for (const codec of codecs) {
    const body = codec.encode(c.msgs);
    const check = codec.decode(body);
    if (check.length !== c.msgs.length) throw new Error(`${codec.name} lost messages`);
    const encode_us = perCall(c.iterations, () => codec.encode(c.msgs));
    const decode_us = perCall(c.iterations, () => codec.decode(body));
    console.log(
      `| ${c.name} | ${codec.name} | ${body.byteLength.toLocaleString("en")} | ` +
        `${encode_us.toFixed(1)} | ${decode_us.toFixed(1)} |`,
    );
  }
}

console.log("\nHMAC-SHA256 request authentication on the binary body:");
console.log("| case | sign µs | claim + verify µs |");
console.log("| --- | ---: | ---: |");
const auth = new RaftAuth("a-cluster-secret-of-reasonable-length");
for (const c of cases) {
  const body = encodeMessages(c.msgs);
  const path = raftPath(c.name.startsWith("snapshot") ? "snapshot" : "append");
  const now_ms = Date.now();
  const header = auth.authorization(path, body, now_ms);
  const sign_us = perCall(c.iterations, () => auth.authorization(path, body, now_ms));
  const verify_us = perCall(c.iterations, () => {
    const claim = auth.claim(header, now_ms);
    if (typeof claim === "string" || !auth.verify(claim, path, body)) {
      throw new Error("verification failed");
    }
  });
  console.log(`| ${c.name} | ${sign_us.toFixed(1)} | ${verify_us.toFixed(1)} |`);
}

console.log("\nLoopback: HttpTransport → Deno.serve → raftRoutes, appends of 4 × 200 B entries:");
console.log("| inflight_max | messages/s | entries/s | requests/s | messages per request |");
console.log("| ---: | ---: | ---: | ---: | ---: |");
const SECRET = "a-cluster-secret-of-reasonable-length";
const TOTAL_MESSAGES = 40_000;
for (const inflight_max of [1, 4]) {
  let delivered = 0;
  let requests = 0;
  const routes = raftRoutes({
    secret: SECRET,
    self: 2,
    max_body_bytes: 8 << 20,
    onMessages: (msgs) => {
      delivered += msgs.length;
      requests++;
    },
    onUnauthorized: () => {},
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, routes.fetch);
  const transport = new HttpTransport(1, {
    secret: SECRET,
    timeout_ms: 5_000,
    queue_max_messages: 4_096,
    inflight_max,
    logger: silentLogger,
  });
  transport.setPeers(new Map([[2, `http://127.0.0.1:${server.addr.port}`]]));
  const payload = randomBytes(200);
  const t0 = performance.now();
  let index = 0;
  while (delivered < TOTAL_MESSAGES) {
    // The core's flow control, roughly: keep a bounded number of appends outstanding.
    const queued = transport.peerStats().get(2)!.queued;
    const batch: Message[] = [];
    for (let i = queued; i < 1_024 && index / 4 < TOTAL_MESSAGES; i++) {
      const prevIndex = index;
      index += 4;
      batch.push({
        type: "app",
        from: 1,
        to: 2,
        term: TERM,
        prevIndex,
        prevTerm: TERM,
        commit: prevIndex,
        entries: [1, 2, 3, 4].map((k) => ({
          index: prevIndex + k,
          term: TERM,
          kind: "normal" as const,
          data: payload,
        })),
      });
    }
    transport.send(batch);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const seconds = (performance.now() - t0) / 1_000;
  await transport.close();
  await server.shutdown();
  console.log(
    `| ${inflight_max} | ${Math.round(delivered / seconds).toLocaleString("en")} | ` +
      `${Math.round((4 * delivered) / seconds).toLocaleString("en")} | ` +
      `${Math.round(requests / seconds).toLocaleString("en")} | ${
        (delivered / requests).toFixed(0)
      } |`,
  );
}
