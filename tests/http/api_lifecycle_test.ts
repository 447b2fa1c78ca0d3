/**
 * Job lifecycle over real HTTP with real deliveries: cancel, pause/resume, trigger, delete, and
 * the overlap policies of a job whose occurrences outlast its period.
 */
import assert from "node:assert/strict";
import { inMs, type TestNode, withNode } from "../support/node.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const EVERY_SECOND = "* * * * * *";

async function create(t: TestNode, body: Record<string, unknown>): Promise<Json> {
  const res = await t.post("/jobs", body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function executions(t: TestNode, id: string): Promise<Json[]> {
  const res = await t.get(`/jobs/${id}/executions`);
  assert.equal(res.status, 200, res.text);
  return res.body.executions;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("cancel: with a reason; twice → 409; a cancelled job does not fire", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const job = await create(t, {
      type: "unico",
      timestamp: inMs(1_500),
      webhook_url: `${sink.url}/hook`,
    });
    const cancelled = await t.post(`/jobs/${job.id}/cancel`, { reason: "No longer needed" });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.id, job.id);
    assert.equal(cancelled.body.status, "cancelled");
    assert.equal(cancelled.body.cancel_reason, "No longer needed");
    assert.equal(cancelled.body.next_run_at, null);

    const again = await t.post(`/jobs/${job.id}/cancel`, { reason: "again" });
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.code, "conflict");
    assert.match(again.body.error, /is cancelled already/);

    const badBody = await t.post(`/jobs/${job.id}/cancel`, { why: "x" });
    assert.equal(badBody.status, 400, badBody.text);
    assert.match(badBody.body.error, /why/);

    for (const action of ["pause", "resume", "trigger"]) {
      const res = await t.post(`/jobs/${job.id}/${action}`);
      assert.equal(res.status, 409, `${action}: ${res.text}`);
      assert.match(res.body.error, /cancelled/);
    }

    await sleep(2_500);
    assert.equal(sink.requests.length, 0, "a cancelled job fired");
    const status = await t.get(`/jobs/${job.id}/status`);
    assert.equal(status.body.status, "cancelled");
    assert.equal(status.body.cancel_reason, "No longer needed");
    assert.deepEqual(await executions(t, job.id), []);
  });
});

Deno.test("cancel: without a body uses a default reason; a delivery in flight is cancelled", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink({ respond: () => ({ status: 200, delay_ms: 5_000 }) });
    const job = await create(t, {
      type: "once",
      timestamp: inMs(50),
      webhook_url: `${sink.url}/slow`,
    });
    await sink.waitFor((reqs) => reqs.length === 1, 3_000);
    const running = await t.get(`/jobs/${job.id}/status`);
    assert.equal(running.body.status, "in_progress");
    assert.equal(running.body.current_execution.status, "in_progress");

    const cancelled = await t.post(`/jobs/${job.id}/cancel`);
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.cancel_reason, "cancelled by request");
    const [execution] = await executions(t, job.id);
    assert.equal(execution.status, "cancelled");
    assert.ok(execution.finished_at !== null);
    const status = await t.get(`/jobs/${job.id}/status`);
    assert.equal(status.body.current_execution, null);
    assert.equal(status.body.status, "cancelled");

    // A finished job cannot be cancelled.
    const done = await create(t, { type: "once", timestamp: inMs(0) });
    await t.poll(`/jobs/${done.id}`, (j) => j.status === "completed");
    const late = await t.post(`/jobs/${done.id}/cancel`, { reason: "too late" });
    assert.equal(late.status, 409, late.text);
    assert.match(late.body.error, /has finished \(completed\); nothing to cancel/);
  });
});

Deno.test("pause/resume: a paused every-second cron fires nothing; after resume it fires again", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const job = await create(t, {
      type: "recurrente",
      cron_expression: EVERY_SECOND,
      webhook_url: `${sink.url}/tick`,
    });
    await sink.waitFor((reqs) => reqs.length >= 1, 3_000);

    const paused = await t.post(`/jobs/${job.id}/pause`);
    assert.equal(paused.status, 200, paused.text);
    assert.equal(paused.body.status, "paused");
    assert.equal(paused.body.next_run_at, null);
    const twice = await t.post(`/jobs/${job.id}/pause`);
    assert.equal(twice.status, 409, twice.text);
    assert.match(twice.body.error, /is paused; only a scheduled job pauses/);
    assert.deepEqual(
      (await t.get("/jobs?status=paused")).body.jobs.map((j: Json) => j.id),
      [job.id],
    );

    // An occurrence claimed just before the pause may still be delivered; nothing after it.
    await sleep(200);
    const atPause = sink.requests.length;
    await sleep(1_500);
    assert.equal(sink.requests.length, atPause, "a paused job fired");

    const resumed = await t.post(`/jobs/${job.id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.status, "pending");
    const next = Date.parse(resumed.body.next_run_at);
    assert.ok(next > Date.now() - 1_000 && next <= Date.now() + 1_000, resumed.body.next_run_at);
    await sink.waitFor((reqs) => reqs.length > atPause, 3_000);

    const notPaused = await t.post(`/jobs/${job.id}/resume`);
    assert.equal(notPaused.status, 409, notPaused.text);
    assert.match(notPaused.body.error, /not paused/);
    assert.deepEqual((await t.get("/jobs?status=paused")).body.jobs, []);
    const pausedAgain = await t.post(`/jobs/${job.id}/pause`);
    assert.equal(pausedAgain.status, 200, `a resumed job must pause again: ${pausedAgain.text}`);
  });
});

Deno.test("trigger: runs now (202) as a manual execution, the schedule is kept", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const timestamp = inMs(10 * 60_000);
    const job = await create(t, {
      type: "once",
      timestamp,
      webhook_url: `${sink.url}/now`,
      payload: { run: "manual" },
    });
    const res = await t.post(`/jobs/${job.id}/trigger`);
    assert.equal(res.status, 202, res.text);
    assert.equal(res.body.job_id, job.id);
    assert.match(res.body.execution_id, /^[0-9A-Z]{26}$/);

    await sink.waitFor((reqs) => reqs.length === 1, 3_000);
    const [req] = sink.requests;
    assert.equal(req.headers["x-tickraft-execution-id"], res.body.execution_id);
    assert.deepEqual((req.json as { payload: unknown }).payload, { run: "manual" });

    const status = await t.poll(`/jobs/${job.id}/status`, (s) => s.last_execution !== null);
    assert.equal(status.status, "pending");
    assert.equal(status.next_run_at, timestamp);
    assert.equal(status.run_count, 1);
    assert.equal(status.attempt_count, 1);
    const [execution] = await executions(t, job.id);
    assert.equal(execution.id, res.body.execution_id);
    assert.equal(execution.trigger, "manual");
    assert.equal(execution.status, "completed");
    assert.equal(execution.status_code, 200);
    assert.equal(req.idempotency_key, execution.idempotency_key);
  });
});

Deno.test("DELETE /jobs/{id}: 200, then 404 everywhere; its executions are gone; room is freed", async () => {
  await withNode({ queue_job_limit: 1 }, async (t) => {
    const sink = await t.sink();
    const job = await create(t, {
      type: "once",
      timestamp: inMs(10 * 60_000),
      webhook_url: `${sink.url}/x`,
    });
    assert.equal((await t.post(`/jobs/${job.id}/trigger`)).status, 202);
    await t.poll(`/jobs/${job.id}/executions`, (b) => b.executions[0]?.status === "completed");

    const deleted = await t.request("DELETE", `/jobs/${job.id}`);
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(deleted.body, { id: job.id, deleted: true });
    for (
      const path of [`/jobs/${job.id}`, `/jobs/${job.id}/status`, `/jobs/${job.id}/executions`]
    ) {
      const res = await t.get(path);
      assert.equal(res.status, 404, `${path}: ${res.text}`);
    }
    const twice = await t.request("DELETE", `/jobs/${job.id}`);
    assert.equal(twice.status, 404, twice.text);
    assert.deepEqual((await t.get("/jobs")).body.jobs, []);
    assert.equal((await t.get("/health")).body.jobs.total, 0);
    // The job limit counts the deleted job no more.
    assert.equal((await t.post("/jobs", { type: "once", timestamp: inMs(60_000) })).status, 201);
  });
});

Deno.test("overlap: forbid skips, replace replaces, allow runs concurrently", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink({ respond: () => ({ status: 200, delay_ms: 2_500 }) });
    const policies = ["forbid", "replace", "allow"] as const;
    const jobs = Object.fromEntries(
      await Promise.all(policies.map(async (policy) => [
        policy,
        await create(t, {
          type: "cron",
          cron_expression: EVERY_SECOND,
          webhook_url: `${sink.url}/${policy}`,
          overlap_policy: policy,
        }),
      ])),
    ) as Record<(typeof policies)[number], Json>;
    const requestsTo = (policy: string) => sink.requests.filter((r) => r.path === `/${policy}`);

    // allow: a second delivery starts while the first is still waiting for its answer.
    await sink.waitFor((reqs) => reqs.filter((r) => r.path === "/allow").length >= 2, 3_000);
    const [a1, a2] = requestsTo("allow");
    assert.ok(a2.arrived_at_ms - a1.arrived_at_ms < 2_500, "allow did not overlap");
    const allowExecs = await executions(t, jobs.allow.id);
    assert.ok(
      allowExecs.filter((e: Json) => e.status === "in_progress").length >= 2,
      JSON.stringify(allowExecs),
    );
    const allowStatus = await t.get(`/jobs/${jobs.allow.id}/status`);
    assert.equal(allowStatus.body.status, "in_progress");
    assert.equal(allowStatus.body.current_execution.status, "in_progress");

    // forbid: the occurrences due while the first runs are recorded as skipped, not sent.
    const forbidExecs = await t.poll(
      `/jobs/${jobs.forbid.id}/executions`,
      (b) => b.executions.some((e: Json) => e.status === "skipped"),
      3_000,
    );
    const skipped = forbidExecs.executions.find((e: Json) => e.status === "skipped");
    assert.match(skipped.error, /overlap policy forbid/);
    assert.equal(requestsTo("forbid").length, 1, "forbid sent an overlapping request");
    const manual = await t.post(`/jobs/${jobs.forbid.id}/trigger`);
    assert.equal(manual.status, 409, manual.text);
    assert.match(manual.body.error, /overlap policy is forbid/);

    // replace: the running execution is marked replaced and a new one is sent.
    const replaceExecs = await t.poll(
      `/jobs/${jobs.replace.id}/executions`,
      (b) => b.executions.some((e: Json) => e.status === "replaced"),
      3_000,
    );
    const replaced = replaceExecs.executions.find((e: Json) => e.status === "replaced");
    const [r1] = requestsTo("replace");
    assert.equal(replaced.id, r1.headers["x-tickraft-execution-id"]);
    assert.ok(replaced.finished_at !== null);
    assert.ok(requestsTo("replace").length >= 2);
    assert.ok(
      replaceExecs.executions.filter((e: Json) => e.status === "in_progress").length <= 1,
      `replace left several executions running: ${JSON.stringify(replaceExecs.executions)}`,
    );
  });
});

Deno.test("GET /jobs/{id}/executions: newest first, cursor pagination", async () => {
  await withNode({}, async (t) => {
    const job = await create(t, { type: "once", timestamp: inMs(10 * 60_000) });
    const triggered: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.post(`/jobs/${job.id}/trigger`);
      assert.equal(res.status, 202, res.text);
      triggered.push(res.body.execution_id);
    }
    await t.poll(
      `/jobs/${job.id}/executions`,
      (b) => b.executions.filter((e: Json) => e.status === "completed").length === 5,
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "" : `&cursor=${cursor}`;
      const res = await t.get(`/jobs/${job.id}/executions?limit=2${query}`);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.executions.length <= 2);
      seen.push(...res.body.executions.map((e: Json) => e.id));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    assert.deepEqual(
      seen,
      [...triggered].reverse(),
      "executions must list newest first; ulid() in src/scheduler/ids.ts is not monotonic " +
        "within a millisecond, so executions started in one ms sort randomly",
    );
  });
});
