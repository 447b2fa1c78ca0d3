/**
 * No request can stop a node (issue 9): a real single-node process and a real 3-node cluster get
 * a battery of hostile requests: the 100,000-level payload that ended the log loop (sent twice, as
 * when it stopped two of three Raft loops), deep objects, deep batches, bodies over every limit,
 * malformed and non-UTF-8 bodies, lone surrogates and NULs, long query strings and keys, broken
 * forms, and Raft and cluster routes without their secret. Every answer is a 4xx (503 only with
 * `Retry-After`); afterwards every node is still healthy, the cluster still agrees on a leader,
 * and a normal job created through a follower fires at a real sink.
 */
import assert from "node:assert/strict";
import {
  agreedLeader,
  type Cluster,
  json,
  logLines,
  post,
  startCluster,
  stopCluster,
} from "../support/process_cluster.ts";
import { type NodeProcess, spawnNode } from "../support/process.ts";
import { type Sink, startSink } from "../support/sink.ts";

const HOUR_MS = 3_600_000;

interface Hostile {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
}

const nestedArrays = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** The battery; `{id}` is replaced by a job id that exists on the node. */
function battery(): Hostile[] {
  const later = new Date(Date.now() + HOUR_MS).toISOString();
  const job = `{"type":"once","timestamp":"${later}"`;
  const jsonPost = (name: string, path: string, body: string): Hostile => ({
    name,
    method: "POST",
    path,
    headers: { "Content-Type": "application/json" },
    body,
  });
  return [
    jsonPost(
      "issue 9: 100,000 nested arrays",
      "/jobs",
      `${job},"payload":${nestedArrays(100_000)}}`,
    ),
    jsonPost("issue 9 again", "/jobs", `${job},"payload":${nestedArrays(100_000)}}`),
    jsonPost(
      "50,000 nested objects",
      "/jobs",
      `${job},"payload":${'{"a":'.repeat(50_000)}0${"}".repeat(50_000)}}`,
    ),
    jsonPost(
      "a deep payload in a batch",
      "/jobs/batch",
      `{"jobs":[${job}},${job},"payload":${nestedArrays(100_000)}}]}`,
    ),
    jsonPost("a deep body", "/jobs", nestedArrays(1_000_000)),
    jsonPost("an unclosed deep body", "/jobs/batch", "[".repeat(2_000_000)),
    jsonPost("a deep name", "/jobs", `${job},"name":${nestedArrays(10_000)}}`),
    jsonPost("65 levels", "/jobs", `${job},"payload":${nestedArrays(65)}}`),
    jsonPost(
      "10,001 keys",
      "/jobs",
      `${job},"payload":{${Array.from({ length: 10_001 }, (_, i) => `"k${i}":0`).join(",")}}}`,
    ),
    jsonPost("100,001 items", "/jobs", `${job},"payload":[${Array(100_001).fill(0).join(",")}]}`),
    jsonPost("a 65,537-character string", "/jobs", `${job},"payload":"${"x".repeat(65_537)}"}`),
    jsonPost(
      "a 300 KB payload",
      "/jobs",
      `${job},"payload":[${Array(5).fill(`"${"x".repeat(60_000)}"`).join(",")}]}`,
    ),
    jsonPost("a body over MAX_BODY_BYTES", "/jobs", `${job},"payload":"${"x".repeat(9 << 20)}"}`),
    jsonPost("10,001 jobs", "/jobs/batch", `{"jobs":[${Array(10_001).fill(`${job}}`).join(",")}]}`),
    jsonPost("duplicate keys", "/jobs", `${job},"type":"cron","type":7}`),
    jsonPost("a lone surrogate in name", "/jobs", `${job},"name":"\\udc00"}`),
    jsonPost("a NUL in the idempotency key", "/jobs", `${job},"idempotency_key":"a\\u0000"}`),
    jsonPost("__proto__", "/jobs", `${job},"__proto__":{"admin":true}}`),
    jsonPost("a header with a line break", "/jobs", `${job},"headers":{"X-A":"1\\r\\nX-B: 2"}}`),
    jsonPost("truncated JSON", "/jobs", `${job},"payload":[1,2`),
    jsonPost(
      "a number with a million digits",
      "/jobs",
      `${job},"max_attempts":1${"0".repeat(1e6)}}`,
    ),
    {
      name: "bytes that are not UTF-8",
      method: "POST",
      path: "/jobs",
      headers: { "Content-Type": "application/json" },
      body: new Uint8Array([0x7b, 0xff, 0xfe, 0xc0, 0x80, 0x7d]),
    },
    {
      name: "a 4,000-character Idempotency-Key",
      method: "POST",
      path: "/jobs",
      headers: { "Content-Type": "application/json", "Idempotency-Key": "k".repeat(4_000) },
      body: `${job}}`,
    },
    { name: "a long query string", method: "GET", path: `/jobs?q=${"%ED%A0%80".repeat(1_000)}` },
    { name: "a broken percent-encoding", method: "GET", path: "/jobs?q=%E0%A4%A&limit=%" },
    { name: "limit out of range", method: "GET", path: "/jobs?limit=1e309" },
    jsonPost("a deep cancel reason", "/jobs/{id}/cancel", `{"reason":${nestedArrays(100_000)}}`),
    {
      name: "multipart without its boundary",
      method: "POST",
      path: "/console/jobs",
      headers: { "Content-Type": "multipart/form-data" },
      body: '--x\r\nContent-Disposition: form-data; name="payload"\r\n\r\n[[[\r\n--x--',
    },
    {
      name: "a deep payload from the console form",
      method: "POST",
      path: "/console/jobs",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        type: "once",
        schedule: later,
        payload: nestedArrays(100_000),
      }).toString(),
    },
    jsonPost("a deep join request", "/join", `{"node_id":${nestedArrays(100_000)}}`),
    jsonPost(
      "a deep transfer request",
      "/cluster/transfer-leader",
      `{"to":${nestedArrays(100_000)}}`,
    ),
    {
      name: "removing a member that does not exist",
      method: "DELETE",
      path: "/cluster/members/nobody",
    },
    {
      name: "a Raft RPC without the secret",
      method: "POST",
      path: "/raft/append",
      body: new Uint8Array(1_000).fill(0xff),
    },
    { name: "a method no route has", method: "PATCH", path: "/jobs/{id}" },
    { name: "a path no route has", method: "GET", path: "/jobs/%ED%A0%80/../../x" },
  ];
}

/** Sends the battery to `url`; every answer must be a 4xx, or a 503 that says when to retry. */
async function sendBattery(url: string, node: string): Promise<void> {
  const created = await json<{ id: string }>(
    `${url}/jobs`,
    post({ type: "cron", cron_expression: "0 0 1 1 *", name: `target on ${node}` }),
  );
  assert.equal(created.status, 201, `a target job on ${node}`);
  for (const h of battery()) {
    const response = await fetch(`${url}${h.path.replaceAll("{id}", created.body.id)}`, {
      method: h.method,
      headers: h.headers,
      body: h.body,
      redirect: "manual",
    });
    const text = await response.text();
    const refused = (response.status >= 400 && response.status < 500) ||
      (response.status === 503 && response.headers.get("Retry-After") !== null);
    assert.ok(refused, `${node}: ${h.name} → ${response.status}: ${text.slice(0, 300)}`);
  }
}

async function assertHealthy(url: string, node: string): Promise<void> {
  const health = await json<{ status: string; role: string }>(`${url}/health`);
  assert.equal(health.status, 200, `${node} /health`);
  assert.equal(health.body.status, "ok", `${node} /health: ${JSON.stringify(health.body)}`);
}

/** A normal job created through `url` fires at the sink. */
async function assertFires(url: string, sink: Sink, tag: string): Promise<void> {
  const res = await json<{ id: string }>(
    `${url}/jobs`,
    post({
      type: "once",
      timestamp: new Date(Date.now() + 500).toISOString(),
      webhook_url: `${sink.url}/${tag}`,
    }),
  );
  assert.equal(res.status, 201, `a normal job after the battery: ${JSON.stringify(res.body)}`);
  await sink.waitFor((reqs) => reqs.some((r) => r.path === `/${tag}`), 15_000);
}

function assertNoLoopStopped(node: NodeProcess, name: string): void {
  for (const line of node.output().split("\n")) {
    assert.ok(!/"level":"(error|fatal)"/.test(line), `${name} logged an error: ${line}`);
  }
}

Deno.test("hostile requests: a single node answers 4xx to all, stays up and fires", async () => {
  const sink = await startSink();
  const dir = await Deno.makeTempDir({ prefix: "tickraft-hostile-" });
  let node: NodeProcess | undefined;
  try {
    node = await spawnNode(["--data-dir", dir]);
    await sendBattery(node.url, "single");
    await assertHealthy(node.url, "single");
    await assertFires(node.url, sink, "single-after");
    assertNoLoopStopped(node, "single");
  } finally {
    await node?.kill("SIGKILL");
    await sink.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile requests: every node of a 3-node cluster answers 4xx, keeps a leader, fires", async () => {
  const sink = await startSink();
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster();
    const names = cluster.names;
    await agreedLeader(cluster, names);
    // Followers proxy writes to the leader: each node gets the whole battery.
    for (const name of names) await sendBattery(cluster.urls.get(name)!, name);
    for (const name of names) await assertHealthy(cluster.urls.get(name)!, name);
    // Still a leader all three agree on (not necessarily the same one: the machine is shared).
    const after = await agreedLeader(cluster, names);
    const follower = names.find((n) => n !== after)!;
    await assertFires(cluster.urls.get(follower)!, sink, "cluster-after");
    for (const name of names) {
      assert.deepEqual(logLines(cluster.nodes.get(name)!, "raft log failed; the node stops"), []);
      assertNoLoopStopped(cluster.nodes.get(name)!, name);
    }
  } finally {
    if (cluster !== undefined) await stopCluster(cluster);
    await sink.close();
  }
});
