/**
 * Real deliveries to a real sink, seen through GET /jobs/{id}/status and /executions: the
 * webhook request (body, headers, HMAC signature), retries, and each failure class.
 */
import assert from "node:assert/strict";
import { TICKRAFT_VERSION } from "../../src/scheduler/webhook/delivery.ts";
import { verifySignature } from "../../src/scheduler/webhook/signing.ts";
import type { RecordedRequest } from "../support/sink.ts";
import { inMs, type TestNode, withNode } from "../support/node.ts";
import { freePort as closedPort } from "../support/ports.ts";

const NODE_SECRET = "node-wide-secret-0123456789";
const JOB_SECRET = "per-job-secret-abcdefghijkl";

// deno-lint-ignore no-explicit-any
type Json = any;

async function create(t: TestNode, body: Record<string, unknown>): Promise<Json> {
  const res = await t.post("/jobs", body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** Waits until the job reaches a final status; returns its status view. */
function settled(t: TestNode, id: string, timeout_ms = 5_000): Promise<Json> {
  return t.poll(
    `/jobs/${id}/status`,
    (s) => ["completed", "failed", "missed", "cancelled"].includes(s.status),
    timeout_ms,
  );
}

async function executions(t: TestNode, id: string): Promise<Json[]> {
  const res = await t.get(`/jobs/${id}/executions`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.job_id, id);
  return res.body.executions;
}

function signed(req: RecordedRequest, secret: string): Promise<boolean> {
  return verifySignature(
    secret,
    req.headers["x-tickraft-signature"] ?? "",
    Number(req.headers["x-tickraft-timestamp"]),
    req.body,
    Math.floor(Date.now() / 1_000),
  );
}

Deno.test("a once job 1 s ahead is delivered to the sink: status, execution, request, signature", async () => {
  await withNode({ webhook_secrets: [NODE_SECRET] }, async (t) => {
    const sink = await t.sink({ respond: () => ({ status: 200, body: "thanks" }) });
    const timestamp = inMs(1_000);
    const scheduled_ms = Date.parse(timestamp);
    const payload = { order: 42, items: ["a", "b"], note: "ünïcødé" };
    const [nodeSigned, jobSigned, getJob] = await Promise.all([
      create(t, {
        type: "unico",
        timestamp,
        webhook_url: `${sink.url}/hook/node?x=1`,
        payload,
        headers: { Authorization: "Bearer t0k3n" },
      }),
      create(t, {
        type: "once",
        timestamp,
        webhook_url: `${sink.url}/hook/job`,
        payload,
        secret: JOB_SECRET,
      }),
      create(t, { type: "once", timestamp, webhook_url: `${sink.url}/hook/get`, method: "GET" }),
    ]);
    await sink.waitFor((reqs) => reqs.length >= 3, 5_000);
    const byPath = (path: string) => sink.requests.find((r) => r.path === path)!;

    // The job and its execution, as the API reports them.
    for (const job of [nodeSigned, jobSigned, getJob]) {
      const status = await settled(t, job.id);
      assert.equal(status.job_id, job.id);
      assert.equal(status.status, "completed");
      assert.equal(status.attempt_count, 1);
      assert.equal(status.run_count, 1);
      assert.equal(status.last_status, "completed");
      assert.equal(status.next_run_at, null);
      assert.equal(status.current_execution, null);
      assert.equal(status.last_execution.status, "completed");

      const [execution, ...rest] = await executions(t, job.id);
      assert.deepEqual(rest, []);
      assert.deepEqual(status.last_execution, execution);
      assert.equal(execution.job_id, job.id);
      assert.equal(execution.status, "completed");
      assert.equal(execution.trigger, "schedule");
      assert.equal(execution.attempt, 1);
      assert.equal(execution.status_code, 200);
      assert.equal(execution.error_class, null);
      assert.equal(execution.scheduled_at, timestamp);
      assert.equal(execution.idempotency_key, `${job.id}:${scheduled_ms}`);
      assert.equal(execution.response_excerpt, "thanks");
      assert.equal(typeof execution.duration_ms, "number");

      const got = await t.get(`/jobs/${job.id}`);
      assert.equal(got.body.status, "completed");
      assert.equal(got.body.last_status, "completed");
      assert.ok(got.body.last_run_at !== null);
    }

    // The request: body, headers, and not early.
    const req = byPath("/hook/node?x=1");
    const [execution] = await executions(t, nodeSigned.id);
    assert.equal(req.method, "POST");
    assert.equal(
      req.body,
      JSON.stringify({ job_id: nodeSigned.id, scheduled_at: timestamp, attempt: 1, payload }),
    );
    assert.equal(req.headers["content-type"], "application/json");
    assert.equal(req.headers["user-agent"], `tickraft/${TICKRAFT_VERSION}`);
    assert.equal(req.headers["authorization"], "Bearer t0k3n");
    assert.equal(req.idempotency_key, `${nodeSigned.id}:${scheduled_ms}`);
    assert.equal(req.headers["x-tickraft-job-id"], nodeSigned.id);
    assert.equal(req.headers["x-tickraft-execution-id"], execution.id);
    assert.equal(req.headers["x-tickraft-attempt"], "1");
    assert.equal(req.headers["x-tickraft-scheduled-at"], timestamp);
    assert.equal(req.headers["x-tickraft-redelivery"], undefined);
    assert.ok(
      req.arrived_at_ms >= scheduled_ms,
      `fired ${scheduled_ms - req.arrived_at_ms} ms early`,
    );
    assert.ok(
      req.arrived_at_ms - scheduled_ms < 1_000,
      `fired ${req.arrived_at_ms - scheduled_ms} ms late`,
    );

    // Signatures: the node's secret by default, the job's own secret instead when it has one.
    assert.ok(await signed(req, NODE_SECRET), "node secret must verify");
    assert.ok(!(await signed(req, JOB_SECRET)), "a wrong secret must not verify");
    const jobReq = byPath("/hook/job");
    assert.ok(await signed(jobReq, JOB_SECRET), "the job's secret must verify");
    assert.ok(!(await signed(jobReq, NODE_SECRET)), "the job's secret replaces the node's");
    assert.equal(jobReq.headers["x-tickraft-signature"].split(",").length, 1);

    // GET: no body, no content type, the signature covers the empty body.
    const getReq = byPath("/hook/get");
    assert.equal(getReq.method, "GET");
    assert.equal(getReq.body, "");
    assert.equal(getReq.headers["content-type"], undefined);
    assert.ok(await signed(getReq, NODE_SECRET));
    assert.equal(sink.requests.length, 3, "each occurrence is delivered once");
  });
});

Deno.test("a job without webhook_url completes its execution without calling anything", async () => {
  await withNode({}, async (t) => {
    const job = await create(t, { type: "unico", timestamp: inMs(100) });
    const status = await settled(t, job.id);
    assert.equal(status.status, "completed");
    const [execution] = await executions(t, job.id);
    assert.equal(execution.status, "completed");
    assert.equal(execution.status_code, null);
  });
});

Deno.test("retries: 500 then 200 completes at attempt 2 with the same Idempotency-Key", async () => {
  await withNode({ retry_backoff_base_ms: 50, retry_backoff_max_ms: 100 }, async (t) => {
    const sink = await t.sink({ respond: (_req, n) => ({ status: n === 1 ? 500 : 200 }) });
    const job = await create(t, {
      type: "once",
      timestamp: inMs(100),
      webhook_url: `${sink.url}/flaky`,
      max_attempts: 3,
    });
    const status = await settled(t, job.id);
    assert.equal(status.status, "completed");
    assert.equal(status.attempt_count, 2);
    assert.equal(status.run_count, 1);
    const [execution, ...rest] = await executions(t, job.id);
    assert.deepEqual(rest, [], "a retry is an attempt of the same execution");
    assert.equal(execution.status, "completed");
    assert.equal(execution.attempt, 2);
    assert.equal(execution.status_code, 200);
    assert.equal(execution.error_class, null);

    assert.equal(sink.requests.length, 2);
    const [first, second] = sink.requests;
    assert.equal(first.idempotency_key, second.idempotency_key);
    assert.equal(first.headers["x-tickraft-execution-id"], execution.id);
    assert.equal(second.headers["x-tickraft-execution-id"], execution.id);
    assert.deepEqual(
      [first.headers["x-tickraft-attempt"], second.headers["x-tickraft-attempt"]],
      ["1", "2"],
    );
    assert.equal((second.json as { attempt: number }).attempt, 2);
    const gap = second.arrived_at_ms - first.arrived_at_ms;
    assert.ok(gap >= 25, `the retry waited only ${gap} ms (backoff is at least base/2)`);
  });
});

Deno.test("failures: always 500, 404, connection refused, timeout → failed with the error class", async () => {
  await withNode({ retry_backoff_base_ms: 50, retry_backoff_max_ms: 100 }, async (t) => {
    const sink = await t.sink({
      respond: (req) => {
        if (req.path === "/500") return { status: 500, body: "boom" };
        if (req.path === "/404") return { status: 404 };
        return { status: 200, delay_ms: 2_000 };
      },
    });
    const timestamp = inMs(100);
    const [always500, notFound, refused, slow] = await Promise.all([
      create(t, { type: "once", timestamp, webhook_url: `${sink.url}/500`, max_attempts: 2 }),
      create(t, { type: "once", timestamp, webhook_url: `${sink.url}/404`, max_attempts: 3 }),
      create(t, {
        type: "once",
        timestamp,
        webhook_url: `http://127.0.0.1:${closedPort()}/hook`,
        max_attempts: 2,
      }),
      create(t, {
        type: "once",
        timestamp,
        webhook_url: `${sink.url}/slow`,
        max_attempts: 1,
        timeout_seconds: 0.2,
      }),
    ]);
    const cases: [Json, number, number | null, string, number][] = [
      [always500, 2, 500, "http_error", 2],
      [notFound, 1, 404, "http_error", 1], // 404 is not retried
      [refused, 2, null, "connection_error", 0],
      [slow, 1, null, "timeout", 1],
    ];
    for (const [job, attempts, status_code, error_class, requests] of cases) {
      const status = await settled(t, job.id);
      const what = `${job.webhook_url}: ${JSON.stringify(status)}`;
      assert.equal(status.status, "failed", what);
      assert.equal(status.attempt_count, attempts, what);
      assert.equal(status.last_status, "failed", what);
      const [execution, ...rest] = await executions(t, job.id);
      assert.deepEqual(rest, [], what);
      assert.equal(execution.status, "failed", what);
      assert.equal(execution.attempt, attempts, what);
      assert.equal(execution.status_code, status_code, what);
      assert.equal(execution.error_class, error_class, what);
      assert.ok(typeof execution.error === "string" && execution.error.length > 0, what);
      assert.ok(execution.finished_at !== null, what);
      const path = new URL(job.webhook_url).pathname;
      assert.equal(sink.requests.filter((r) => r.path === path).length, requests, what);
    }
    const [failed500] = await executions(t, always500.id);
    assert.equal(failed500.response_excerpt, "boom");

    const failedList = await t.get("/jobs?status=failed");
    assert.equal(failedList.body.jobs.length, 4);
  });
});

Deno.test("catchup_window_seconds 0: an occurrence fired on time by a running node is delivered, not missed", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const job = await create(t, {
      type: "once",
      timestamp: inMs(300),
      webhook_url: `${sink.url}/on-time`,
      catchup_window_seconds: 0,
    });
    const status = await settled(t, job.id);
    const [execution] = await executions(t, job.id);
    assert.equal(
      status.status,
      "completed",
      "a window of 0 means 'no catch-up after downtime', yet the running node recorded the " +
        "on-time occurrence as missed: Scheduler#advanceCommand (src/scheduler/scheduler.ts) " +
        "compares the ordinary firing delay of a few ms with the window (now - latest <= " +
        `catchup_window_ms); execution: ${JSON.stringify(execution)}`,
    );
    assert.equal(execution.status, "completed");
    assert.equal(sink.requests.length, 1);
  });
});
