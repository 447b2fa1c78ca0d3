/** GET /health, GET /debug/cluster and GET /metrics over real HTTP against a real node. */
import assert from "node:assert/strict";
import { inMs, withNode } from "../support/node.ts";

Deno.test("GET /health: role, uptime, job counts and memory", async () => {
  await withNode({ node_id: "api-health", queue_job_limit: 50 }, async (t) => {
    const created = await t.post("/jobs/batch", {
      jobs: [
        { type: "once", timestamp: inMs(60_000) },
        { type: "once", timestamp: inMs(60_000) },
        { type: "cron", cron_expression: "0 0 * * *" },
      ],
    });
    assert.equal(created.status, 201, created.text);
    const res = await t.get("/health");
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get("X-Tickraft-Node"), "api-health");
    const h = res.body;
    assert.equal(h.status, "ok");
    assert.equal(h.node_id, "api-health");
    assert.equal(h.role, "leader");
    assert.equal(h.leader, "api-health");
    assert.equal(typeof h.uptime_seconds, "number");
    assert.ok(h.uptime_seconds >= 0);
    assert.ok(h.applied_index >= 1);
    assert.equal(h.jobs.total, 3);
    assert.equal(h.jobs.limit, 50);
    assert.deepEqual(h.jobs.by_status, { pending: 3 });
    assert.equal(h.queue.max_inflight_deliveries, t.config.max_inflight_deliveries);
    assert.equal(typeof h.queue.timer_entries, "number");
    assert.ok(h.memory.rss_bytes > 0);
    assert.ok(h.memory.limit_bytes > 0);
    assert.equal(typeof h.memory.utilization_percent, "number");
  });
});

Deno.test("GET /ready: a node alone is ready, and is its own leader", async () => {
  await withNode({ node_id: "solo" }, async (t) => {
    const res = await t.get("/ready");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      ready: true,
      reason: null,
      leader: "solo",
      applied_index: res.body.applied_index,
      commit_index: res.body.applied_index,
    });
  });
});

Deno.test("GET /debug/cluster: this node as the single leader member", async () => {
  await withNode({ node_id: "api-cluster" }, async (t) => {
    const res = await t.get("/debug/cluster");
    assert.equal(res.status, 200, res.text);
    const c = res.body;
    assert.equal(c.node_id, "api-cluster");
    assert.equal(c.role, "leader");
    assert.equal(c.leader, "api-cluster");
    assert.equal(typeof c.term, "number");
    assert.equal(c.members.length, 1);
    assert.equal(c.members[0].id, "api-cluster");
    assert.equal(c.members[0].address, t.url);
    assert.equal(c.members[0].role, "voter");
    assert.equal(c.members[0].lag, 0);
  });
});

Deno.test("GET /metrics: Prometheus text with jobs, deliveries, lateness and HTTP durations", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const job = await t.post("/jobs", {
      type: "once",
      timestamp: inMs(100),
      webhook_url: `${sink.url}/m`,
    });
    assert.equal(job.status, 201, job.text);
    await t.poll(`/jobs/${job.body.id}`, (j) => j.status === "completed");
    await t.post("/jobs", { type: "bogus" });

    const res = await t.get("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = res.text;
    assert.match(text, /^tickraft_jobs_created_total 1$/m);
    assert.match(text, /^tickraft_deliveries_total\{outcome="success",error_class="none"\} 1$/m);
    assert.match(text, /^tickraft_firing_lateness_seconds_count 1$/m);
    assert.match(text, /^tickraft_job_rejections_total\{reason="invalid"\} 1$/m);
    assert.match(
      text,
      /^tickraft_http_request_duration_seconds_count\{method="POST",route="\/jobs",status="201"\} 1$/m,
    );
    // Routes are labelled by pattern, not by job id (bounded label values).
    assert.match(
      text,
      /^tickraft_http_request_duration_seconds_count\{method="GET",route="\/jobs\/:id",status="200"\} \d+$/m,
    );
    assert.ok(!text.includes(job.body.id), "a job id is used as a label value");
  });
});

Deno.test("GET /health: degraded once recent webhook failures pass HEALTH_FAILURE_THRESHOLD", async () => {
  await withNode({ health_failure_threshold: 0.4 }, async (t) => {
    const sink = await t.sink({ respond: (req) => ({ status: req.path === "/bad" ? 404 : 200 }) });
    const fire = async (path: string) => {
      const job = await t.post("/jobs", {
        type: "once",
        timestamp: inMs(50),
        webhook_url: `${sink.url}${path}`,
      });
      assert.equal(job.status, 201, job.text);
      await t.poll(
        `/jobs/${job.body.id}`,
        (j) => j.status === "completed" || j.status === "failed",
      );
    };
    await fire("/good");
    let h = (await t.get("/health")).body;
    assert.equal(h.status, "ok");
    assert.deepEqual(h.deliveries, { attempts: 1, failure_ratio: 0, failure_threshold: 0.4 });
    await fire("/bad");
    h = (await t.get("/health")).body;
    assert.equal(h.status, "degraded", "1 failure in 2 attempts is above 0.4");
    assert.deepEqual(h.deliveries, { attempts: 2, failure_ratio: 0.5, failure_threshold: 0.4 });
  });
});
