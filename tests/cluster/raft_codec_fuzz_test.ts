/**
 * Fuzzing of the Raft wire protocol (src/cluster/codec.ts) with fast-check: random bodies and
 * mutated valid bodies give CodecError, never another exception; every generated message of
 * every kind round-trips; the auth header parser takes any string; the routes answer any signed
 * body with 204 or 400 and any unsigned one with 401, never 500.
 * Budget in CI: a few seconds; `FUZZ_RUNS=N` runs each property N times.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { raftRoutes } from "../../src/cluster/raft_routes.ts";
import { RaftAuth } from "../../src/cluster/auth.ts";
import {
  CodecError,
  decodeMessages,
  encodeMessages,
  messageBytes,
} from "../../src/cluster/codec.ts";
import { RAFT_ROUTES, raftPath, routeOf } from "../../src/cluster/route_table.ts";
import type { Entry, Message } from "../../src/raft/types.ts";
import { fuzzRuns } from "../support/command_arbitraries.ts";

const RUNS = fuzzRuns(2_000);
const MAX = Number.MAX_SAFE_INTEGER;

const uint = fc.oneof(
  fc.nat({ max: 1_000 }),
  fc.constantFrom(0, 127, 128, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32, MAX - 1, MAX),
  fc.maxSafeNat(),
);
const nodeId = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constant(MAX));
const bytes = fc.uint8Array({ maxLength: 64 });
const base = { from: nodeId, to: nodeId, term: uint };

/** Any message of any kind, within what the format carries. */
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    type: fc.constantFrom("vote" as const, "preVote" as const),
    ...base,
    lastIndex: uint,
    lastTerm: uint,
    transfer: fc.boolean(),
  }),
  fc.record({
    type: fc.constantFrom("voteResp" as const, "preVoteResp" as const),
    ...base,
    reject: fc.boolean(),
  }),
  fc.record({
    ...base,
    prevIndex: fc.nat({ max: 2 ** 40 }),
    prevTerm: uint,
    commit: uint,
    entries: fc.array(
      fc.record({
        term: uint,
        kind: fc.constantFrom("normal", "conf", "noop" as const),
        data: bytes,
      }),
      { maxLength: 4 },
    ),
  }).map((m): Message => ({
    type: "app",
    ...m,
    entries: m.entries.map((e, i): Entry => ({ ...e, index: m.prevIndex + 1 + i })),
  })),
  fc.record({
    type: fc.constant("appResp" as const),
    ...base,
    reject: fc.boolean(),
    index: uint,
    hintIndex: uint,
    hintTerm: uint,
  }),
  fc.record({
    type: fc.constant("heartbeat" as const),
    ...base,
    commit: uint,
    sentTick: uint,
    ctx: fc.string({ unit: "grapheme", maxLength: 12 }),
  }),
  fc.record({
    type: fc.constant("heartbeatResp" as const),
    ...base,
    sentTick: uint,
    ctx: fc.string({ unit: "grapheme", maxLength: 12 }),
  }),
  fc.record({
    ...base,
    meta: fc.record({
      index: uint,
      term: uint,
      conf: fc.record({
        voters: fc.array(nodeId, { maxLength: 5 }),
        learners: fc.array(nodeId, { maxLength: 2 }),
      }),
    }),
    offset: fc.nat({ max: 2 ** 40 }),
    spare: fc.nat({ max: 1_000 }),
    data: bytes,
  }).map(({ spare, ...m }): Message => ({
    type: "snap",
    ...m,
    totalBytes: m.offset + m.data.byteLength + spare,
  })),
  fc.record({
    type: fc.constant("snapResp" as const),
    ...base,
    index: uint,
    nextOffset: uint,
    done: fc.boolean(),
  }),
  fc.record({ type: fc.constant("timeoutNow" as const), ...base }),
);

/** Decodes `body`; a CodecError is fine, anything else thrown fails the property. */
function decodeOrCodecError(body: Uint8Array): Message[] | CodecError {
  try {
    return decodeMessages(body);
  } catch (error) {
    if (error instanceof CodecError) return error;
    throw error;
  }
}

/** A byte-level mutation of a body. */
const mutationArb = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    add: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    n: fc.integer({ min: 1, max: 9 }),
  }),
);

type MutationValue = typeof mutationArb extends fc.Arbitrary<infer T> ? T : never;

function mutate(body: Uint8Array, m: MutationValue): Uint8Array {
  const at = m.at % (body.length + 1);
  switch (m.kind) {
    case "flip": {
      const out = body.slice();
      if (out.length > 0) out[at % out.length] ^= m.byte === 0 ? 1 : m.byte;
      return out;
    }
    case "truncate":
      return body.slice(0, at);
    case "insert":
      return new Uint8Array([...body.subarray(0, at), ...m.add, ...body.subarray(at)]);
    case "delete":
      return new Uint8Array([...body.subarray(0, at), ...body.subarray(at + m.n)]);
  }
}

Deno.test("every generated message round-trips, and messageBytes is its exact size", () => {
  fc.assert(
    fc.property(fc.array(messageArb, { maxLength: 5 }), (msgs) => {
      const body = encodeMessages(msgs);
      // structuredClone: fast-check may make null-prototype records; the codec makes plain ones.
      assert.deepEqual(decodeMessages(body), structuredClone(msgs));
      // Version and count (under 128: one byte) before the messages.
      assert.equal(body.byteLength, 2 + msgs.reduce((n, m) => n + messageBytes(m), 0));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("random bodies give CodecError, never another exception", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (body) => {
      decodeOrCodecError(body);
    }),
    { numRuns: RUNS },
  );
  // Bodies that start like a real one, so the fuzzer gets past the version and count.
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 128 }), (n, rest) => {
      decodeOrCodecError(new Uint8Array([1, n, ...rest]));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("mutated valid bodies decode to messages that encode again, or give CodecError", () => {
  fc.assert(
    fc.property(
      fc.array(messageArb, { minLength: 1, maxLength: 3 }),
      fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
      (msgs, mutations) => {
        let body: Uint8Array = encodeMessages(msgs);
        for (const m of mutations) body = mutate(body, m);
        const result = decodeOrCodecError(body);
        if (!(result instanceof CodecError)) assert.deepEqual(encodeMessages(result), body);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("every message type has a route, and every route a path", () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      const route = routeOf(m.type);
      assert.ok(RAFT_ROUTES.includes(route));
      assert.equal(raftPath(route), `/raft/${route}`);
    }),
    { numRuns: Math.ceil(RUNS / 5) },
  );
});

Deno.test("the auth header parser takes any string; a claim only verifies its own body", () => {
  const auth = new RaftAuth("cluster-secret");
  const now_ms = 1_700_000_000_000;
  const header = fc.oneof(
    fc.string(),
    fc.tuple(
      fc.string({ unit: fc.constantFrom(..."0123456789"), maxLength: 20 }),
      fc.string({ maxLength: 70 }),
    )
      .map(([ts, mac]) => `Tickraft-HMAC-SHA256 ${ts}:${mac}`),
    fc.tuple(
      fc.integer({ min: now_ms - 40_000, max: now_ms + 40_000 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
    )
      .map(([ts, mac]) =>
        `Tickraft-HMAC-SHA256 ${ts}:${
          [...mac].map((b) => b.toString(16).padStart(2, "0")).join("")
        }`
      ),
  );
  fc.assert(
    fc.property(fc.option(header, { nil: undefined }), bytes, (value, body) => {
      const claim = auth.claim(value, now_ms);
      if (typeof claim === "string") return;
      assert.equal(auth.verify(claim, "/raft/append", body), false, "a random MAC never verifies");
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(bytes, bytes, fc.constantFrom(...RAFT_ROUTES), (body, other, route) => {
      const signed = auth.authorization(raftPath(route), body, now_ms);
      const claim = auth.claim(signed, now_ms);
      assert.ok(typeof claim !== "string");
      assert.equal(auth.verify(claim, raftPath(route), body), true);
      const same = other.length === body.length && other.every((b, i) => b === body[i]);
      assert.equal(auth.verify(claim, raftPath(route), other), same);
    }),
    { numRuns: Math.ceil(RUNS / 5) },
  );
});

Deno.test("the routes answer any body with 204, 400, 401 or 413, never 500", async () => {
  const secret = "cluster-secret";
  const auth = new RaftAuth(secret);
  const received: Message[] = [];
  const app = raftRoutes({
    secret,
    self: 1,
    max_body_bytes: 1 << 16,
    onMessages: (msgs) => received.push(...msgs),
    onUnauthorized: () => {},
  });
  const bodyArb = fc.oneof(
    fc.uint8Array({ maxLength: 128 }),
    fc.tuple(
      fc.array(messageArb.map((m) => ({ ...m, to: 1 })), { minLength: 1, maxLength: 3 }),
      fc.array(mutationArb, { maxLength: 2 }),
    )
      .map(([msgs, mutations]) =>
        mutations.reduce((body: Uint8Array, m) => mutate(body, m), encodeMessages(msgs))
      ),
  );
  await fc.assert(
    fc.asyncProperty(
      bodyArb,
      fc.constantFrom(...RAFT_ROUTES),
      fc.boolean(),
      async (body, route, sign) => {
        const path = raftPath(route);
        const headers: Record<string, string> = {};
        if (sign) headers.authorization = auth.authorization(path, body, Date.now());
        const res = await app.request(path, { method: "POST", body: body.slice(), headers });
        await res.body?.cancel();
        assert.ok(
          sign ? [204, 400].includes(res.status) : res.status === 401,
          `status ${res.status}`,
        );
      },
    ),
    { numRuns: Math.ceil(RUNS / 2) },
  );
});
