/**
 * Three real node processes on loopback form a Raft cluster: writes through a follower,
 * linearizable reads from every node, kill -9 of the leader, a new leader that accepts writes
 * and keeps every acknowledged job, a job due during the failover fired exactly once, and Raft
 * RPCs without the cluster secret refused.
 */
import assert from "node:assert/strict";
import { agreedLeader, json, post, startCluster, stopCluster } from "../support/process_cluster.ts";
import { startSink } from "../support/sink.ts";

Deno.test("3-node cluster: follower writes, linearizable reads, kill -9 failover without loss or double fire", async () => {
  const sink = await startSink();
  const cluster = await startCluster();
  try {
    const names = [...cluster.nodes.keys()];
    const leader = await agreedLeader(cluster, names);
    const follower = names.find((n) => n !== leader)!;
    const followerUrl = cluster.urls.get(follower)!;

    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { status, body } = await json<{ id: string }>(
        `${followerUrl}/jobs`,
        post({
          type: "cron",
          cron_expression: "0 0 1 1 *",
          name: `job-${i}`,
        }),
      );
      assert.equal(status, 201, `create through follower ${follower}`);
      ids.push(body.id);
    }
    for (const name of names) {
      for (const id of ids) {
        const { status } = await json(
          `${cluster.urls.get(name)}/jobs/${id}?consistency=linearizable`,
        );
        assert.equal(status, 200, `job ${id} read linearizably from ${name}`);
      }
    }

    const dueAt = Date.now() + 2_500;
    const due = await json<{ id: string }>(
      `${followerUrl}/jobs`,
      post({
        type: "once",
        timestamp: new Date(dueAt).toISOString(),
        webhook_url: `${sink.url}/failover`,
      }),
    );
    assert.equal(due.status, 201);
    ids.push(due.body.id);

    const unauthorized = await fetch(`${cluster.urls.get(leader)}/raft/append`, {
      method: "POST",
      body: new Uint8Array([1, 2, 3]),
    });
    await unauthorized.body?.cancel();
    assert.equal(unauthorized.status, 401, "a Raft RPC without the cluster secret is refused");

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, dueAt - Date.now() - 500)));
    await cluster.nodes.get(leader)!.kill("SIGKILL");
    const live = names.filter((n) => n !== leader);
    const newLeader = await agreedLeader(cluster, live);
    assert.notEqual(newLeader, leader);

    const after = await json<{ id: string }>(
      `${cluster.urls.get(live[0])}/jobs`,
      post({
        type: "cron",
        cron_expression: "0 0 1 1 *",
      }),
    );
    assert.equal(after.status, 201, "the new leader accepts writes");

    for (const name of live) {
      const listed = await json<{ jobs: { id: string }[] }>(
        `${cluster.urls.get(name)}/jobs?limit=100&consistency=linearizable`,
      );
      const present = new Set(listed.body.jobs.map((j) => j.id));
      for (const id of ids) {
        assert.ok(present.has(id), `acknowledged job ${id} survives on ${name}`);
      }
    }

    await sink.waitFor((reqs) => reqs.some((r) => r.path === "/failover"), 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const deliveries = sink.requests.filter((r) => r.path === "/failover");
    const keys = new Set(deliveries.map((r) => r.idempotency_key));
    assert.equal(keys.size, 1, "every delivery of the occurrence carries the same key");
    const fresh = deliveries.filter((r) => r.headers["x-tickraft-redelivery"] !== "true");
    assert.equal(fresh.length, 1, "the occurrence is delivered once, besides marked redeliveries");
  } finally {
    await stopCluster(cluster);
    await sink.close();
  }
});
