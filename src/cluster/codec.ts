/**
 * The body codec of Raft RPCs between nodes, shared by the sending transport
 * (`src/cluster/transport.ts`) and the receiving routes (`src/cluster/raft_routes.ts`): a compact
 * binary layout (version byte, LEB128 varints, raw entry and snapshot bytes), chosen over JSON
 * after measuring both (docs/transport.md). Which route carries a message is
 * `src/cluster/route_table.ts`; how a request is signed is `src/cluster/auth.ts`.
 *
 * Decoding never trusts the wire: every tag, integer range, length and boolean is checked, the
 * body must be consumed exactly, and any violation throws {@link CodecError}.
 *
 * Layout (version 1); `uv` is an unsigned LEB128 varint of at most 8 bytes, minimal, ≤ 2^53 − 1:
 * ```
 * body    = u8 version(=1) · uv count · message{count}
 * message = u8 tag · uv from(≥1) · uv to(≥1) · uv term · fields(tag)
 * vote, preVote         : uv lastIndex · uv lastTerm · u8 transfer(0|1)
 * voteResp, preVoteResp : u8 reject(0|1)
 * app                   : uv prevIndex · uv prevTerm · uv commit · uv n · entry{n}
 *   entry               : uv term · u8 kind(0 normal|1 conf|2 noop) · bytes data
 *                         (indexes are implied: prevIndex + 1, prevIndex + 2, …)
 * appResp               : u8 reject · uv index · uv hintIndex · uv hintTerm
 * heartbeat             : uv commit · uv sentTick · str ctx
 * heartbeatResp         : uv sentTick · str ctx
 * snap                  : uv meta.index · uv meta.term · ids voters · ids learners
 *                         · uv offset · uv totalBytes · bytes data (offset + length ≤ totalBytes)
 * snapResp              : uv index · uv nextOffset · u8 done
 * timeoutNow            : (nothing)
 * bytes = uv length · raw;  str = bytes (UTF-8, validated);  ids = uv n · uv id(≥1){n}
 * ```
 *
 * @module
 */
import type {
  Entry,
  EntryKind,
  Message,
  MessageType,
  NodeId,
  SnapshotMeta,
} from "../raft/types.ts";

/** The body is not a valid encoding of Raft messages (truncated, garbage, out-of-range field). */
export class CodecError extends Error {
  override name = "CodecError";
}

/** The content type of encoded bodies. */
export const RAFT_CONTENT_TYPE = "application/octet-stream";

const VERSION = 1;

const TAGS: readonly MessageType[] = [
  "vote",
  "preVote",
  "voteResp",
  "preVoteResp",
  "app",
  "appResp",
  "heartbeat",
  "heartbeatResp",
  "snap",
  "snapResp",
  "timeoutNow",
];
const TAG_OF = new Map<MessageType, number>(TAGS.map((type, i) => [type, i + 1]));
const KINDS: readonly EntryKind[] = ["normal", "conf", "noop"];
const KIND_OF = new Map<EntryKind, number>(KINDS.map((kind, i) => [kind, i]));

/** Fewest bytes any message takes (tag, from, to, term): bounds a declared count before use. */
const MESSAGE_MIN_BYTES = 4;
/** Fewest bytes an entry takes (term, kind, data length). */
const ENTRY_MIN_BYTES = 3;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ------------------------------------------------------------------------------------ sizes

function varintBytes(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  let bytes = 4;
  for (value = Math.floor(value / 0x200000); value >= 0x80; value = Math.floor(value / 0x80)) {
    bytes++;
  }
  return bytes;
}

function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function idsBytes(ids: readonly NodeId[]): number {
  let bytes = varintBytes(ids.length);
  for (const id of ids) bytes += varintBytes(id);
  return bytes;
}

/**
 * The exact number of bytes `m` takes inside an encoded body (without the body's version and
 * count). The transport uses it to bound batches and queues without encoding twice. Throws
 * {@link CodecError} for an unknown message type.
 */
export function messageBytes(m: Message): number {
  let bytes = 1 + varintBytes(m.from) + varintBytes(m.to) + varintBytes(m.term);
  switch (m.type) {
    case "vote":
    case "preVote":
      return bytes + varintBytes(m.lastIndex) + varintBytes(m.lastTerm) + 1;
    case "voteResp":
    case "preVoteResp":
      return bytes + 1;
    case "app":
      bytes += varintBytes(m.prevIndex) + varintBytes(m.prevTerm) + varintBytes(m.commit) +
        varintBytes(m.entries.length);
      for (const e of m.entries) {
        bytes += varintBytes(e.term) + 1 + varintBytes(e.data.byteLength) + e.data.byteLength;
      }
      return bytes;
    case "appResp":
      return bytes + 1 + varintBytes(m.index) + varintBytes(m.hintIndex) +
        varintBytes(m.hintTerm);
    case "heartbeat":
    case "heartbeatResp": {
      const ctxBytes = utf8Bytes(m.ctx);
      bytes += varintBytes(m.sentTick) + varintBytes(ctxBytes) + ctxBytes;
      return m.type === "heartbeat" ? bytes + varintBytes(m.commit) : bytes;
    }
    case "snap":
      return bytes + varintBytes(m.meta.index) + varintBytes(m.meta.term) +
        idsBytes(m.meta.conf.voters) + idsBytes(m.meta.conf.learners) + varintBytes(m.offset) +
        varintBytes(m.totalBytes) + varintBytes(m.data.byteLength) + m.data.byteLength;
    case "snapResp":
      return bytes + varintBytes(m.index) + varintBytes(m.nextOffset) + 1;
    case "timeoutNow":
      return bytes;
    default:
      throw new CodecError(`unknown message type ${(m as Message).type}`);
  }
}

// ------------------------------------------------------------------------------------ encode

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array<ArrayBuffer>) {}

  u8(value: number): void {
    this.buf[this.pos++] = value;
  }

  uint(value: number, what: string): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new CodecError(`${what} must be a non-negative safe integer, got ${value}`);
    }
    const buf = this.buf;
    // Division for the high part (bit operators truncate to 32 bits), shifts below 2^31.
    while (value >= 0x80000000) {
      buf[this.pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    while (value >= 0x80) {
      buf[this.pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[this.pos++] = value;
  }

  id(value: NodeId, what: string): void {
    if (value < 1) throw new CodecError(`${what} must be a node id ≥ 1, got ${value}`);
    this.uint(value, what);
  }

  bool(value: boolean): void {
    this.buf[this.pos++] = value ? 1 : 0;
  }

  bytes(data: Uint8Array): void {
    this.uint(data.byteLength, "length");
    this.buf.set(data, this.pos);
    this.pos += data.byteLength;
  }

  text(value: string): void {
    this.uint(utf8Bytes(value), "length");
    if (value.length > 0) this.pos += utf8.encodeInto(value, this.buf.subarray(this.pos)).written;
  }

  ids(values: readonly NodeId[], what: string): void {
    this.uint(values.length, what);
    for (const id of values) this.id(id, what);
  }
}

function writeMessage(w: Writer, m: Message): void {
  const tag = TAG_OF.get(m.type);
  if (tag === undefined) throw new CodecError(`unknown message type ${m.type}`);
  w.u8(tag);
  w.id(m.from, "from");
  w.id(m.to, "to");
  w.uint(m.term, "term");
  switch (m.type) {
    case "vote":
    case "preVote":
      w.uint(m.lastIndex, "lastIndex");
      w.uint(m.lastTerm, "lastTerm");
      w.bool(m.transfer);
      return;
    case "voteResp":
    case "preVoteResp":
      w.bool(m.reject);
      return;
    case "app":
      w.uint(m.prevIndex, "prevIndex");
      w.uint(m.prevTerm, "prevTerm");
      w.uint(m.commit, "commit");
      w.uint(m.entries.length, "entries");
      m.entries.forEach((e, i) => {
        if (e.index !== m.prevIndex + 1 + i) {
          throw new CodecError(
            `entry ${i} has index ${e.index}, expected ${m.prevIndex + 1 + i} (prevIndex + 1 + i)`,
          );
        }
        w.uint(e.term, "entry term");
        const kind = KIND_OF.get(e.kind);
        if (kind === undefined) throw new CodecError(`entry ${i} has unknown kind ${e.kind}`);
        w.u8(kind);
        w.bytes(e.data);
      });
      return;
    case "appResp":
      w.bool(m.reject);
      w.uint(m.index, "index");
      w.uint(m.hintIndex, "hintIndex");
      w.uint(m.hintTerm, "hintTerm");
      return;
    case "heartbeat":
      w.uint(m.commit, "commit");
      w.uint(m.sentTick, "sentTick");
      w.text(m.ctx);
      return;
    case "heartbeatResp":
      w.uint(m.sentTick, "sentTick");
      w.text(m.ctx);
      return;
    case "snap":
      w.uint(m.meta.index, "meta.index");
      w.uint(m.meta.term, "meta.term");
      w.ids(m.meta.conf.voters, "voters");
      w.ids(m.meta.conf.learners, "learners");
      w.uint(m.offset, "offset");
      w.uint(m.totalBytes, "totalBytes");
      w.bytes(m.data);
      return;
    case "snapResp":
      w.uint(m.index, "index");
      w.uint(m.nextOffset, "nextOffset");
      w.bool(m.done);
      return;
    case "timeoutNow":
      return;
  }
}

/**
 * Encodes messages into one request body. Throws {@link CodecError} for a message the format
 * cannot carry (an unknown type or kind, a negative or unsafe integer, a node id < 1,
 * non-consecutive entry indexes):
 * those are bugs in the caller, never data from the wire.
 */
export function encodeMessages(msgs: readonly Message[]): Uint8Array<ArrayBuffer> {
  let total = 1 + varintBytes(msgs.length);
  for (const m of msgs) total += messageBytes(m);
  const w = new Writer(new Uint8Array(total));
  w.u8(VERSION);
  w.uint(msgs.length, "count");
  for (const m of msgs) writeMessage(w, m);
  if (w.pos !== total) throw new CodecError(`encoded ${w.pos} bytes, sized ${total}`);
  return w.buf;
}

// ------------------------------------------------------------------------------------ decode

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.byteLength - this.pos;
  }

  private fail(what: string, why: string): never {
    throw new CodecError(`${what} at byte ${this.pos}: ${why}`);
  }

  u8(what: string): number {
    if (this.pos >= this.buf.byteLength) this.fail(what, "truncated");
    return this.buf[this.pos++];
  }

  uint(what: string): number {
    const buf = this.buf;
    if (this.pos < buf.byteLength && buf[this.pos] < 0x80) return buf[this.pos++];
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && i > 0) this.fail(what, "overlong varint");
        if (value > Number.MAX_SAFE_INTEGER) this.fail(what, "integer above 2^53 - 1");
        return value;
      }
      scale *= 0x80;
    }
    return this.fail(what, "varint longer than 8 bytes");
  }

  id(what: string): NodeId {
    const value = this.uint(what);
    if (value < 1) this.fail(what, "node id must be ≥ 1");
    return value;
  }

  bool(what: string): boolean {
    const byte = this.u8(what);
    if (byte > 1) this.fail(what, `boolean must be 0 or 1, got ${byte}`);
    return byte === 1;
  }

  /** A declared count, checked against what the remaining bytes could possibly hold. */
  count(what: string, minBytesEach: number): number {
    const n = this.uint(what);
    if (n * minBytesEach > this.remaining) {
      this.fail(what, `${n} items cannot fit in ${this.remaining} bytes`);
    }
    return n;
  }

  /** A length-prefixed byte field, as a view on the body (no copy). */
  bytes(what: string): Uint8Array {
    const length = this.uint(what);
    if (length > this.remaining) this.fail(what, `length ${length} beyond the body`);
    return this.buf.subarray(this.pos, this.pos += length);
  }

  text(what: string): string {
    const length = this.uint(what);
    if (length > this.remaining) this.fail(what, `length ${length} beyond the body`);
    if (length === 0) return "";
    try {
      return utf8Strict.decode(this.buf.subarray(this.pos, this.pos += length));
    } catch {
      return this.fail(what, "invalid UTF-8");
    }
  }

  ids(what: string): NodeId[] {
    const n = this.count(what, 1);
    const ids: NodeId[] = [];
    for (let i = 0; i < n; i++) ids.push(this.id(what));
    return ids;
  }
}

function readMessage(r: Reader): Message {
  const tag = r.u8("tag");
  const type = TAGS[tag - 1];
  if (type === undefined) throw new CodecError(`unknown message tag ${tag} at byte ${r.pos - 1}`);
  const from = r.id("from");
  const to = r.id("to");
  const term = r.uint("term");
  switch (type) {
    case "vote":
    case "preVote":
      return {
        type,
        from,
        to,
        term,
        lastIndex: r.uint("lastIndex"),
        lastTerm: r.uint("lastTerm"),
        transfer: r.bool("transfer"),
      };
    case "voteResp":
    case "preVoteResp":
      return { type, from, to, term, reject: r.bool("reject") };
    case "app": {
      const prevIndex = r.uint("prevIndex");
      const prevTerm = r.uint("prevTerm");
      const commit = r.uint("commit");
      const n = r.count("entries", ENTRY_MIN_BYTES);
      if (prevIndex + n > Number.MAX_SAFE_INTEGER) {
        throw new CodecError(`entry indexes after ${prevIndex} overflow`);
      }
      const entries: Entry[] = [];
      for (let i = 0; i < n; i++) {
        const entryTerm = r.uint("entry term");
        const kindTag = r.u8("entry kind");
        const kind = KINDS[kindTag];
        if (kind === undefined) throw new CodecError(`unknown entry kind ${kindTag}`);
        entries.push({
          index: prevIndex + 1 + i,
          term: entryTerm,
          kind,
          data: r.bytes("entry"),
        });
      }
      return { type, from, to, term, prevIndex, prevTerm, entries, commit };
    }
    case "appResp":
      return {
        type,
        from,
        to,
        term,
        reject: r.bool("reject"),
        index: r.uint("index"),
        hintIndex: r.uint("hintIndex"),
        hintTerm: r.uint("hintTerm"),
      };
    case "heartbeat": {
      const commit = r.uint("commit");
      const sentTick = r.uint("sentTick");
      return { type, from, to, term, commit, ctx: r.text("ctx"), sentTick };
    }
    case "heartbeatResp": {
      const sentTick = r.uint("sentTick");
      return { type, from, to, term, ctx: r.text("ctx"), sentTick };
    }
    case "snap": {
      const meta: SnapshotMeta = {
        index: r.uint("meta.index"),
        term: r.uint("meta.term"),
        conf: { voters: r.ids("voters"), learners: r.ids("learners") },
      };
      const offset = r.uint("offset");
      const totalBytes = r.uint("totalBytes");
      const data = r.bytes("snapshot data");
      if (offset + data.byteLength > totalBytes) {
        throw new CodecError(
          `snapshot chunk [${offset}, ${offset + data.byteLength}) beyond totalBytes ${totalBytes}`,
        );
      }
      return { type, from, to, term, meta, offset, totalBytes, data };
    }
    case "snapResp":
      return {
        type,
        from,
        to,
        term,
        index: r.uint("index"),
        nextOffset: r.uint("nextOffset"),
        done: r.bool("done"),
      };
    case "timeoutNow":
      return { type, from, to, term };
  }
}

/**
 * Decodes a request body. Throws {@link CodecError} on an unknown version, truncation, trailing
 * bytes, an unknown tag or kind, an out-of-range integer, a node id < 1, a boolean other than
 * 0/1, invalid UTF-8, or a snapshot chunk beyond its declared size.
 *
 * Zero-copy: entry and snapshot `data` are views on `bytes`, so the caller hands over `bytes`
 * (must not change it afterwards), and a decoded entry kept in memory keeps its request body
 * (at most the receiver's body limit) alive. Copying each entry cost ~0.5 µs an entry.
 */
export function decodeMessages(bytes: Uint8Array): Message[] {
  const r = new Reader(bytes);
  const version = r.u8("version");
  if (version !== VERSION) {
    throw new CodecError(`unsupported wire version ${version} (this node speaks ${VERSION})`);
  }
  const n = r.count("count", MESSAGE_MIN_BYTES);
  const msgs: Message[] = [];
  for (let i = 0; i < n; i++) msgs.push(readMessage(r));
  if (r.remaining !== 0) throw new CodecError(`${r.remaining} trailing bytes after ${n} messages`);
  return msgs;
}
