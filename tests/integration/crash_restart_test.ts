/**
 * The node as a real process on a real libSQL file, delivering to a real HTTP sink: it fires
 * one-off and every-second jobs with signed requests, survives `kill -9` without losing a job or
 * a pending retry, and settles the occurrences it missed while down by the misfire policy.
 */
import assert from "node:assert/strict";
import { verifySignature } from "../../src/scheduler/webhook/signing.ts";
import { type NodeProcess, spawnNode } from "../support/process.ts";
import { eventually } from "../support/wait.ts";
import { type RecordedRequest, startSink } from "../support/sink.ts";

const SECRET = "crash-test-secret-0123456789";

interface JobJson {
  id: string;
  status: string;
  attempt_count: number;
}
interface ExecutionJson {
  status: string;
  trigger: string;
  attempt: number;
  missed_count: number;
  redeliveries: number;
  scheduled_at: string;
}

async function call<T>(node: NodeProcess, method: string, path: string, body?: unknown) {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) {
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  }
  return json as T;
}

const executions = async (node: NodeProcess, id: string) =>
  (await call<{ executions: ExecutionJson[] }>(node, "GET", `/jobs/${id}/executions`)).executions;

const iso = (ms: number) => new Date(ms).toISOString();

Deno.test("kill -9 and restart: no job lost, retries resumed, missed occurrences settled", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "tickraft-crash-" });
  let flakyCalls = 0;
  const sink = await startSink({
    respond: (req) => {
      if (req.path === "/flaky") return { status: ++flakyCalls === 1 ? 503 : 200 };
      return { status: 200 };
    },
  });
  const env = { WEBHOOK_SECRET: SECRET, RETRY_BACKOFF_BASE: "4s", LOG_LEVEL: "info" };
  let node = await spawnNode(["--data-dir", dataDir], env);
  try {
    const t0 = Date.now();
    const once = await call<JobJson>(node, "POST", "/jobs", {
      type: "unico",
      timestamp: iso(t0 + 1_500),
      webhook_url: `${sink.url}/once`,
      payload: { hello: "world" },
    });
    const everySecond = await call<JobJson>(node, "POST", "/jobs", {
      type: "cron",
      cron_expression: "* * * * * *",
      webhook_url: `${sink.url}/tick`,
      catchup_window_seconds: 2,
    });
    const flaky = await call<JobJson>(node, "POST", "/jobs", {
      type: "once",
      timestamp: iso(t0 + 1_000),
      webhook_url: `${sink.url}/flaky`,
      max_attempts: 3,
    });

    await sink.waitFor((reqs) => reqs.some((r) => r.path === "/once"), 10_000);
    const delivered = sink.requests.find((r) => r.path === "/once")!;
    assert.deepEqual(delivered.json, {
      job_id: once.id,
      scheduled_at: iso(t0 + 1_500),
      attempt: 1,
      payload: { hello: "world" },
    });
    assert.equal(delivered.idempotency_key, `${once.id}:${t0 + 1_500}`);
    assert.ok(
      await verifySignature(
        SECRET,
        delivered.headers["x-tickraft-signature"],
        Number(delivered.headers["x-tickraft-timestamp"]),
        delivered.body,
        Math.floor(Date.now() / 1_000),
      ),
      "the webhook signature verifies with the node's secret",
    );
    await eventually("the flaky job waiting for its retry", async () => {
      const execs = await executions(node, flaky.id);
      return execs[0]?.status === "retrying" ? true : undefined;
    });
    await sink.waitFor((reqs) => reqs.filter((r) => r.path === "/tick").length >= 2, 5_000);

    // Two one-offs come due while the node is down: one inside its catch-up window, one not.
    const late = await call<JobJson>(node, "POST", "/jobs", {
      type: "once",
      timestamp: iso(Date.now() + 1_500),
      webhook_url: `${sink.url}/late`,
      catchup_window_seconds: 60,
    });
    const tooLate = await call<JobJson>(node, "POST", "/jobs", {
      type: "once",
      timestamp: iso(Date.now() + 1_500),
      webhook_url: `${sink.url}/too-late`,
      catchup_window_seconds: 1,
    });
    await node.kill("SIGKILL");
    const killedAt = Date.now();
    const ticksBefore = sink.requests.filter((r) => r.path === "/tick").length;
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    node = await spawnNode(["--data-dir", dataDir], env);
    const downFor = Date.now() - killedAt;

    // No job lost.
    const listed = await call<{ jobs: JobJson[] }>(node, "GET", "/jobs?limit=100");
    assert.deepEqual(
      listed.jobs.map((j) => j.id).sort(),
      [once.id, everySecond.id, flaky.id, late.id, tooLate.id].sort(),
    );

    // The pending retry resumed after the restart and succeeded on attempt 2.
    await sink.waitFor((reqs) => reqs.filter((r) => r.path === "/flaky").length >= 2, 10_000);
    const flakyReqs = sink.requests.filter((r) => r.path === "/flaky");
    assert.deepEqual(flakyReqs.map((r) => r.headers["x-tickraft-attempt"]), ["1", "2"]);
    assert.deepEqual(flakyReqs[0].idempotency_key, flakyReqs[1].idempotency_key);
    await eventually("the flaky job completed", async () => {
      const job = await call<JobJson>(node, "GET", `/jobs/${flaky.id}`);
      return job.status === "completed" ? job : undefined;
    });

    // Inside the catch-up window: fired once, late, marked catch_up.
    await sink.waitFor((reqs) => reqs.some((r) => r.path === "/late"), 10_000);
    const lateExecs = await executions(node, late.id);
    assert.deepEqual(lateExecs.map((e) => [e.status, e.trigger]), [["completed", "catch_up"]]);
    // Outside it: recorded missed, never delivered.
    const tooLateJob = await call<JobJson>(node, "GET", `/jobs/${tooLate.id}`);
    assert.deepEqual(tooLateJob.status, "missed");
    assert.deepEqual((await executions(node, tooLate.id)).map((e) => e.status), ["missed"]);
    assert(!sink.requests.some((r) => r.path === "/too-late"), "a missed one-off is not delivered");

    // The every-second job: the seconds it was down for are one missed record, then it goes on.
    await sink.waitFor(
      (reqs) => reqs.filter((r) => r.path === "/tick").length >= ticksBefore + 2,
      10_000,
    );
    const tickExecs = await executions(node, everySecond.id);
    const missed = tickExecs.filter((e) => e.status === "missed");
    assert.deepEqual(missed.length >= 1, true, "the down time is recorded as missed");
    const missedTotal = missed.reduce((n, e) => n + e.missed_count, 0);
    assert.ok(
      missedTotal >= Math.floor(downFor / 1_000) - 4,
      `missed ${missedTotal} occurrences over ${downFor} ms down`,
    );
    assertNoDoubleDelivery(sink.requests);
  } finally {
    await node.kill("SIGKILL");
    await sink.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** Every occurrence reached the sink once, except resends marked as redeliveries or retries. */
function assertNoDoubleDelivery(requests: RecordedRequest[]): void {
  const seen = new Map<string, number>();
  for (const r of requests) {
    if (r.headers["x-tickraft-redelivery"] === "true") continue;
    const key = `${r.idempotency_key}#${r.headers["x-tickraft-attempt"]}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const doubled = [...seen].filter(([, n]) => n > 1);
  assert.deepEqual(doubled, [], "an attempt of an occurrence was delivered twice");
}
