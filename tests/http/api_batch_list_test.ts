/**
 * POST /jobs/batch (all or nothing) and GET /jobs (filters, text search, cursor pagination) over
 * real HTTP against a real node.
 */
import assert from "node:assert/strict";
import { inMs, type TestNode, withNode } from "../support/node.ts";

const MINUTE_MS = 60_000;

const once = (name: string) => ({ type: "once", name, timestamp: inMs(10 * MINUTE_MS) });

async function names(t: TestNode, query = ""): Promise<string[]> {
  const res = await t.get(`/jobs?limit=1000${query}`);
  assert.equal(res.status, 200, res.text);
  return res.body.jobs.map((j: { name: string }) => j.name);
}

/** The names listed, sorted: for tests whose subject is which jobs match, not their order. */
async function nameSet(t: TestNode, query = ""): Promise<string[]> {
  return (await names(t, query)).sort();
}

const ORDER_BUG = "jobs created in the same millisecond (one batch, or fast sequential creates) " +
  "must list in creation order; ulid() in src/scheduler/ids.ts is not monotonic within a " +
  "millisecond, so ids made in one ms sort randomly";

Deno.test("POST /jobs/batch: all valid → 201 with counts and the jobs in the order given", async () => {
  await withNode({}, async (t) => {
    const jobs = Array.from({ length: 30 }, (_, i) => once(`b${String(i).padStart(2, "0")}`));
    jobs[5] = { type: "recurrente", name: "b05", cron_expression: "*/10 * * * *" } as never;
    const res = await t.post("/jobs/batch", { jobs });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.created, 30);
    assert.equal(res.body.existing, 0);
    assert.equal(res.body.jobs.length, 30);
    assert.deepEqual(res.body.jobs.map((j: { name: string }) => j.name), jobs.map((j) => j.name));
    assert.ok(res.body.jobs.every((j: { created: boolean }) => j.created));
    assert.equal(res.body.jobs[5].kind, "cron");
    // Listed in creation order, which for a batch is the order of its items.
    assert.deepEqual(await names(t), jobs.map((j) => j.name), ORDER_BUG);
  });
});

Deno.test("POST /jobs/batch: items with a stored idempotency key are returned, not duplicated", async () => {
  await withNode({}, async (t) => {
    const first = await t.post("/jobs", { ...once("a"), idempotency_key: "k-a" });
    assert.equal(first.status, 201, first.text);
    const res = await t.post("/jobs/batch", {
      jobs: [
        { ...once("a again"), idempotency_key: "k-a" },
        { ...once("b"), idempotency_key: "k-b" },
        { ...once("b twice"), idempotency_key: "k-b" },
      ],
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.created, 1);
    assert.equal(res.body.existing, 2);
    assert.equal(res.body.jobs[0].id, first.body.id);
    assert.equal(res.body.jobs[0].created, false);
    assert.equal(res.body.jobs[1].created, true);
    assert.equal(res.body.jobs[2].id, res.body.jobs[1].id);
    assert.deepEqual(await names(t), ["a", "b"]);
  });
});

Deno.test("POST /jobs/batch: invalid items → 400 with per-item paths, and nothing is created", async () => {
  await withNode({}, async (t) => {
    assert.equal((await t.post("/jobs", once("before"))).status, 201);
    const res = await t.post("/jobs/batch", {
      jobs: [
        once("ok-0"),
        once("ok-1"),
        { type: "recurrente", cron_expression: "not a cron" },
        { type: "once", timestamp: inMs(MINUTE_MS), webhook_url: "ftp://example.com/" },
      ],
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.code, "invalid_request");
    assert.match(res.body.error, /2 of 4 jobs are invalid; none was created/);
    const paths = res.body.details.map((d: { path: string }) => d.path);
    assert.deepEqual(paths, ["jobs.2.cron_expression", "jobs.3.webhook_url"]);
    assert.match(res.body.details[0].message, /cron/i);
    assert.match(res.body.details[1].message, /use an http\(s\) URL/);
    assert.deepEqual(await names(t), ["before"]);

    // A one-off in the past is found after the shape checks; it names its item and field too.
    const past = await t.post("/jobs/batch", {
      jobs: [once("ok"), { type: "unico", timestamp: "2024-12-25T10:00:00Z" }],
    });
    assert.equal(past.status, 400, past.text);
    assert.match(past.body.error, /1 of 2 jobs are invalid; none was created/);
    assert.deepEqual(past.body.details.map((d: { path: string }) => d.path), [
      "jobs.1.timestamp",
    ]);
    assert.match(past.body.details[0].message, /in the past.*future/);
    assert.deepEqual(await names(t), ["before"]);
  });
});

Deno.test("POST /jobs/batch: malformed batches → 400", async () => {
  await withNode({ batch_max_jobs: 5 }, async (t) => {
    const over = await t.post("/jobs/batch", {
      jobs: Array.from({ length: 6 }, (_, i) => once(`j${i}`)),
    });
    assert.equal(over.status, 400, over.text);
    assert.match(over.body.error, /at most 5 jobs \(BATCH_MAX_JOBS\); split it/);

    const empty = await t.post("/jobs/batch", { jobs: [] });
    assert.equal(empty.status, 400, empty.text);
    assert.deepEqual(empty.body.details.map((d: { path: string }) => d.path), ["jobs"]);

    const notWrapped = await t.post("/jobs/batch", [once("x")]);
    assert.equal(notWrapped.status, 400, notWrapped.text);
    assert.match(notWrapped.body.error, /invalid batch/);

    const malformed = await t.post("/jobs/batch", "{");
    assert.equal(malformed.status, 400, malformed.text);
    assert.match(malformed.body.error, /malformed JSON/);
    assert.deepEqual(await names(t), []);
  });
});

Deno.test("POST /jobs/batch: a batch past QUEUE_JOB_LIMIT → 507 and nothing is created", async () => {
  await withNode({ queue_job_limit: 5 }, async (t) => {
    const three = await t.post("/jobs/batch", { jobs: [once("a"), once("b"), once("c")] });
    assert.equal(three.status, 201, three.text);
    const over = await t.post("/jobs/batch", { jobs: [once("d"), once("e"), once("f")] });
    assert.equal(over.status, 507, over.text);
    assert.equal(over.body.code, "job_limit");
    assert.match(over.body.error, /QUEUE_JOB_LIMIT=5/);
    assert.deepEqual(await nameSet(t), ["a", "b", "c"]);
    // Exactly up to the limit is fine.
    const two = await t.post("/jobs/batch", { jobs: [once("d"), once("e")] });
    assert.equal(two.status, 201, two.text);
    assert.deepEqual(await nameSet(t), ["a", "b", "c", "d", "e"]);
  });
});

Deno.test("GET /jobs: filters by status and type (seed aliases too) and searches text", async () => {
  await withNode({}, async (t) => {
    const created = await t.post("/jobs/batch", {
      jobs: [
        { ...once("invoice run"), webhook_url: "https://billing.example.com/run" },
        { type: "recurrente", name: "daily report", cron_expression: "0 0 * * *" },
        { type: "interval", name: "heartbeat", interval_seconds: 30 },
        { ...once("100% done"), payload: { customer: "acme-corp" } },
        { type: "cron", name: "cleanup", cron_expression: "*/5 * * * *" },
      ],
    });
    assert.equal(created.status, 201, created.text);
    const [invoice, , , , cleanup] = created.body.jobs;
    const cancel = await t.post(`/jobs/${cleanup.id}/cancel`, { reason: "obsolete" });
    assert.equal(cancel.status, 200, cancel.text);
    const pause = await t.post(`/jobs/${invoice.id}/pause`);
    assert.equal(pause.status, 200, pause.text);

    assert.deepEqual(await nameSet(t, "&status=cancelled"), ["cleanup"]);
    assert.deepEqual(await nameSet(t, "&status=paused"), ["invoice run"]);
    assert.deepEqual(await nameSet(t, "&status=pending"), [
      "100% done",
      "daily report",
      "heartbeat",
    ]);
    assert.deepEqual(await nameSet(t, "&status=completed"), []);

    assert.deepEqual(await nameSet(t, "&type=unico"), ["100% done", "invoice run"]);
    assert.deepEqual(await nameSet(t, "&type=once"), ["100% done", "invoice run"]);
    assert.deepEqual(await nameSet(t, "&type=recurrente"), ["cleanup", "daily report"]);
    assert.deepEqual(await nameSet(t, "&type=interval"), ["heartbeat"]);
    assert.deepEqual(await nameSet(t, "&type=cron&status=pending"), ["daily report"]);

    assert.deepEqual(await nameSet(t, "&q=report"), ["daily report"]);
    assert.deepEqual(await nameSet(t, "&q=billing.example"), ["invoice run"]);
    assert.deepEqual(await nameSet(t, "&q=acme-corp"), ["100% done"]);
    assert.deepEqual(await nameSet(t, "&q=*%2F5"), ["cleanup"]);
    assert.deepEqual(await nameSet(t, `&q=${invoice.id}`), ["invoice run"]);
    // LIKE wildcards are matched literally.
    assert.deepEqual(await nameSet(t, "&q=%25"), ["100% done"]);
    assert.deepEqual(await nameSet(t, "&q=_"), []);
    assert.deepEqual(await nameSet(t, "&q=nothing-matches"), []);
  });
});

Deno.test("GET /jobs: cursor pagination walks 25 jobs in creation order without duplicates", async () => {
  await withNode({}, async (t) => {
    const expected: string[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await t.post("/jobs", once(`p${String(i).padStart(2, "0")}`));
      assert.equal(res.status, 201, res.text);
      expected.push(res.body.id);
    }
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.get(`/jobs?limit=10${cursor === null ? "" : `&cursor=${cursor}`}`);
      assert.equal(res.status, 200, res.text);
      sizes.push(res.body.jobs.length);
      seen.push(...res.body.jobs.map((j: { id: string }) => j.id));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    assert.deepEqual(sizes, [10, 10, 5]);
    assert.equal(new Set(seen).size, 25);
    assert.deepEqual(seen, expected, ORDER_BUG);

    // Filters and the cursor combine.
    const filtered = await t.get(`/jobs?limit=2&q=p1&cursor=${expected[10]}`);
    assert.deepEqual(
      filtered.body.jobs.map((j: { name: string }) => j.name),
      ["p11", "p12"],
    );
    assert.equal(filtered.body.next_cursor, expected[12]);
  });
});
