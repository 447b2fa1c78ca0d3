/**
 * Every error of the jobs API over real HTTP: the status, the JSON shape, and a message (and field
 * path) that says what to fix. Refused writes leave nothing behind.
 */
import assert from "node:assert/strict";
import { type ApiResponse, inMs, type TestNode, withNode } from "../support/node.ts";

const MINUTE_MS = 60_000;

/** Asserts an error response: status, code, a message matching `message`, and field paths. */
function assertError(
  res: ApiResponse,
  status: number,
  code: string,
  message: RegExp,
  paths?: string[],
): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  assert.equal(res.body.code, code, res.text);
  assert.match(res.body.error, message);
  if (paths !== undefined) {
    assert.deepEqual(res.body.details.map((d: { path: string }) => d.path), paths, res.text);
  }
}

async function jobCount(t: TestNode): Promise<number> {
  const res = await t.get("/jobs?limit=1000");
  assert.equal(res.status, 200, res.text);
  return res.body.jobs.length;
}

Deno.test("POST /jobs: request errors → 400 with a message that says what to fix", async () => {
  await withNode({}, async (t) => {
    const future = inMs(10 * MINUTE_MS);
    const cases: { name: string; body: unknown; message: RegExp; paths?: string[] }[] = [
      {
        name: "unknown field",
        body: { type: "once", timestamp: future, colour: "red" },
        message: /colour/,
      },
      {
        name: "unknown type",
        body: { type: "weekly", timestamp: future },
        message: /use one of once, cron, interval/,
        paths: ["type"],
      },
      {
        name: "missing type",
        body: { timestamp: future },
        message: /"type" is required: use one of once, cron, interval/,
        paths: ["type"],
      },
      {
        name: "empty body",
        body: "",
        message: /"type" is required/,
        paths: ["type"],
      },
      ...["toString", "constructor", "__proto__"].map((type) => ({
        name: `inherited property ${type} as a type`,
        body: { type, timestamp: future },
        message: /use one of once, cron, interval/,
        paths: ["type"],
      })),
      {
        name: "missing timestamp",
        body: { type: "unico", webhook_url: "http://127.0.0.1:9999/" },
        message: /needs "timestamp"/,
        paths: ["timestamp"],
      },
      {
        name: "timestamp without a zone",
        body: { type: "unico", timestamp: "2031-01-01T10:00:00" },
        message: /ISO 8601 time with a zone/,
        paths: ["timestamp"],
      },
      {
        name: "missing cron",
        body: { type: "recurrente" },
        message: /needs "cron_expression"/,
        paths: ["cron_expression"],
      },
      {
        name: "invalid cron",
        body: { type: "recurrente", cron_expression: "61 * * * *" },
        message: /cron/i,
        paths: ["cron_expression"],
      },
      {
        name: "cron with a wrong field count",
        body: { type: "cron", cron_expression: "* * *" },
        message: /has 3 field\(s\); use 5 fields/,
        paths: ["cron_expression"],
      },
      {
        name: "7-field cron",
        body: { type: "cron", cron_expression: "0 0 12 * * * 2031" },
        message: /7 fields; a year field is not supported/,
        paths: ["cron_expression"],
      },
      {
        name: "unknown timezone",
        body: { type: "cron", cron_expression: "0 9 * * *", timezone: "Mars/Olympus" },
        message: /unknown time zone "Mars\/Olympus".*IANA/,
        paths: ["timezone"],
      },
      {
        name: "interval without interval_seconds",
        body: { type: "interval" },
        message: /needs "interval_seconds"/,
        paths: ["interval_seconds"],
      },
      {
        name: "ftp webhook",
        body: { type: "once", timestamp: future, webhook_url: "ftp://example.com/x" },
        message: /unsupported URL scheme: ftp:.*use an http\(s\) URL/,
        paths: ["webhook_url"],
      },
      {
        name: "javascript: webhook",
        body: { type: "once", timestamp: future, webhook_url: "javascript:alert(1)" },
        message: /unsupported URL scheme: javascript:.*use an http\(s\) URL/,
        paths: ["webhook_url"],
      },
      {
        name: "relative webhook",
        body: { type: "once", timestamp: future, webhook_url: "/hook" },
        message: /invalid URL.*use an http\(s\) URL/,
        paths: ["webhook_url"],
      },
      {
        name: "webhook on a port fetch blocks",
        body: { type: "once", timestamp: future, webhook_url: "http://127.0.0.1:25/" },
        message: /port 25 is blocked/,
        paths: ["webhook_url"],
      },
      {
        name: "reserved Idempotency-Key header",
        body: { type: "once", timestamp: future, headers: { "Idempotency-Key": "x" } },
        message: /header "Idempotency-Key" cannot be set by a job/,
        paths: ["headers"],
      },
      {
        name: "reserved X-Tickraft-* header",
        body: { type: "once", timestamp: future, headers: { "X-Tickraft-Attempt": "9" } },
        message: /header "X-Tickraft-Attempt" cannot be set by a job/,
        paths: ["headers"],
      },
      {
        name: "invalid header name",
        body: { type: "once", timestamp: future, headers: { "Bad Header": "x" } },
        message: /header "Bad Header" cannot be set/,
        paths: ["headers"],
      },
      {
        name: "short secret",
        body: { type: "once", timestamp: future, secret: "short" },
        message: /at least 16 characters/,
        paths: ["secret"],
      },
      {
        name: "unknown overlap policy",
        body: { type: "cron", cron_expression: "* * * * *", overlap_policy: "queue" },
        message: /overlap_policy/,
        paths: ["overlap_policy"],
      },
      {
        name: "max_attempts 0",
        body: { type: "once", timestamp: future, max_attempts: 0 },
        message: /max_attempts/,
        paths: ["max_attempts"],
      },
      {
        name: "negative timeout",
        body: { type: "once", timestamp: future, timeout_seconds: -1 },
        message: /timeout_seconds/,
        paths: ["timeout_seconds"],
      },
      {
        name: "timestamp on a cron job",
        body: { type: "cron", cron_expression: "* * * * *", timestamp: future },
        message: /only once jobs take a timestamp; use starts_at/,
        paths: ["timestamp"],
      },
      {
        name: "last_date before starts_at",
        body: {
          type: "cron",
          cron_expression: "* * * * *",
          starts_at: "2031-02-01T00:00:00Z",
          last_date: "2031-01-01T00:00:00Z",
        },
        message: /last_date is before starts_at/,
        paths: ["last_date"],
      },
      {
        name: "body is not an object",
        body: [1, 2],
        message: /invalid job/,
      },
    ];
    for (const c of cases) {
      const res = await t.post("/jobs", c.body);
      assert.equal(res.status, 400, `${c.name}: ${res.text}`);
      assertError(res, 400, "invalid_request", c.message, c.paths);
    }
    assert.equal(await jobCount(t), 0, "a refused request created a job");
  });
});

Deno.test("POST /jobs: malformed JSON → 400 that says the JSON is malformed", async () => {
  await withNode({}, async (t) => {
    const res = await t.post("/jobs", '{"type": "once", "timestamp": ');
    assertError(res, 400, "invalid_request", /malformed JSON body/);
  });
});

Deno.test("POST /jobs: a one-off in the past → 400 asking for a future time", async () => {
  await withNode({}, async (t) => {
    const res = await t.post("/jobs", { type: "unico", timestamp: "2024-12-25T10:00:00Z" });
    assertError(res, 400, "invalid_request", /2024-12-25T10:00:00\.000Z is in the past.*future/, [
      "timestamp",
    ]);
    assert.equal(await jobCount(t), 0);
  });
});

Deno.test("unknown job → 404 naming the job on every /jobs/{id} route", async () => {
  await withNode({}, async (t) => {
    const id = "01JUNKNOWNJOB0000000000000";
    const routes: [string, string, unknown?][] = [
      ["GET", `/jobs/${id}`],
      ["DELETE", `/jobs/${id}`],
      ["GET", `/jobs/${id}/status`],
      ["GET", `/jobs/${id}/executions`],
      ["POST", `/jobs/${id}/cancel`, { reason: "x" }],
      ["POST", `/jobs/${id}/pause`],
      ["POST", `/jobs/${id}/resume`],
      ["POST", `/jobs/${id}/trigger`],
    ];
    for (const [method, path, body] of routes) {
      const res = await t.request(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assertError(res, 404, "not_found", new RegExp(`job ${id} does not exist`));
    }
  });
});

Deno.test("unknown route → 404 JSON naming the route", async () => {
  await withNode({}, async (t) => {
    for (const [method, path] of [["GET", "/nope"], ["PUT", "/jobs"], ["GET", "/jobs/x/y/z"]]) {
      const res = await t.request(method, path);
      assertError(res, 404, "not_found", new RegExp(`no route for ${method} ${path}`));
    }
  });
});

Deno.test("bad query parameters → 400 naming the parameter", async () => {
  await withNode({}, async (t) => {
    const created = await t.post("/jobs", { type: "once", timestamp: inMs(MINUTE_MS) });
    assert.equal(created.status, 201, created.text);
    const cases: [string, RegExp, string[]][] = [
      ["/jobs?status=bogus", /status/, ["status"]],
      ["/jobs?limit=0", /limit/, ["limit"]],
      ["/jobs?limit=abc", /limit/, ["limit"]],
      ["/jobs?limit=100000", /limit/, ["limit"]],
      ["/jobs?type=weekly", /use once, cron or interval/, ["type"]],
      ["/jobs?type=toString", /use once, cron or interval/, ["type"]],
      ["/jobs?type=__proto__", /use once, cron or interval/, ["type"]],
      ["/jobs?colour=red", /colour/, [""]],
      [`/jobs/${created.body.id}/executions?limit=0`, /limit/, ["limit"]],
    ];
    for (const [path, message, paths] of cases) {
      const res = await t.get(path);
      assert.equal(res.status, 400, `${path}: ${res.text}`);
      assertError(res, 400, "invalid_request", message, paths);
    }
  });
});

Deno.test("body over MAX_BODY_BYTES → 413 naming the limit; nothing created", async () => {
  await withNode({ max_body_bytes: 512 }, async (t) => {
    const body = { type: "once", timestamp: inMs(MINUTE_MS), payload: "x".repeat(2_000) };
    const res = await t.post("/jobs", body);
    assertError(res, 413, "payload_too_large", /larger than 512 bytes \(MAX_BODY_BYTES\)/);
    const batch = await t.post("/jobs/batch", { jobs: [body] });
    assertError(batch, 413, "payload_too_large", /MAX_BODY_BYTES/);
    // Without Content-Length (chunked), the limit is enforced while reading.
    const chunked = await fetch(`${t.url}/jobs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: ReadableStream.from([new TextEncoder().encode(JSON.stringify(body))]),
    });
    assert.equal(chunked.status, 413);
    assert.match((await chunked.json()).error, /MAX_BODY_BYTES/);
    // Just under the limit is fine.
    const small = await t.post("/jobs", { ...body, payload: "x".repeat(100) });
    assert.equal(small.status, 201, small.text);
    assert.equal(await jobCount(t), 1);
  });
});

Deno.test("QUEUE_JOB_LIMIT reached → 507 naming the limit; nothing half-written", async () => {
  await withNode({ queue_job_limit: 3 }, async (t) => {
    const body = (key: string) => ({
      type: "once",
      timestamp: inMs(MINUTE_MS),
      idempotency_key: key,
    });
    for (const key of ["a", "b", "c"]) {
      const res = await t.post("/jobs", body(key));
      assert.equal(res.status, 201, res.text);
    }
    const over = await t.post("/jobs", body("d"));
    assertError(over, 507, "job_limit", /QUEUE_JOB_LIMIT=3 is reached.*delete finished jobs/);
    assert.equal(await jobCount(t), 3);
    const health = await t.get("/health");
    assert.equal(health.body.jobs.total, 3);

    // Replaying a create that succeeded still answers with the job: it adds nothing.
    const replay = await t.post("/jobs", body("a"));
    assert.equal(
      replay.status,
      200,
      `an idempotent replay at the job limit must return the existing job: ${replay.text}`,
    );
    assert.equal(replay.headers.get("Idempotent-Replayed"), "true");

    // Deleting one makes room again.
    const first = (await t.get("/jobs")).body.jobs[0];
    assert.equal((await t.request("DELETE", `/jobs/${first.id}`)).status, 200);
    const after = await t.post("/jobs", body("d"));
    assert.equal(after.status, 201, after.text);
    assert.equal(await jobCount(t), 3);
  });
});

Deno.test("memory limit reached → 507 naming QUEUE_MEMORY_LIMIT; nothing created", async () => {
  await withNode({ queue_memory_limit_bytes: 1 }, async (t) => {
    const res = await t.post("/jobs", { type: "once", timestamp: inMs(MINUTE_MS) });
    assertError(res, 507, "memory_limit", /above QUEUE_MEMORY_LIMIT.*raise the limit/);
    const batch = await t.post("/jobs/batch", {
      jobs: [{ type: "once", timestamp: inMs(MINUTE_MS) }],
    });
    assertError(batch, 507, "memory_limit", /QUEUE_MEMORY_LIMIT/);
    assert.equal(await jobCount(t), 0);
    const health = await t.get("/health");
    assert.equal(health.body.memory.limit_bytes, 1);
  });
});
