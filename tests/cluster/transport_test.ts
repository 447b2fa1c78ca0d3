import assert from "node:assert/strict";
import { raftRoutes } from "../../src/cluster/raft_routes.ts";
import { silentLogger } from "../../src/logger.ts";
import { RaftAuth } from "../../src/cluster/auth.ts";
import { encodeMessages } from "../../src/cluster/codec.ts";
import { raftPath } from "../../src/cluster/route_table.ts";
import {
  HttpTransport,
  type HttpTransportOptions,
  type TransportObserver,
} from "../../src/cluster/transport.ts";
import type { Message, NodeId } from "../../src/raft/types.ts";
import { SteadyWallClock } from "../../src/clock.ts";

const SECRET = "test-cluster-secret";
const MAX_BODY_BYTES = 4 << 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, cond: () => boolean, timeout_ms = 3_000): Promise<void> {
  const deadline = performance.now() + timeout_ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Counts what the observer reports. */
class Counts implements TransportObserver {
  sent_messages = 0;
  sent_requests = 0;
  failures = 0;
  dropped_messages = 0;
  sent(_peer: NodeId, messages: number): void {
    this.sent_messages += messages;
    this.sent_requests++;
  }
  failed(): void {
    this.failures++;
  }
  dropped(_peer: NodeId, count: number): void {
    this.dropped_messages += count;
  }
}

/** A node: a real HTTP server with the Raft routes, and a transport of its own. */
interface TestNode {
  id: NodeId;
  url: string;
  received: Message[];
  /** Paths of the requests that reached the server. */
  requests: string[];
  unauthorized: string[];
  transport: HttpTransport;
  counts: Counts;
  /** Added before each request is handled (a slow peer). */
  delay_ms: number;
  /** Called with each delivered batch (e.g. to answer). */
  onMessages?: (msgs: Message[]) => void;
  stop(): Promise<void>;
}

function startNode(
  id: NodeId,
  opts: {
    port?: number;
    secret?: string;
    transport?: Partial<HttpTransportOptions>;
    /** The receiving routes' clock (replay window); the transport's is in `transport`. */
    now_ms?: () => number;
  } = {},
): TestNode {
  const counts = new Counts();
  const node: TestNode = {
    id,
    url: "",
    received: [],
    requests: [],
    unauthorized: [],
    counts,
    delay_ms: 0,
    transport: new HttpTransport(id, {
      secret: SECRET,
      timeout_ms: 2_000,
      queue_max_messages: 1_000,
      inflight_max: 4,
      logger: silentLogger,
      observer: counts,
      ...opts.transport,
    }),
    stop: async () => {},
  };
  const app = raftRoutes({
    secret: opts.secret ?? SECRET,
    self: id,
    max_body_bytes: MAX_BODY_BYTES,
    onMessages: (msgs) => {
      node.received.push(...msgs);
      node.onMessages?.(msgs);
    },
    onUnauthorized: (route) => node.unauthorized.push(route),
    now_ms: opts.now_ms,
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: opts.port ?? 0, onListen: () => {} },
    async (req) => {
      node.requests.push(new URL(req.url).pathname);
      if (node.delay_ms > 0) await sleep(node.delay_ms);
      return app.fetch(req);
    },
  );
  node.url = `http://127.0.0.1:${server.addr.port}`;
  node.stop = async () => {
    await node.transport.close();
    await server.shutdown();
  };
  return node;
}

function connect(...nodes: TestNode[]): void {
  const peers = new Map(nodes.map((n) => [n.id, n.url]));
  for (const n of nodes) n.transport.setPeers(peers);
}

const heartbeat = (from: NodeId, to: NodeId, sentTick: number): Message => ({
  type: "heartbeat",
  from,
  to,
  term: 3,
  commit: 10,
  ctx: "",
  sentTick,
});

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(),
  );
  const port = server.addr.port;
  await server.shutdown();
  return port;
}

Deno.test("many send() calls share few requests, per route, and answers come back as requests", async () => {
  const a = startNode(1);
  const b = startNode(2);
  try {
    connect(a, b);
    b.onMessages = (msgs) =>
      b.transport.send(
        msgs.flatMap((m): Message[] =>
          m.type === "heartbeat"
            ? [{
              type: "heartbeatResp",
              from: 2,
              to: 1,
              term: m.term,
              ctx: "",
              sentTick: m.sentTick,
            }]
            : []
        ),
      );
    for (let i = 0; i < 300; i++) a.transport.send([heartbeat(1, 2, i)]);
    a.transport.send([
      { type: "vote", from: 1, to: 2, term: 4, lastIndex: 9, lastTerm: 3, transfer: false },
      { type: "timeoutNow", from: 1, to: 2, term: 3 },
    ]);
    await waitFor("302 messages at B", () => b.received.length === 302);
    await waitFor("300 answers at A", () => a.received.length === 300);

    assert.deepEqual(
      b.received.filter((m) => m.type === "heartbeat").map((m) =>
        m.type === "heartbeat" && m.sentTick
      ),
      Array.from({ length: 300 }, (_, i) => i),
      "one batch keeps its order",
    );
    assert.deepEqual(b.requests.toSorted(), ["/raft/append", "/raft/timeout-now", "/raft/vote"]);
    assert.ok(a.requests.length <= 10, `B answered in ${a.requests.length} requests`);
    assert.ok(a.received.every((m) => m.type === "heartbeatResp"));
    assert.equal(a.counts.sent_messages, 302);
    assert.equal(a.counts.sent_requests, 3);
    assert.equal(a.counts.failures + a.counts.dropped_messages, 0);

    // Spread over turns of the event loop: the window (4) fills, the rest batches behind it.
    b.requests.length = 0;
    for (let i = 0; i < 200; i++) {
      a.transport.send([heartbeat(1, 2, 1_000 + i)]);
      if (i % 10 === 9) await sleep(0);
    }
    await waitFor("200 more at B", () => b.received.length === 502);
    await waitFor("answers", () => a.transport.peerStats().get(2)!.inflight === 0);
    assert.ok(b.requests.length < 100, `${b.requests.length} requests for 200 sends`);
    assert.deepEqual(a.transport.peerStats().get(2), {
      queued: 0,
      inflight: 0,
      failures: 0,
      last_error: null,
      backoff_ms: 0,
    });

    // A message the wire cannot carry is dropped alone; send() does not throw.
    const bogus = JSON.parse('{"type":"gossip","from":1,"to":2,"term":3}') as Message;
    a.transport.send([bogus, heartbeat(1, 2, 5_000), heartbeat(1, 9, 1)]);
    await waitFor("the good one", () => b.received.length === 503);
    assert.equal(a.counts.dropped_messages, 2, "the bogus one and the one for unknown node 9");
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("a wrong secret gets 401, is counted, and delivers nothing", async () => {
  const a = startNode(1, { secret: "another-secret" });
  const b = startNode(2, { transport: { secret: "not-the-cluster-secret" } });
  try {
    connect(a, b);
    b.transport.send([heartbeat(2, 1, 1)]);
    await waitFor("a failure", () => b.counts.failures === 1);
    assert.deepEqual(a.unauthorized, ["append"]);
    assert.deepEqual(a.received, []);
    const stats = b.transport.peerStats().get(1)!;
    assert.equal(stats.failures, 1);
    assert.match(stats.last_error ?? "", /HTTP 401 from \/raft\/append: .*"code":"unauthorized"/);
    assert.equal(b.counts.dropped_messages, 1);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("an unreachable peer backs off with bounded queues, then recovers when it comes up", async () => {
  const port = await closedPort();
  const a = startNode(1, {
    transport: { queue_max_messages: 8, backoff_min_ms: 20, backoff_max_ms: 160 },
  });
  let c: TestNode | undefined;
  try {
    a.transport.setPeers(new Map([[3, `http://127.0.0.1:${port}/`]]));
    const backoffs: number[] = [];
    let sends = 0;
    const started = performance.now();
    while (performance.now() - started < 700) {
      a.transport.send([heartbeat(1, 3, sends++), heartbeat(1, 3, sends++)]);
      const stats = a.transport.peerStats().get(3)!;
      assert.ok(stats.queued <= 8, `queued ${stats.queued}`);
      assert.ok(stats.inflight <= 1, "one probe at a time while failing");
      if (stats.backoff_ms !== backoffs.at(-1)) backoffs.push(stats.backoff_ms);
      await sleep(2);
    }
    const stats = a.transport.peerStats().get(3)!;
    assert.ok(stats.failures >= 4, `failures ${stats.failures}`);
    assert.match(stats.last_error ?? "", /^fetch failed: .*Connection refused/);
    // Sampled, so a short period may be missed; what is seen grows by doubling and is capped.
    assert.ok(backoffs.length >= 3, `backoffs seen: ${backoffs}`);
    assert.ok(backoffs.every((ms) => [0, 20, 40, 80, 160].includes(ms)), `${backoffs}`);
    assert.deepEqual(backoffs.toSorted((x, y) => x - y), backoffs, "only grows while failing");
    assert.equal(backoffs.at(-1), 160, "capped");
    assert.equal(a.counts.sent_messages, 0);
    assert.equal(a.counts.failures, stats.failures);
    assert.ok(a.counts.dropped_messages > sends / 2, `${a.counts.dropped_messages} of ${sends}`);

    c = startNode(3, { port });
    let tick = 10_000;
    await waitFor("delivery after recovery", () => {
      a.transport.send([heartbeat(1, 3, tick++)]);
      return c!.received.length > 0;
    });
    await waitFor("idle", () => a.transport.peerStats().get(3)!.inflight === 0);
    assert.deepEqual(a.transport.peerStats().get(3), {
      queued: 0,
      inflight: 0,
      failures: 0,
      last_error: null,
      backoff_ms: 0,
    });
    assert.equal(a.counts.sent_messages + a.counts.dropped_messages, tick - 10_000 + sends);
  } finally {
    await a.stop();
    await c?.stop();
  }
});

Deno.test("a slow peer fills only its own window and queue; others flow; close aborts", async () => {
  const a = startNode(1, { transport: { queue_max_messages: 10, inflight_max: 2 } });
  const b = startNode(2);
  const c = startNode(3);
  try {
    connect(a, b, c);
    b.delay_ms = 800;
    const started = performance.now();
    for (let i = 0; i < 30; i++) {
      a.transport.send([heartbeat(1, 2, i), heartbeat(1, 3, i)]);
      await sleep(2);
      assert.ok(a.transport.peerStats().get(2)!.queued <= 10);
    }
    await waitFor("all 30 at C", () => c.received.length === 30, 1_000);
    assert.ok(performance.now() - started < 800, "C did not wait for B");
    assert.equal(b.received.length, 0);
    const slow = a.transport.peerStats().get(2)!;
    assert.equal(slow.inflight, 2);
    assert.equal(slow.queued, 10);
    assert.equal(slow.failures, 0, "slow is not failed");
    assert.equal(a.counts.dropped_messages, 30 - 2 - 10, "the oldest beyond the queue bound");

    await waitFor("B drained", () => a.transport.peerStats().get(2)!.inflight === 0);
    // The queue kept the newest 10; the two first requests carried the first two heartbeats.
    assert.deepEqual(
      b.received.map((m) => m.type === "heartbeat" && m.sentTick),
      [0, 1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
    );

    b.delay_ms = 1_000;
    a.transport.send([heartbeat(1, 2, 99)]);
    await waitFor("in flight", () => b.requests.length === 4);
    const closing = performance.now();
    await a.transport.close();
    assert.ok(performance.now() - closing < 500, "close does not wait for the slow peer");
    assert.equal(a.transport.peerStats().get(2)!.inflight, 0);
    a.transport.send([heartbeat(1, 3, 100)]);
    await sleep(20);
    assert.equal(c.received.length, 30, "nothing leaves a closed transport");
  } finally {
    b.delay_ms = 0;
    await a.stop();
    await b.stop();
    await c.stop();
  }
});

Deno.test("the routes refuse the wrong route, the wrong node, garbage, stale and oversize bodies", async () => {
  const b = startNode(2);
  const auth = new RaftAuth(SECRET);
  const post = async (path: string, body: Uint8Array<ArrayBuffer>, signed_ms = Date.now()) => {
    const res = await fetch(b.url + path, {
      method: "POST",
      headers: { Authorization: auth.authorization(path, body, signed_ms) },
      body,
    });
    return { status: res.status, json: res.status === 204 ? null : await res.json() };
  };
  try {
    const vote = encodeMessages([{
      type: "vote",
      from: 1,
      to: 2,
      term: 1,
      lastIndex: 0,
      lastTerm: 0,
      transfer: false,
    }]);
    assert.deepEqual(await post(raftPath("append"), vote), {
      status: 400,
      json: { code: "wrong_route", error: "a vote message does not belong on /raft/append" },
    });
    const forC = encodeMessages([{ type: "timeoutNow", from: 1, to: 3, term: 1 }]);
    assert.deepEqual(await post(raftPath("timeout-now"), forC), {
      status: 400,
      json: { code: "wrong_node", error: "message for node 3 sent to node 2" },
    });
    const garbage = await post(raftPath("vote"), new TextEncoder().encode("hello"));
    assert.equal(garbage.status, 400);
    assert.equal(garbage.json.code, "invalid_message");
    assert.equal((await post(raftPath("vote"), vote.slice(0, -1))).status, 400);
    assert.deepEqual(b.received, []);

    const stale = await post(raftPath("vote"), vote, Date.now() - 60_000);
    assert.equal(stale.status, 401);
    assert.match(stale.json.error, /more than 30000 ms/);
    const unsigned = await fetch(b.url + raftPath("vote"), { method: "POST", body: vote });
    assert.deepEqual(await unsigned.json(), {
      code: "unauthorized",
      error: "missing or malformed Authorization (want Tickraft-HMAC-SHA256)",
    });
    assert.equal(unsigned.status, 401);
    assert.deepEqual(b.unauthorized, ["vote", "vote"]);

    const huge = encodeMessages([{
      type: "snap",
      from: 1,
      to: 2,
      term: 1,
      meta: { index: 5, term: 1, conf: { voters: [1, 2], learners: [] } },
      offset: 0,
      totalBytes: MAX_BODY_BYTES,
      data: new Uint8Array(MAX_BODY_BYTES),
    }]);
    const tooLarge = await post(raftPath("snapshot"), huge);
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.json.code, "payload_too_large");

    assert.deepEqual(await post(raftPath("vote"), vote), { status: 204, json: null });
    assert.equal(b.received.length, 1);
  } finally {
    await b.stop();
  }
});

/**
 * A node's clocks under test control: the wall clock can be stepped (an NTP step, libfaketime)
 * and both can be moved on together (time passing), as the real ones would; the steady clock
 * reads them like production does.
 */
class NodeClocks {
  wall_offset_ms = 0;
  mono_offset_ms = 0;
  readonly steady = new SteadyWallClock(
    () => Date.now() + this.wall_offset_ms,
    () => performance.now() + this.mono_offset_ms,
  );
  readonly now_ms = () => this.steady.now();
  /** Time passes: wall and monotonic clocks move on together. */
  pass(ms: number): void {
    this.wall_offset_ms += ms;
    this.mono_offset_ms += ms;
  }
}

Deno.test("the replay window runs on the steady clock: a wall step cuts no node off, a replay is refused", async () => {
  const clocks_a = new NodeClocks();
  const clocks_b = new NodeClocks();
  /** Every request A sends, as sent, to replay later. */
  const captured: { url: string; init: RequestInit; body: Uint8Array<ArrayBuffer> }[] = [];
  const capturing: typeof fetch = async (input, init) => {
    const body = new Uint8Array(init!.body as Uint8Array<ArrayBuffer>);
    captured.push({ url: String(input), init: { ...init, signal: undefined }, body });
    return await fetch(input, init);
  };
  const a = startNode(1, { transport: { now_ms: clocks_a.now_ms, fetch: capturing } });
  const b = startNode(2, { now_ms: clocks_b.now_ms });
  try {
    connect(a, b);
    a.transport.send([heartbeat(1, 2, 0)]);
    await waitFor("the first heartbeat", () => b.received.length === 1);

    // A's wall clock steps 60 s ahead (twice the window): its requests still get through.
    clocks_a.wall_offset_ms = 60_000;
    a.transport.send([heartbeat(1, 2, 1)]);
    await waitFor("a heartbeat after A's step", () => b.received.length === 2);
    // B's wall clock steps 60 s back: B still takes A's requests.
    clocks_b.wall_offset_ms = -60_000;
    a.transport.send([heartbeat(1, 2, 2)]);
    await waitFor("a heartbeat after B's step", () => b.received.length === 3);
    assert.deepEqual(b.unauthorized, []);
    assert.equal(a.counts.failures, 0);

    // Signed with the stepped wall clock itself (what Date.now() gave before), it is refused.
    const path = raftPath("append");
    const body = encodeMessages([heartbeat(1, 2, 3)]);
    const auth = new RaftAuth(SECRET);
    const walled = await fetch(b.url + path, {
      method: "POST",
      headers: { Authorization: auth.authorization(path, body, Date.now() + 60_000) },
      body,
    });
    assert.equal(walled.status, 401);
    assert.match((await walled.json()).error, /more than 30000 ms.*sync them with NTP/);

    // The steps are corrected. A captured request replayed at once is a duplicate Raft
    // tolerates; 31 s later it is refused.
    clocks_a.wall_offset_ms = 0;
    clocks_b.wall_offset_ms = 0;
    const last = captured.at(-1)!;
    const replay = () => fetch(last.url, { ...last.init, body: last.body });
    assert.equal((await replay()).status, 204);
    assert.equal(b.received.length, 4);
    clocks_b.pass(31_000);
    const late = await replay();
    assert.equal(late.status, 401);
    assert.match((await late.json()).error, /more than 30000 ms/);
    assert.equal(b.received.length, 4);
    assert.deepEqual(b.unauthorized, ["append", "append"]);
  } finally {
    await a.stop();
    await b.stop();
  }
});
