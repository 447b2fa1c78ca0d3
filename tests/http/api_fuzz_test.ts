/**
 * Property-based fuzzing of one node's HTTP API (issue 9, item 4a) with fast-check: random and
 * adversarial bodies, headers, query strings, paths and methods for every route, against a real
 * node on a libSQL file over real HTTP, webhooks going to a real sink on loopback.
 *
 * Properties, checked on every request and after every run of requests:
 * - no answer is a 5xx other than 503 with `Retry-After`;
 * - the node stays healthy (`/health` 200, leader, firing; a normal job fires at the end);
 * - the stored state (`GET /jobs`, every page) equals a model of the accepted requests: the jobs
 *   answered 201 (or created from the console), minus the ones deleted, each with the payload,
 *   headers, name and idempotency key it was created with; a create whose idempotency key is live
 *   answers 200 with the same job.
 *
 * Budget: `FUZZ_RUNS` runs (default 150, about 10 s here) of up to 24 requests each;
 * `deno task fuzz --runs N` runs longer. A failure prints fast-check's seed and shrunk case; it
 * becomes a fixed test in `tests/http/input_limits_test.ts` or below.
 *
 * Every URL a generated job can name is the sink's, so no request leaves 127.0.0.1.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type TestNode, withNode } from "../support/node.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? "150");
const SEED = Deno.env.get("FUZZ_SEED");
const HOUR_MS = 3_600_000;

/** One request of a run. */
interface FuzzRequest {
  method: string;
  /** Path with `{id}` standing for a live job's id (or a made-up one when there is none). */
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string | Uint8Array<ArrayBuffer> | null;
}

/** What a test keeps of a job it saw accepted. */
interface ModelJob {
  name: unknown;
  payload: unknown;
  headers: unknown;
  idempotency_key: unknown;
}

// ---------------------------------------------------------------------------------------------
// Values

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** Strings with the edge cases of UTF-16 and JSON: lone surrogates, NUL, U+2028, emoji, BOM. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.array(
    fc.oneof(
      loneSurrogate,
      fc.constantFrom("\u0000", "\u2028", "\u2029", "\ufeff", "😀", "\u0301", '"', "\\", "\n"),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 8 },
  ).map((parts) => parts.join("")),
  fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", ""),
);

const nested = (depth: number, inner: unknown): unknown => {
  let value = inner;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { d: value };
  return value;
};

/** Payloads: ordinary JSON, and values at and over every limit. */
const payload: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 2, arbitrary: fc.dictionary(nastyString, fc.oneof(nastyString, fc.double())) },
  fc.integer({ min: 60, max: 70 }).map((depth) => nested(depth, 1)),
  fc.integer({ min: 1_000, max: 5_000 }).map((depth) => nested(depth, null)),
  fc.integer({ min: 65_530, max: 65_540 }).map((n) => "x".repeat(n)),
  fc.integer({ min: 262_100, max: 262_200 }).map((
    n,
  ) => ["x".repeat(n - 30_000), "y".repeat(30_000)]),
  fc.integer({ min: 9_999, max: 10_001 }).map((n) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 0]))
  ),
  fc.integer({ min: 99_999, max: 100_001 }).map((n) => new Array(n).fill(0)),
  fc.constantFrom(1e308, -0, 5e-324, Number.MAX_SAFE_INTEGER + 2, 1e21, true, null, ""),
);

/** A time: future mostly, but also past, extreme and malformed. */
const timestamp = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.integer({ min: 2, max: 1_000 }).map((h) =>
      new Date(Date.now() + h * HOUR_MS).toISOString()
    ),
  },
  fc.constantFrom(
    "+275760-09-13T00:00:00.000Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "2020-01-01T00:00:00Z",
    "2030-02-30T00:00:00Z",
    "2030-01-01T00:00:00",
    "2030-01-01T25:00:00Z",
    "2030-01-01T00:00:00+99:99",
    "",
  ),
  nastyString,
  fc.integer(),
);

/**
 * A job body that is valid or close to it: each field present, absent or replaced by a wrong or
 * extreme value. The webhook URL is the sink's or something no fetch can reach.
 */
const jobBody = (sink_url: string) =>
  fc.record({
    type: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom("once", "cron", "interval", "unico", "recurrente") },
      fc.constantFrom("__proto__", "toString", "ONCE", "", "constructor"),
      nastyString,
      fc.integer(),
    ),
    name: fc.option(fc.oneof(nastyString, fc.string({ minLength: 190, maxLength: 210 })), {
      nil: undefined,
    }),
    timestamp: fc.option(timestamp, { nil: undefined }),
    cron_expression: fc.option(
      fc.oneof(
        fc.constantFrom(
          "0 0 1 1 *",
          "*/5 * * * *",
          "0 0 31 2 *",
          "* * * * * *",
          "@yearly",
          "60 * * * *",
          "0 0 * * 8",
        ),
        nastyString,
      ),
      { nil: undefined },
    ),
    interval_seconds: fc.option(
      fc.oneof(
        fc.constantFrom(0, 1, 0.5, 366 * 86_400, 366 * 86_400 + 1, 1e308, -1, 5e-324),
        fc.double(),
        nastyString,
      ),
      { nil: undefined },
    ),
    starts_at: fc.option(timestamp, { nil: undefined }),
    timezone: fc.option(
      fc.oneof(
        fc.constantFrom("UTC", "Europe/Berlin", "Mars/Olympus", "Etc/GMT+14", ""),
        nastyString,
      ),
      { nil: undefined },
    ),
    webhook_url: fc.option(
      fc.oneof(
        { weight: 4, arbitrary: fc.webPath().map((p) => `${sink_url}/${p}`) },
        fc.constantFrom("ftp://127.0.0.1/", "javascript:alert(1)", "http://", "not a url", ""),
        fc.integer(),
      ),
      { nil: undefined },
    ),
    method: fc.option(fc.constantFrom("POST", "GET", "DELETE", "TRACE", "post", ""), {
      nil: undefined,
    }),
    headers: fc.option(
      fc.oneof(
        fc.dictionary(
          fc.oneof(
            fc.constantFrom("X-A", "Authorization", "Host", "Content-Length", "X-Tickraft-Job-Id"),
            nastyString,
          ),
          fc.oneof(fc.string({ maxLength: 30 }), nastyString, fc.integer()),
          { maxKeys: 5 },
        ),
        fc.constant(
          Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`X-${i}`, "v".repeat(6_000)])),
        ),
        fc.array(fc.string()),
      ),
      { nil: undefined },
    ),
    payload: fc.option(payload, { nil: undefined }),
    secret: fc.option(fc.oneof(fc.string({ minLength: 16, maxLength: 40 }), nastyString), {
      nil: undefined,
    }),
    overlap_policy: fc.option(fc.constantFrom("allow", "forbid", "replace", "other"), {
      nil: undefined,
    }),
    max_attempts: fc.option(fc.oneof(fc.integer({ min: -2, max: 60 }), fc.double()), {
      nil: undefined,
    }),
    timeout_seconds: fc.option(fc.oneof(fc.constantFrom(0, 1, 3_600, 3_601), fc.double()), {
      nil: undefined,
    }),
    idempotency_key: fc.option(fc.oneof(fc.constantFrom("k1", "k2", "k3"), nastyString), {
      nil: undefined,
    }),
    extra: fc.option(fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }), {
      nil: undefined,
    }),
  }, { requiredKeys: [] }).map((record) => {
    const { extra, ...job } = record;
    const body: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(job)) if (value !== undefined) body[key] = value;
    // Recurring jobs mostly start far ahead, so that the sink is not flooded.
    if (body.type !== "once" && body.starts_at === undefined) {
      body.starts_at = new Date(Date.now() + 24 * HOUR_MS).toISOString();
    }
    return { ...body, ...(extra ?? {}) };
  });

const future = fc.integer({ min: 2, max: 1_000 }).map((h) =>
  new Date(Date.now() + h * HOUR_MS).toISOString()
);
const wellFormed = nastyString.filter((text) => text.isWellFormed());

/** A job the API should accept: every required field right, optional ones ordinary or extreme. */
const validJob = (sink_url: string) =>
  fc.tuple(
    fc.oneof(
      fc.record({ type: fc.constantFrom("once", "unico"), timestamp: future }),
      fc.record({
        type: fc.constantFrom("cron", "recurrente"),
        cron_expression: fc.constantFrom("0 0 1 1 *", "*/5 * * * *", "0 12 * * 1-5"),
        starts_at: future,
      }),
      fc.record({
        type: fc.constant("interval"),
        interval_seconds: fc.constantFrom(1, 60, 0.5e1, 366 * 86_400),
        starts_at: future,
      }),
    ),
    fc.record({
      name: wellFormed,
      webhook_url: fc.webPath().map((p) => `${sink_url}/${p}`),
      payload: fc.oneof(
        { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
        fc.constant(nested(64, "deepest allowed")),
        fc.constant({ "\ud800": "\udfff", text: "x".repeat(65_536) }),
        fc.constant(new Array(100_000).fill(1)),
      ),
      headers: fc.dictionary(
        fc.constantFrom("X-A", "X-Tenant", "X-Trace-Id"),
        fc.string({ unit: "binary-ascii", maxLength: 40 }).map((v) =>
          v.replace(/[^\x20-\x7e]/g, "")
        ),
        { maxKeys: 3 },
      ),
      idempotency_key: fc.constantFrom("k1", "k2", "k3", "k4", "k5"),
      max_attempts: fc.integer({ min: 1, max: 50 }),
      timeout_seconds: fc.constantFrom(0.001, 1, 3_600),
      overlap_policy: fc.constantFrom("allow", "forbid", "replace"),
    }, { requiredKeys: [] }),
  ).map(([schedule, rest]) => ({ ...schedule, ...rest }));

/** JSON text with what `JSON.stringify` never writes: duplicate keys, BOM, truncation, junk. */
const rawText = (json: fc.Arbitrary<string>) =>
  fc.oneof(
    json,
    json.map((t) => `\ufeff${t}`),
    fc.tuple(json, fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1))),
    json.map((t) => t.replace(/^\{/, '{"type":"cron","type":"once",')),
    json.map((t) =>
      t.replace(/^\{/, '{"payload":1,"payload":' + "[".repeat(5_000) + "]".repeat(5_000) + ",")
    ),
    fc.constantFrom(
      "[".repeat(100_000),
      "{".repeat(50_000),
      '"'.repeat(10_001),
      "\\",
      "null",
      "[]",
      "1e999",
      "{}",
    ),
    fc.string({ unit: "binary", maxLength: 200 }),
  );

/** Bytes that are not UTF-8. */
const rawBytes = fc.uint8Array({ maxLength: 200 }).map((b) => new Uint8Array([0xff, 0xfe, ...b]));

const query = fc.oneof(
  fc.constant(""),
  fc.dictionary(
    fc.constantFrom("status", "type", "q", "cursor", "limit", "consistency", "done", "error", "x"),
    fc.oneof(
      fc.constantFrom(
        "scheduled",
        "once",
        "0",
        "-1",
        "1e309",
        "1000",
        "1001",
        "linearizable",
        "%",
        "%ED%A0%80",
      ),
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
    ),
    { maxKeys: 4 },
  ).map((d) => Object.entries(d).map(([k, v]) => `${k}=${v}`).join("&")),
  fc.constantFrom(
    "q=%ED%A0%80",
    "q=%E0%A4%A",
    "q=%",
    "limit=1&limit=2",
    "q=" + "x".repeat(4_100),
    "q=" + "%25".repeat(200),
    "cursor=" + "z".repeat(64),
  ),
);

const PATHS = [
  "/jobs",
  "/jobs/batch",
  "/jobs/{id}",
  "/jobs/{id}/status",
  "/jobs/{id}/executions",
  "/jobs/{id}/cancel",
  "/jobs/{id}/pause",
  "/jobs/{id}/resume",
  "/jobs/{id}/trigger",
  "/health",
  "/debug/cluster",
  "/metrics",
  "/openapi.json",
  "/docs",
  "/join",
  "/cluster/members/{id}",
  "/cluster/transfer-leader",
  "/raft/append",
  "/console",
  "/console/jobs",
  "/console/jobs/{id}",
  "/console/jobs/{id}/cancel",
  "/console/jobs/{id}/pause",
  "/console/jobs/{id}/trigger",
  "/console/jobs/{id}/delete",
  "/console/login",
  "/",
];

const path = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...PATHS) },
  fc.webPath().map((p) => `/${p}`),
  fc.constantFrom(
    "/jobs/%ED%A0%80",
    "/jobs/%",
    "/jobs/..%2F..%2Fetc%2Fpasswd",
    "/jobs//status",
    "/jobs/" + "a".repeat(3_000),
    "/JOBS",
    "/jobs/{id}/",
  ),
);

const contentType = fc.constantFrom(
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "multipart/form-data",
  "",
);

const headerValue = fc.string({ unit: "binary-ascii", maxLength: 300 })
  .map((s) => s.replace(/[^\x20-\x7e]/g, "").trim());

/** Anything: any method, path, query, headers and body, mostly wrong. */
const anyRequest = (sink_url: string): fc.Arbitrary<FuzzRequest> => {
  const job = fc.oneof(validJob(sink_url), jobBody(sink_url));
  const jsonBody = fc.oneof(
    { weight: 5, arbitrary: job.map((j) => JSON.stringify(j)) },
    {
      weight: 2,
      arbitrary: fc.array(job, { minLength: 1, maxLength: 4 }).map((jobs) =>
        JSON.stringify({ jobs })
      ),
    },
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.record({
      reason: fc.oneof(nastyString, fc.string({ minLength: 990, maxLength: 1_010 }), fc.integer()),
    })
      .map((v) => JSON.stringify(v)),
    fc.record({ node_id: nastyString, address: fc.constantFrom("http://127.0.0.1:1", "x") })
      .map((v) => JSON.stringify(v)),
  );
  const formBody = fc.dictionary(
    fc.constantFrom(
      "name",
      "type",
      "schedule",
      "timezone",
      "webhook_url",
      "payload",
      "reason",
      "token",
    ),
    fc.oneof(
      fc.constantFrom(
        "once",
        "cron",
        "interval",
        "0 0 1 1 *",
        "3600",
        `${sink_url}/console`,
        "[".repeat(70),
        "{}",
      ),
      timestamp.map(String),
      nastyString,
    ),
    { maxKeys: 6 },
  ).map((d) => new URLSearchParams(d as Record<string, string>).toString());
  return fc.record({
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("GET", "POST", "DELETE") },
      fc.constantFrom("PUT", "PATCH", "HEAD", "OPTIONS", "TRACE-X", "get"),
    ),
    path,
    query,
    body: fc.oneof(
      { weight: 6, arbitrary: rawText(jsonBody) },
      { weight: 2, arbitrary: formBody },
      rawBytes,
      fc.constant(null),
    ),
    content_type: contentType,
    idempotency_key: fc.option(fc.oneof(fc.constantFrom("k1", "k2", "k3", ""), headerValue), {
      nil: undefined,
    }),
    accept: fc.option(fc.constantFrom("text/html", "*/*", "application/json", "x/y;;;"), {
      nil: undefined,
    }),
    authorization: fc.option(fc.oneof(headerValue, fc.constant("Bearer ")), { nil: undefined }),
  }).map((r) => {
    const headers: Record<string, string> = {};
    if (r.content_type !== "") headers["Content-Type"] = r.content_type;
    if (r.idempotency_key !== undefined) headers["Idempotency-Key"] = r.idempotency_key;
    if (r.accept !== undefined) headers["Accept"] = r.accept;
    if (r.authorization !== undefined) headers["Authorization"] = r.authorization;
    return { method: r.method, path: r.path, query: r.query, headers, body: r.body };
  });
};

/** A create as a client means it, valid or nearly so, once or in a batch. */
const createRequest = (sink_url: string): fc.Arbitrary<FuzzRequest> =>
  fc.record({
    batch: fc.boolean(),
    jobs: fc.array(
      fc.oneof({ weight: 4, arbitrary: validJob(sink_url) }, jobBody(sink_url)),
      { minLength: 1, maxLength: 5 },
    ),
    idempotency_key: fc.option(fc.constantFrom("k1", "k2", "k6"), { nil: undefined }),
  }).map(({ batch, jobs, idempotency_key }) => ({
    method: "POST",
    path: batch ? "/jobs/batch" : "/jobs",
    query: "",
    headers: {
      "Content-Type": "application/json",
      ...(idempotency_key === undefined ? {} : { "Idempotency-Key": idempotency_key }),
    },
    body: JSON.stringify(batch ? { jobs } : jobs[0]),
  }));

/** An action on a live job through the API or the console, with the method it expects. */
const jobAction = fc.record({
  route: fc.constantFrom(
    ["GET", "/jobs/{id}"],
    ["GET", "/jobs/{id}/status"],
    ["GET", "/jobs/{id}/executions"],
    ["DELETE", "/jobs/{id}"],
    ["POST", "/jobs/{id}/cancel"],
    ["POST", "/jobs/{id}/pause"],
    ["POST", "/jobs/{id}/resume"],
    ["POST", "/jobs/{id}/trigger"],
    ["GET", "/console/jobs/{id}"],
    ["POST", "/console/jobs/{id}/cancel"],
    ["POST", "/console/jobs/{id}/delete"],
  ),
  query: fc.oneof({ weight: 3, arbitrary: fc.constant("") }, query),
  reason: fc.option(fc.oneof(wellFormed, fc.string({ minLength: 995, maxLength: 1_005 })), {
    nil: undefined,
  }),
}).map(({ route: [method, path], query, reason }): FuzzRequest => ({
  method,
  path,
  query,
  headers: path.startsWith("/console")
    ? { "Content-Type": "application/x-www-form-urlencoded" }
    : { "Content-Type": "application/json" },
  body: reason === undefined
    ? null
    : path.startsWith("/console")
    ? new URLSearchParams({ reason }).toString()
    : JSON.stringify({ reason }),
}));

const requestArb = (sink_url: string): fc.Arbitrary<FuzzRequest> =>
  fc.oneof(
    { weight: 4, arbitrary: createRequest(sink_url) },
    { weight: 3, arbitrary: jobAction },
    { weight: 4, arbitrary: anyRequest(sink_url) },
  );

// ---------------------------------------------------------------------------------------------
// Running requests against the node and the model

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

const CAN_HAVE_BODY = new Set(["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE-X"]);

async function send(t: TestNode, r: FuzzRequest, id: string): Promise<Answer> {
  const url = `${t.url}${r.path.replaceAll("{id}", id)}${r.query === "" ? "" : `?${r.query}`}`;
  const init: RequestInit = { method: r.method, headers: r.headers, redirect: "manual" };
  if (r.body !== null && CAN_HAVE_BODY.has(r.method.toUpperCase())) init.body = r.body;
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function assertNoServerError(r: FuzzRequest, answer: Answer): void {
  const ok = answer.status < 500 ||
    (answer.status === 503 && answer.headers.get("Retry-After") !== null);
  assert.ok(
    ok,
    `${r.method} ${r.path}?${r.query.slice(0, 200)} → ${answer.status}: ${
      answer.text.slice(0, 500)
    }`,
  );
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** The model's view of the request that was just answered. */
async function observe(
  t: TestNode,
  model: Map<string, ModelJob>,
  r: FuzzRequest,
  id: string,
  answer: Answer,
): Promise<void> {
  const method = r.method.toUpperCase();
  // deno-lint-ignore no-explicit-any
  const body = parseJson(answer.text) as any;
  const expectLive = (key: unknown) =>
    [...model.entries()].find(([, job]) => key !== null && job.idempotency_key === key);
  if (method === "POST" && r.path === "/jobs" && (answer.status === 201 || answer.status === 200)) {
    const live = expectLive(body.idempotency_key);
    if (answer.status === 200) {
      assert.ok(live !== undefined, `200 for key ${body.idempotency_key} that no live job holds`);
      assert.equal(body.id, live[0], "an idempotent replay answers the job holding the key");
      return;
    }
    assert.equal(live, undefined, `201 for key ${body.idempotency_key} that ${live?.[0]} holds`);
    model.set(body.id, pick(body));
  } else if (method === "POST" && r.path === "/jobs/batch" && answer.status === 201) {
    for (const job of body.jobs) {
      const live = expectLive(job.idempotency_key);
      if (job.created) {
        assert.equal(live, undefined, `batch created ${job.id} for a live key`);
        model.set(job.id, pick(job));
      } else assert.equal(job.id, live?.[0], "an existing key in a batch returns its job");
    }
  } else if (method === "DELETE" && r.path === "/jobs/{id}" && answer.status === 200) {
    assert.ok(model.delete(id), `deleted ${id}, which the model does not hold`);
  } else if (method === "POST" && answer.status === 303) {
    const location = answer.headers.get("Location") ?? "";
    const created = /^\/console\/jobs\/([^/?]+)\?done=created$/.exec(location);
    if (r.path === "/console/jobs" && created !== null) {
      const job = await t.get(`/jobs/${created[1]}`);
      assert.equal(job.status, 200, job.text);
      model.set(job.body.id, pick(job.body));
    }
    if (r.path === "/console/jobs/{id}/delete" && location.endsWith("done=deleted")) {
      assert.ok(model.delete(id), `console deleted ${id}, which the model does not hold`);
    }
  }
}

// deno-lint-ignore no-explicit-any
const pick = (job: any): ModelJob => ({
  name: job.name,
  payload: job.payload,
  headers: job.headers,
  idempotency_key: job.idempotency_key,
});

/** Every job the node stores, page by page. */
async function storedJobs(t: TestNode): Promise<Map<string, ModelJob>> {
  const stored = new Map<string, ModelJob>();
  let cursor: string | null = null;
  do {
    const res = await t.get(`/jobs?limit=1000${cursor === null ? "" : `&cursor=${cursor}`}`);
    assert.equal(res.status, 200, res.text);
    for (const job of res.body.jobs) stored.set(job.id, pick(job));
    cursor = res.body.next_cursor;
  } while (cursor !== null);
  return stored;
}

async function assertHealthyAndModelled(t: TestNode, model: Map<string, ModelJob>): Promise<void> {
  const health = await t.get("/health");
  assert.equal(health.status, 200, health.text);
  // "degraded" reports webhook outcomes (a 1 ms timeout, a delivery aborted by a delete), not
  // the node: it still leads and fires (checked at the end with a normal job).
  assert.ok(["ok", "degraded"].includes(health.body.status), health.text);
  assert.equal(health.body.role, "leader", health.text);
  assert.equal(health.body.firing, true, health.text);
  const stored = await storedJobs(t);
  assert.deepEqual([...stored.keys()].sort(), [...model.keys()].sort());
  for (const [id, job] of model) assert.deepEqual(stored.get(id), job, `job ${id}`);
}

/** Deletes every job so that each run starts empty (and nothing keeps firing). */
async function reset(t: TestNode, model: Map<string, ModelJob>): Promise<void> {
  for (const id of [...model.keys()]) {
    const res = await t.request("DELETE", `/jobs/${id}`);
    assert.equal(res.status, 200, res.text);
    model.delete(id);
  }
}

async function runFuzz(
  t: TestNode,
  requests: fc.Arbitrary<FuzzRequest[]>,
  runs: number,
): Promise<void> {
  const model = new Map<string, ModelJob>();
  const statuses = new Map<number, number>();
  let created = 0;
  await fc.assert(
    fc.asyncProperty(requests, fc.nat(), async (batch, pick_seed) => {
      await reset(t, model);
      let n = pick_seed;
      for (const r of batch) {
        const ids = [...model.keys()];
        const id = ids.length === 0 ? "job-that-does-not-exist" : ids[n++ % ids.length];
        const answer = await send(t, r, id);
        assertNoServerError(r, answer);
        const before = model.size;
        await observe(t, model, r, id, answer);
        created += Math.max(0, model.size - before);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      }
      await assertHealthyAndModelled(t, model);
    }),
    { numRuns: runs, ...(SEED === undefined ? {} : { seed: Number(SEED) }) },
  );
  await reset(t, model);
  console.log(`created ${created} jobs; answers by status:`, Object.fromEntries(statuses));
  // A fuzzer whose jobs are all refused would check the model against nothing.
  assert.ok(created > 0 && (statuses.get(400) ?? 0) > 0, "no job was accepted or none refused");
}

Deno.test({
  name: "API fuzz: random and adversarial requests to every route; no 5xx, healthy, modelled",
  // Deliveries in flight to the sink finish after the property's last request.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withNode({ execution_timeout_ms: 2_000 }, async (t) => {
      const sink = await t.sink();
      await runFuzz(t, fc.array(requestArb(sink.url), { minLength: 1, maxLength: 24 }), RUNS);
      const after = await t.post("/jobs", {
        type: "once",
        timestamp: new Date(Date.now() + 300).toISOString(),
        webhook_url: `${sink.url}/after-fuzz`,
      });
      assert.equal(after.status, 201, after.text);
      await sink.waitFor((reqs) => reqs.some((r) => r.path === "/after-fuzz"), 10_000);
    });
  },
});
