/**
 * Leader routing over real HTTP between three in-process cluster nodes (real libSQL files, real
 * Raft traffic on loopback): a follower proxies writes, answers 307 when asked, serves
 * linearizable reads after the leader's ReadIndex, and the cluster routes check their input.
 */
import assert from "node:assert/strict";
import { type Config, defaultConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { freePorts } from "../support/ports.ts";
import { INPROCESS_SECRET, withInProcessCluster } from "../support/inprocess_cluster.ts";

const ADMIN_TOKEN = "routing-admin-token-0123456789";

const withCluster = (
  fn: (nodes: Map<string, RunningNode>, leader: string) => Promise<void>,
  overrides: Partial<Config> = {},
) => withInProcessCluster("r", fn, overrides);

const jobBody = JSON.stringify({ type: "cron", cron_expression: "0 0 1 1 *" });

Deno.test("a follower proxies writes, redirects on request, serves linearizable reads", async () => {
  await withCluster(async (nodes, leader) => {
    const follower = [...nodes.keys()].find((n) => n !== leader)!;
    const followerUrl = nodes.get(follower)!.url;

    const proxied = await fetch(`${followerUrl}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: jobBody,
    });
    const job = await proxied.json();
    assert.equal(proxied.status, 201);
    assert.equal(proxied.headers.get("x-tickraft-node"), leader, "the leader served it");
    assert.equal(proxied.headers.get("x-tickraft-forwarded-by"), follower);

    const redirected = await fetch(`${followerUrl}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-tickraft-redirect": "true" },
      body: jobBody,
      redirect: "manual",
    });
    const body = await redirected.json();
    assert.equal(redirected.status, 307);
    assert.equal(redirected.headers.get("location"), `${nodes.get(leader)!.url}/jobs`);
    assert.equal(body.code, "redirect");

    const read = await fetch(`${followerUrl}/jobs/${job.id}?consistency=linearizable`);
    assert.equal(read.status, 200);
    assert.equal((await read.json()).id, job.id);
    assert.equal(
      read.headers.get("x-tickraft-node"),
      leader,
      "linearizable reads go to the leader",
    );

    const local = await fetch(`${followerUrl}/jobs?consistency=local`);
    await local.body?.cancel();
    assert.equal(local.status, 200);
    assert.equal(local.headers.get("x-tickraft-node"), follower, "local reads stay local");
  });
});

Deno.test("cluster routes validate input and say what is wrong", async () => {
  await withCluster(async (nodes, leader) => {
    const url = nodes.get(leader)!.url;
    const bad = await fetch(`${url}/join`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ node_id: "x y", address: "ftp://nowhere" }),
    });
    const badBody = await bad.json();
    assert.equal(bad.status, 400);
    assert.deepEqual(badBody.details.map((d: { path: string }) => d.path).sort(), [
      "address",
      "node_id",
    ]);

    const missing = await fetch(`${url}/cluster/members/nobody`, { method: "DELETE" });
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).error, /nobody is not a member/);

    const transfer = await fetch(`${url}/cluster/transfer-leader`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ to: "nobody" }),
    });
    assert.equal(transfer.status, 400);
    assert.match((await transfer.json()).error, /not another voting member/);
  });
});

Deno.test("on Fly, a follower answers fly-replay to requests that came through Fly's proxy", async () => {
  Deno.env.set("FLY_APP_NAME", "tickraft-routing-test");
  try {
    await withCluster(async (nodes, leader) => {
      const follower = [...nodes.keys()].find((n) => n !== leader)!;
      const viaFly = await fetch(`${nodes.get(follower)!.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "fly-request-id": "01TEST" },
        body: jobBody,
      });
      await viaFly.body?.cancel();
      assert.equal(viaFly.headers.get("fly-replay"), `instance=${leader}`);
      const direct = await fetch(`${nodes.get(follower)!.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: jobBody,
      });
      await direct.body?.cancel();
      assert.equal(direct.status, 201, "a request that did not come through Fly is proxied");
      assert.equal(direct.headers.get("fly-replay"), null);
    });
  } finally {
    Deno.env.delete("FLY_APP_NAME");
  }
});

Deno.test("with API tokens set, a new node still joins: its /join is signed with the cluster secret", async () => {
  await withCluster(async (nodes, leader) => {
    const [port] = freePorts(1);
    const dir = await Deno.makeTempDir({ prefix: "tickraft-r-4-" });
    const joiner = await startNode(
      defaultConfig({
        node_id: "r-4",
        host: "127.0.0.1",
        http_port: port,
        data_dir: dir,
        join_url: nodes.get(leader)!.url,
        advertise_url: `http://127.0.0.1:${port}`,
        cluster_secret: INPROCESS_SECRET,
        raft_tick_ms: 50,
        api_tokens_admin: [ADMIN_TOKEN],
      }),
      { logger: silentLogger },
    );
    try {
      const unsigned = await fetch(`${nodes.get(leader)!.url}/join`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ node_id: "r-5", address: "http://127.0.0.1:1" }),
      });
      await unsigned.body?.cancel();
      assert.equal(unsigned.status, 401, "an unsigned join without a token is refused");
      const deadline = Date.now() + 15_000;
      let voter = false;
      while (!voter && Date.now() < deadline) {
        const view = await (await fetch(`${nodes.get(leader)!.url}/debug/cluster`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        })).json();
        voter = view.members.some((m: { id: string; role: string }) =>
          m.id === "r-4" && m.role === "voter"
        );
        if (!voter) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(voter, "r-4 joined and was promoted to voter");
    } finally {
      await joiner.stop(0);
      await Deno.remove(dir, { recursive: true });
    }
  }, { api_tokens_admin: [ADMIN_TOKEN] });
});

Deno.test("GET /ready: every member is ready once a leader is known, and names it", async () => {
  await withCluster(async (nodes, leader) => {
    for (const [name, node] of nodes) {
      const response = await fetch(`${node.url}/ready`);
      const body = await response.json();
      assert.equal(response.status, 200, `${name}: ${JSON.stringify(body)}`);
      assert.equal(body.ready, true);
      assert.equal(body.reason, null);
      assert.equal(body.leader, leader);
      assert.ok(body.applied_index >= 1 && body.commit_index >= body.applied_index);
      assert.equal(response.headers.get("x-tickraft-node"), name, "served by the node itself");
    }
  });
});
