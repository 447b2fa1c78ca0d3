/**
 * A full batch becomes one Raft entry larger than MAX_BODY_BYTES (a job record carries more than
 * its request did): replication must carry it to every follower instead of stalling on a 413.
 */
import assert from "node:assert/strict";
import { withInProcessCluster } from "../support/inprocess_cluster.ts";

Deno.test("a 10,000-job batch whose log entry exceeds MAX_BODY_BYTES reaches every follower", async () => {
  await withInProcessCluster("big", async (nodes, leader) => {
    const jobs = Array.from({ length: 10_000 }, (_, i) => ({
      type: "cron",
      cron_expression: "0 0 1 1 *",
      name: `big-${i}`,
      payload: { blob: "x".repeat(400) },
    }));
    const body = JSON.stringify({ jobs });
    assert.ok(body.length < 8 * 2 ** 20, "the request itself fits MAX_BODY_BYTES");
    const response = await fetch(`${nodes.get(leader)!.url}/jobs/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await response.body?.cancel();
    assert.equal(response.status, 201);
    const deadline = Date.now() + 30_000;
    const totals = async () =>
      await Promise.all(
        [...nodes.values()].map(async (n) =>
          (await (await fetch(`${n.url}/health`)).json()).jobs.total
        ),
      );
    let seen = await totals();
    while (seen.some((t) => t !== 10_000) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      seen = await totals();
    }
    assert.deepEqual(seen, [10_000, 10_000, 10_000], "every node applied the batch");
  }, { queue_job_limit: 20_000 });
});
