/**
 * Leadership hand-over on real processes: SIGTERM to the leader of a 3-node cluster hands
 * leadership to a follower before the process exits (0, within a few seconds), and an
 * every-second cron job keeps firing with no gap beyond the transfer time and no occurrence
 * delivered twice except marked redeliveries; `POST /cluster/transfer-leader` moves leadership
 * to a named node.
 */
import assert from "node:assert/strict";
import {
  agreedLeader,
  describeCluster,
  json,
  post,
  startCluster,
  stopCluster,
} from "../support/process_cluster.ts";
import { type RecordedRequest, startSink } from "../support/sink.ts";

/** Largest gap between two consecutive fresh occurrences reaching the sink around the transfer. */
const GAP_MAX_MS = 2_500;
/** A SIGTERMed leader hands over and exits within this. */
const EXIT_MAX_MS = 6_000;

/** Deliveries of `path`, fresh ones (not marked redelivery) first per key, in arrival order. */
function occurrences(requests: RecordedRequest[], path: string) {
  const deliveries = requests.filter((r) => r.path === path);
  const fresh = deliveries.filter((r) => r.headers["x-tickraft-redelivery"] !== "true");
  return { deliveries, fresh };
}

Deno.test("SIGTERM to the leader: no firing gap beyond the transfer time", async () => {
  const sink = await startSink();
  const cluster = await startCluster();
  try {
    const leader = await agreedLeader(cluster, cluster.names);
    const created = await json<{ id: string }>(
      `${cluster.urls.get(leader)}/jobs`,
      post({ type: "cron", cron_expression: "* * * * * *", webhook_url: `${sink.url}/tick` }),
    );
    assert.equal(created.status, 201);
    const ticks = () => occurrences(sink.requests, "/tick").fresh.length;
    await sink.waitFor(() => ticks() >= 3, 10_000);

    const stopping = cluster.nodes.get(leader)!;
    const signalled_ms = Date.now();
    const code = await stopping.kill("SIGTERM");
    const exit_ms = Date.now() - signalled_ms;
    assert.equal(code, 0, `the old leader ${leader} exits 0:\n${stopping.output()}`);
    assert.ok(exit_ms <= EXIT_MAX_MS, `the old leader exits within ${EXIT_MAX_MS} ms (${exit_ms})`);
    assert.match(
      stopping.output(),
      /"msg":"leadership handed over"/,
      `${leader} hands leadership over before exiting`,
    );
    const live = cluster.names.filter((n) => n !== leader);
    const successor = await agreedLeader(cluster, live);
    assert.notEqual(successor, leader);

    const before = sink.requests.filter((r) => r.arrived_at_ms < signalled_ms).length;
    await sink.waitFor(
      (reqs) =>
        reqs.filter((r) => r.path === "/tick" && r.arrived_at_ms > signalled_ms).length >= 3,
      10_000,
    );
    const { deliveries, fresh } = occurrences(sink.requests, "/tick");
    const arrivals = fresh.map((r) => r.arrived_at_ms);
    let gap_ms = 0;
    for (let i = 1; i < arrivals.length; i++) {
      gap_ms = Math.max(gap_ms, arrivals[i] - arrivals[i - 1]);
    }
    const timeline = fresh.map((r) => `${r.arrived_at_ms - signalled_ms} ms ${r.idempotency_key}`)
      .join("\n");
    assert.ok(
      gap_ms <= GAP_MAX_MS,
      `largest gap between deliveries ${gap_ms} ms > ${GAP_MAX_MS} (${before} before SIGTERM; ` +
        `times relative to SIGTERM):\n${timeline}`,
    );
    const perKey = new Map<string, number>();
    for (const r of fresh) {
      perKey.set(r.idempotency_key!, (perKey.get(r.idempotency_key!) ?? 0) + 1);
    }
    const twice = [...perKey].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], `occurrences delivered twice unmarked:\n${timeline}`);
    assert.ok(deliveries.every((r) => r.idempotency_key !== null), "every delivery has a key");
    console.log(
      `${leader} -> ${successor}: exit after ${exit_ms} ms, largest gap ${gap_ms} ms, ` +
        `${fresh.length} occurrences, ${deliveries.length - fresh.length} marked redeliveries`,
    );
  } catch (error) {
    console.error(await describeCluster(cluster, 25));
    throw error;
  } finally {
    await stopCluster(cluster);
    await sink.close();
  }
});

Deno.test("POST /cluster/transfer-leader moves leadership to the named node", async () => {
  const cluster = await startCluster();
  try {
    const leader = await agreedLeader(cluster, cluster.names);
    const [through, to] = cluster.names.filter((n) => n !== leader);
    const answer = await json<{ leader?: string; error?: string }>(
      `${cluster.urls.get(through)}/cluster/transfer-leader`,
      { ...post({ to }), signal: AbortSignal.timeout(15_000) },
    );
    assert.equal(answer.status, 200, `transfer through ${through}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.leader, to, "the answer names the new leader");
    assert.equal(await agreedLeader(cluster, cluster.names), to, `every node follows ${to}`);

    const created = await json<{ id: string }>(
      `${cluster.urls.get(leader)}/jobs`,
      post({ type: "cron", cron_expression: "0 0 1 1 *" }),
    );
    assert.equal(created.status, 201, "the old leader forwards writes to the new one");
    assert.equal(created.headers.get("x-tickraft-node"), to, `${to} served the write`);

    const refused = await json<{ code?: string }>(
      `${cluster.urls.get(to)}/cluster/transfer-leader`,
      post({ to }),
    );
    assert.equal(refused.status, 400, "the leader cannot hand leadership to itself");
  } catch (error) {
    console.error(await describeCluster(cluster, 25));
    throw error;
  } finally {
    await stopCluster(cluster);
  }
});
