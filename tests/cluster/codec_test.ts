import assert from "node:assert/strict";
import { RAFT_REPLAY_WINDOW_MS, RaftAuth } from "../../src/cluster/auth.ts";
import {
  CodecError,
  decodeMessages,
  encodeMessages,
  messageBytes,
} from "../../src/cluster/codec.ts";
import { raftPath, routeOf } from "../../src/cluster/route_table.ts";
import { randomInt, sfc32 } from "../../src/prng.ts";
import type { Entry, EntryKind, Message, MessageType, NodeId } from "../../src/raft/types.ts";

const MAX = Number.MAX_SAFE_INTEGER;

/** An integer that is often at an edge of a varint width or of the safe range. */
function anyUint(random: () => number): number {
  const edges = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32, MAX - 1, MAX];
  return random() < 0.3
    ? edges[randomInt(random, 0, edges.length - 1)]
    : randomInt(random, 0, random() < 0.5 ? 1_000 : 2 ** 40);
}

function anyId(random: () => number): NodeId {
  return random() < 0.1 ? MAX : randomInt(random, 1, 9);
}

function anyBytes(random: () => number, max_bytes: number): Uint8Array {
  const bytes = new Uint8Array(randomInt(random, 0, max_bytes));
  for (let i = 0; i < bytes.length; i++) bytes[i] = randomInt(random, 0, 255);
  return bytes;
}

function anyText(random: () => number): string {
  const alphabet = ["a", "Z", "0", "-", "é", "€", "字", "😀", "\0", "\uFEFF"];
  let text = "";
  for (let n = randomInt(random, 0, 6); n > 0; n--) {
    text += alphabet[randomInt(random, 0, alphabet.length - 1)];
  }
  return text;
}

const TYPES: MessageType[] = [
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
const KINDS: EntryKind[] = ["normal", "conf", "noop"];

function anyMessage(random: () => number): Message {
  const base = { from: anyId(random), to: anyId(random), term: anyUint(random) };
  const type = TYPES[randomInt(random, 0, TYPES.length - 1)];
  switch (type) {
    case "vote":
    case "preVote":
      return {
        type,
        ...base,
        lastIndex: anyUint(random),
        lastTerm: anyUint(random),
        transfer: random() < 0.5,
      };
    case "voteResp":
    case "preVoteResp":
      return { type, ...base, reject: random() < 0.5 };
    case "app": {
      const prevIndex = randomInt(random, 0, 2 ** 40);
      const entries: Entry[] = Array.from({ length: randomInt(random, 0, 5) }, (_, i) => ({
        index: prevIndex + 1 + i,
        term: anyUint(random),
        kind: KINDS[randomInt(random, 0, 2)],
        data: anyBytes(random, 300),
      }));
      return {
        type,
        ...base,
        prevIndex,
        prevTerm: anyUint(random),
        entries,
        commit: anyUint(random),
      };
    }
    case "appResp":
      return {
        type,
        ...base,
        reject: random() < 0.5,
        index: anyUint(random),
        hintIndex: anyUint(random),
        hintTerm: anyUint(random),
      };
    case "heartbeat":
      return {
        type,
        ...base,
        commit: anyUint(random),
        ctx: anyText(random),
        sentTick: anyUint(random),
      };
    case "heartbeatResp":
      return { type, ...base, ctx: anyText(random), sentTick: anyUint(random) };
    case "snap": {
      const data = anyBytes(random, 500);
      const offset = randomInt(random, 0, 2 ** 40);
      return {
        type,
        ...base,
        meta: {
          index: anyUint(random),
          term: anyUint(random),
          conf: {
            voters: Array.from({ length: randomInt(random, 0, 5) }, () => anyId(random)),
            learners: Array.from({ length: randomInt(random, 0, 2) }, () => anyId(random)),
          },
        },
        offset,
        totalBytes: offset + data.length + randomInt(random, 0, 1_000),
        data,
      };
    }
    case "snapResp":
      return {
        type,
        ...base,
        index: anyUint(random),
        nextOffset: anyUint(random),
        done: random() < 0.5,
      };
    case "timeoutNow":
      return { type, ...base };
  }
}

function anyBatch(random: () => number): Message[] {
  return Array.from({ length: randomInt(random, 0, 12) }, () => anyMessage(random));
}

function rejects(bytes: Uint8Array, pattern?: RegExp): void {
  assert.throws(() => decodeMessages(bytes), (error: unknown) => {
    assert.ok(error instanceof CodecError, `expected CodecError, got ${error}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("random batches round-trip exactly, and messageBytes sums to the body", () => {
  const random = sfc32(20_240_601);
  for (let i = 0; i < 2_000; i++) {
    const msgs = anyBatch(random);
    const body = encodeMessages(msgs);
    assert.deepEqual(decodeMessages(body), msgs, `batch ${i}`);
    const countBytes = msgs.length < 128 ? 1 : 2;
    const sum = msgs.reduce((n, m) => n + messageBytes(m), 1 + countBytes);
    assert.equal(body.byteLength, sum, `batch ${i}`);
  }
});

Deno.test("every truncation of a valid body is rejected with CodecError", () => {
  const random = sfc32(7);
  for (let i = 0; i < 200; i++) {
    const body = encodeMessages(anyBatch(random));
    for (let cut = 0; cut < body.byteLength; cut++) rejects(body.subarray(0, cut));
  }
});

Deno.test("mutated bodies either fail with CodecError or decode to a canonical re-encoding", () => {
  // The encoding is canonical (minimal varints, booleans 0/1, strict UTF-8, implied indexes), so
  // whatever decodes must encode back to the very same bytes; anything else must be a CodecError.
  const random = sfc32(99);
  let decoded = 0;
  for (let i = 0; i < 3_000; i++) {
    const body = encodeMessages(anyBatch(random)).slice();
    if (body.byteLength < 2) continue;
    for (let flips = randomInt(random, 1, 3); flips > 0; flips--) {
      body[randomInt(random, 0, body.byteLength - 1)] = randomInt(random, 0, 255);
    }
    let msgs: Message[];
    try {
      msgs = decodeMessages(body);
    } catch (error) {
      assert.ok(error instanceof CodecError, `not a CodecError: ${error}`);
      continue;
    }
    decoded++;
    assert.deepEqual(encodeMessages(msgs), body);
  }
  assert.ok(decoded > 0, "some mutations (in data bytes) must still decode");
});

Deno.test("random garbage is rejected with CodecError, never another error", () => {
  const random = sfc32(3);
  for (let i = 0; i < 5_000; i++) {
    const garbage = anyBytes(random, 64);
    try {
      decodeMessages(garbage);
    } catch (error) {
      assert.ok(error instanceof CodecError, `not a CodecError: ${error}`);
    }
  }
  rejects(new Uint8Array(0), /version/);
  rejects(new TextEncoder().encode('{"v":1,"m":[]}'), /unsupported wire version 123/);
});

Deno.test("specific violations name what is wrong", () => {
  const vote: Message = {
    type: "vote",
    from: 1,
    to: 2,
    term: 3,
    lastIndex: 4,
    lastTerm: 5,
    transfer: false,
  };
  const body = encodeMessages([vote]);
  assert.deepEqual([...body], [1, 1, 1, 1, 2, 3, 4, 5, 0]);
  /** `body` with its byte at `at` replaced by `bytes`. */
  const patch = (at: number, ...bytes: number[]) =>
    new Uint8Array([...body.subarray(0, at), ...bytes, ...body.subarray(at + 1)]);
  rejects(patch(0, 2), /unsupported wire version 2/);
  rejects(patch(2, 0), /unknown message tag 0/);
  rejects(patch(2, 12), /unknown message tag 12/);
  rejects(patch(3, 0), /from .*≥ 1/);
  rejects(patch(4, 0), /to .*≥ 1/);
  rejects(patch(8, 2), /transfer .*0 or 1/);
  rejects(patch(5, 0x83, 0x00), /overlong/);
  rejects(patch(5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), /2\^53/);
  rejects(patch(5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), /longer than 8/);
  rejects(new Uint8Array([...body, 0]), /1 trailing bytes/);
  rejects(patch(1, 0xff, 0xff, 0x03), /cannot fit/);

  const app = encodeMessages([{
    type: "app",
    from: 1,
    to: 2,
    term: 3,
    prevIndex: 10,
    prevTerm: 3,
    commit: 9,
    entries: [{ index: 11, term: 3, kind: "noop", data: new Uint8Array([7]) }],
  }]);
  // … n=1 · term 3 · kind 2 · len 1 · 7
  assert.deepEqual([...app.subarray(-5)], [1, 3, 2, 1, 7]);
  const badKind = app.slice();
  badKind[badKind.length - 3] = 3;
  rejects(badKind, /unknown entry kind 3/);
  const longData = app.slice();
  longData[longData.length - 2] = 2;
  rejects(longData, /entry .*beyond the body/);

  const heartbeat = encodeMessages([{
    type: "heartbeat",
    from: 1,
    to: 2,
    term: 3,
    commit: 4,
    ctx: "ab",
    sentTick: 5,
  }]);
  const badUtf8 = heartbeat.slice();
  badUtf8[badUtf8.length - 1] = 0xff;
  rejects(badUtf8, /ctx .*invalid UTF-8/);

  const snap = encodeMessages([{
    type: "snap",
    from: 1,
    to: 2,
    term: 3,
    meta: { index: 9, term: 2, conf: { voters: [1, 2, 3], learners: [] } },
    offset: 4,
    totalBytes: 6,
    data: new Uint8Array([1, 2]),
  }]);
  const beyond = snap.slice();
  beyond[beyond.length - 4] = 5; // totalBytes 5 < offset 4 + 2 bytes
  rejects(beyond, /beyond totalBytes 5/);
  const zeroVoter = snap.slice();
  zeroVoter[9] = 0;
  rejects(zeroVoter, /voters .*≥ 1/);
});

Deno.test("encode refuses what the wire cannot carry", () => {
  const hb = (patch: Partial<Record<string, number>>): Message => ({
    type: "heartbeat",
    from: 1,
    to: 2,
    term: 1,
    commit: 0,
    ctx: "",
    sentTick: 0,
    ...patch,
  });
  assert.throws(() => encodeMessages([hb({ from: 0 })]), CodecError);
  assert.throws(() => encodeMessages([hb({ term: -1 })]), CodecError);
  assert.throws(() => encodeMessages([hb({ commit: 1.5 })]), CodecError);
  assert.throws(() => encodeMessages([hb({ sentTick: 2 ** 53 })]), CodecError);
  assert.throws(
    () =>
      encodeMessages([{
        type: "app",
        from: 1,
        to: 2,
        term: 1,
        prevIndex: 5,
        prevTerm: 1,
        commit: 0,
        entries: [{ index: 7, term: 1, kind: "normal", data: new Uint8Array() }],
      }]),
    /entry 0 has index 7, expected 6/,
  );
  const bogus = JSON.parse('{"type":"gossip","from":1,"to":2,"term":1}') as Message;
  assert.throws(() => encodeMessages([bogus]), /unknown message type gossip/);
});

Deno.test("decoded byte fields are views on the body (zero-copy)", () => {
  const data = new Uint8Array(1_000).fill(9);
  const body = encodeMessages([{
    type: "snap",
    from: 1,
    to: 2,
    term: 1,
    meta: { index: 1, term: 1, conf: { voters: [1], learners: [] } },
    offset: 0,
    totalBytes: 1_000,
    data,
  }]);
  const [m] = decodeMessages(body);
  assert.ok(m.type === "snap");
  assert.equal(m.data.buffer, body.buffer);
  assert.deepEqual(m.data, data);
});

Deno.test("each message type has its route", () => {
  const routes = Object.fromEntries(TYPES.map((t) => [t, raftPath(routeOf(t))]));
  assert.deepEqual(routes, {
    vote: "/raft/vote",
    voteResp: "/raft/vote",
    preVote: "/raft/pre-vote",
    preVoteResp: "/raft/pre-vote",
    app: "/raft/append",
    appResp: "/raft/append",
    heartbeat: "/raft/append",
    heartbeatResp: "/raft/append",
    snap: "/raft/snapshot",
    snapResp: "/raft/snapshot",
    timeoutNow: "/raft/timeout-now",
  });
});

Deno.test("RaftAuth: a signature binds secret, path, timestamp and body", () => {
  const auth = new RaftAuth("s3cret");
  const body = new Uint8Array([1, 2, 3]);
  const now_ms = 1_750_000_000_000;
  const header = auth.authorization("/raft/append", body, now_ms);
  assert.match(header, /^Tickraft-HMAC-SHA256 1750000000000:[0-9a-f]{64}$/);

  const claim = auth.claim(header, now_ms + 1_000);
  assert.ok(typeof claim !== "string");
  assert.equal(auth.verify(claim, "/raft/append", body), true);
  assert.equal(auth.verify(claim, "/raft/vote", body), false, "path is signed");
  assert.equal(auth.verify(claim, "/raft/append", new Uint8Array([1, 2, 4])), false);
  const other = new RaftAuth("s3cret!");
  assert.equal(other.verify(claim, "/raft/append", body), false, "secret matters");
  const shifted = auth.claim(header.replace("1750000000000:", "1750000000001:"), now_ms);
  assert.ok(typeof shifted !== "string");
  assert.equal(auth.verify(shifted, "/raft/append", body), false, "timestamp is signed");

  assert.match(
    String(auth.claim(header, now_ms + RAFT_REPLAY_WINDOW_MS + 1)),
    /more than 30000 ms/,
  );
  assert.ok(typeof auth.claim(header, now_ms - RAFT_REPLAY_WINDOW_MS) !== "string");
  for (const bad of [undefined, "", "Bearer s3cret", header.toUpperCase(), header + "0"]) {
    assert.match(String(auth.claim(bad, now_ms)), /malformed/);
  }
  assert.throws(() => new RaftAuth(""), RangeError);
});
