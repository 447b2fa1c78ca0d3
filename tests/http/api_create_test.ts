/**
 * POST /jobs over real HTTP against a real node: every accepted shape (seed and English), the
 * job JSON it answers with, next_run_at, and idempotent replays.
 */
import assert from "node:assert/strict";
import { inMs, withNode } from "../support/node.ts";

const HOOK = "http://127.0.0.1:9999/hook";
const MINUTE_MS = 60_000;

Deno.test("POST /jobs: seed unico + timestamp → 201 with the job JSON, next_run_at = timestamp", async () => {
  await withNode({}, async (t) => {
    const timestamp = new Date(Date.now() + 10 * MINUTE_MS).toISOString();
    const res = await t.post("/jobs", {
      type: "unico",
      timestamp,
      webhook_url: HOOK,
      payload: { message: "Merry Christmas!" },
    });
    assert.equal(res.status, 201, res.text);
    const job = res.body;
    assert.match(job.id, /^[0-9A-Z]{26}$/);
    assert.equal(job.type, "unico");
    assert.equal(job.kind, "once");
    assert.equal(job.timestamp, timestamp);
    assert.equal(job.next_run_at, timestamp);
    assert.equal(job.status, "pending");
    assert.equal(job.webhook_url, HOOK);
    assert.equal(job.method, "POST");
    assert.deepEqual(job.payload, { message: "Merry Christmas!" });
    assert.equal(job.has_secret, false);
    assert.equal(job.overlap_policy, "allow");
    assert.equal(job.attempt_count, 0);
    assert.equal(job.run_count, 0);
    assert.equal(job.cancel_reason, null);
    // Defaults from the node's config.
    assert.equal(job.max_attempts, t.config.max_attempts);
    assert.equal(job.timeout_seconds, t.config.execution_timeout_ms / 1_000);
    assert.equal(job.catchup_window_seconds, t.config.catchup_window_ms / 1_000);

    const got = await t.get(`/jobs/${job.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, job);
  });
});

Deno.test("POST /jobs: seed recurrente + cron (daily at midnight, every 15 min) → next_run_at", async () => {
  await withNode({}, async (t) => {
    const before = Date.now();
    const daily = await t.post("/jobs", {
      type: "recurrente",
      cron_expression: "0 0 * * *",
      webhook_url: HOOK,
    });
    assert.equal(daily.status, 201, daily.text);
    assert.equal(daily.body.type, "recurrente");
    assert.equal(daily.body.kind, "cron");
    assert.equal(daily.body.timezone, "UTC");
    const midnight = new Date(before);
    midnight.setUTCHours(24, 0, 0, 0);
    assert.equal(daily.body.next_run_at, midnight.toISOString());

    // The seed's job without a webhook_url is accepted (it records executions only).
    const quarter = await t.post("/jobs", { type: "recurrente", cron_expression: "*/15 * * * *" });
    assert.equal(quarter.status, 201, quarter.text);
    assert.equal(quarter.body.webhook_url, null);
    const next = Date.parse(quarter.body.next_run_at);
    assert.equal(next % (15 * MINUTE_MS), 0, quarter.body.next_run_at);
    assert.ok(next > before && next <= Date.now() + 15 * MINUTE_MS, quarter.body.next_run_at);
  });
});

Deno.test("POST /jobs: seed recurrente + last_date, starts_at/ends_at and timezone", async () => {
  await withNode({}, async (t) => {
    // Weekdays at 9 AM in New York, from a Saturday in January 2031 (EST, UTC-5) to the year's end.
    const seed = await t.post("/jobs", {
      type: "recurrente",
      cron_expression: "0 9 * * 1-5",
      timezone: "America/New_York",
      starts_at: "2031-01-04T00:00:00Z",
      last_date: "2031-12-31T23:59:59Z",
      webhook_url: HOOK,
    });
    assert.equal(seed.status, 201, seed.text);
    assert.equal(seed.body.timezone, "America/New_York");
    assert.equal(seed.body.starts_at, "2031-01-04T00:00:00.000Z");
    assert.equal(seed.body.last_date, "2031-12-31T23:59:59.000Z");
    assert.equal(seed.body.next_run_at, "2031-01-06T14:00:00.000Z"); // Monday 09:00 EST

    // In summer the same wall time is 13:00Z (EDT); ends_at is the English name of last_date.
    const summer = await t.post("/jobs", {
      type: "cron",
      cron_expression: "0 9 * * *",
      timezone: "America/New_York",
      starts_at: "2031-07-01T00:00:00Z",
      ends_at: "2031-07-31T00:00:00Z",
    });
    assert.equal(summer.status, 201, summer.text);
    assert.equal(summer.body.type, "cron");
    assert.equal(summer.body.last_date, "2031-07-31T00:00:00.000Z");
    assert.equal(summer.body.next_run_at, "2031-07-01T13:00:00.000Z");

    // A last_date before any occurrence is refused with a message about the dates.
    const empty = await t.post("/jobs", {
      type: "recurrente",
      cron_expression: "0 9 * * *",
      starts_at: "2031-07-01T10:00:00Z",
      last_date: "2031-07-01T11:00:00Z",
    });
    assert.equal(empty.status, 400, empty.text);
    assert.equal(empty.body.code, "invalid_request");
    assert.match(empty.body.error, /no occurrence.*last_date/);
    assert.deepEqual(empty.body.details.map((d: { path: string }) => d.path), ["last_date"]);
  });
});

Deno.test("POST /jobs: cron with a seconds field and interval jobs get sub-minute next_run_at", async () => {
  await withNode({}, async (t) => {
    const before = Date.now();
    const seconds = await t.post("/jobs", { type: "cron", cron_expression: "*/5 * * * * *" });
    assert.equal(seconds.status, 201, seconds.text);
    const next = Date.parse(seconds.body.next_run_at);
    assert.equal(next % 5_000, 0, seconds.body.next_run_at);
    assert.ok(next > before && next <= Date.now() + 5_000, seconds.body.next_run_at);

    const interval = await t.post("/jobs", { type: "interval", interval_seconds: 90 });
    assert.equal(interval.status, 201, interval.text);
    assert.equal(interval.body.kind, "interval");
    assert.equal(interval.body.interval_seconds, 90);
    assert.equal(
      Date.parse(interval.body.next_run_at),
      Date.parse(interval.body.created_at) + 90_000,
    );

    const anchored = await t.post("/jobs", {
      type: "interval",
      interval_seconds: 3_600,
      starts_at: "2031-03-01T12:00:00Z",
    });
    assert.equal(anchored.status, 201, anchored.text);
    assert.equal(anchored.body.next_run_at, "2031-03-01T12:00:00.000Z");
  });
});

Deno.test("POST /jobs: method, headers, payload, secret (never echoed), policies and limits", async () => {
  await withNode({}, async (t) => {
    const body = {
      type: "once",
      name: "nightly export",
      timestamp: inMs(MINUTE_MS),
      webhook_url: "https://example.com/hooks/export?tenant=7",
      method: "PUT",
      headers: { Authorization: "Bearer abc", "X-Custom": "1" },
      payload: { nested: { list: [1, "two", null] }, flag: true },
      secret: "a-secret-of-more-than-16-chars",
      overlap_policy: "forbid",
      max_attempts: 7,
      timeout_seconds: 2.5,
      catchup_window_seconds: 30,
    };
    const res = await t.post("/jobs", body);
    assert.equal(res.status, 201, res.text);
    const job = res.body;
    assert.equal(job.name, "nightly export");
    assert.equal(job.method, "PUT");
    assert.deepEqual(job.headers, body.headers);
    assert.deepEqual(job.payload, body.payload);
    assert.equal(job.has_secret, true);
    assert.equal(job.overlap_policy, "forbid");
    assert.equal(job.max_attempts, 7);
    assert.equal(job.timeout_seconds, 2.5);
    assert.equal(job.catchup_window_seconds, 30);
    for (
      const text of [res.text, (await t.get(`/jobs/${job.id}`)).text, (await t.get("/jobs")).text]
    ) {
      assert.ok(!text.includes(body.secret), `the secret leaked: ${text}`);
      assert.ok(!/"secret"/.test(text), `a "secret" field is shown: ${text}`);
    }

    // A non-object payload (string, number) is stored as given.
    const scalar = await t.post("/jobs", {
      type: "once",
      timestamp: inMs(MINUTE_MS),
      payload: "plain text",
      overlap_policy: "replace",
    });
    assert.equal(scalar.status, 201, scalar.text);
    assert.equal(scalar.body.payload, "plain text");
    assert.equal(scalar.body.overlap_policy, "replace");
  });
});

Deno.test("POST /jobs: a one-off up to a few seconds late is accepted and due at once", async () => {
  await withNode({}, async (t) => {
    const res = await t.post("/jobs", { type: "once", timestamp: inMs(-1_000) });
    assert.equal(res.status, 201, res.text);
    assert.ok(Date.parse(res.body.next_run_at) >= Date.parse(res.body.timestamp));
  });
});

Deno.test("POST /jobs: the same Idempotency-Key header returns the same job, 200, Idempotent-Replayed", async () => {
  await withNode({}, async (t) => {
    const body = { type: "once", timestamp: inMs(MINUTE_MS), webhook_url: HOOK };
    const first = await t.post("/jobs", body, { "Idempotency-Key": "order-42" });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.headers.get("Idempotent-Replayed"), null);
    assert.equal(first.body.idempotency_key, "order-42");

    const again = await t.post("/jobs", body, { "Idempotency-Key": "order-42" });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.headers.get("Idempotent-Replayed"), "true");
    assert.equal(again.body.id, first.body.id);
    assert.deepEqual(again.body, first.body);

    // The body's idempotency_key is the same key.
    const viaBody = await t.post("/jobs", { ...body, idempotency_key: "order-42" });
    assert.equal(viaBody.status, 200, viaBody.text);
    assert.equal(viaBody.headers.get("Idempotent-Replayed"), "true");
    assert.equal(viaBody.body.id, first.body.id);

    // The header wins over the body's key.
    const both = await t.post("/jobs", { ...body, idempotency_key: "from-body" }, {
      "Idempotency-Key": "order-42",
    });
    assert.equal(both.status, 200, both.text);
    assert.equal(both.body.id, first.body.id);

    // A different key makes a different job.
    const other = await t.post("/jobs", { ...body, idempotency_key: "order-43" });
    assert.equal(other.status, 201, other.text);
    assert.notEqual(other.body.id, first.body.id);

    const list = await t.get("/jobs");
    assert.deepEqual(
      list.body.jobs.map((j: { id: string }) => j.id),
      [first.body.id, other.body.id],
    );
  });
});

Deno.test("POST /jobs: concurrent creates with one key make one job", async () => {
  await withNode({}, async (t) => {
    const body = { type: "once", timestamp: inMs(MINUTE_MS), idempotency_key: "burst" };
    const results = await Promise.all(Array.from({ length: 10 }, () => t.post("/jobs", body)));
    assert.deepEqual(results.map((r) => r.status).sort(), [
      200,
      200,
      200,
      200,
      200,
      200,
      200,
      200,
      200,
      201,
    ]);
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    assert.equal((await t.get("/jobs")).body.jobs.length, 1);
  });
});
