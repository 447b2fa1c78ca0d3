/**
 * Bounded input shapes at the HTTP edge (issue 9, item 1): each limit gives the right status and a
 * message naming the field, the limit and its setting, nothing is created on any refusal, and the
 * deep-payload body that used to end the node's log loop is a 400 after which the node still
 * fires a normal job. Over real HTTP against a real node on a libSQL file; the reader itself is
 * also checked directly with small limits.
 */
import assert from "node:assert/strict";
import { defaultConfig, loadConfig } from "../../src/config.ts";
import {
  DEFAULT_INPUT_LIMITS,
  FIELDS_AT_TOP,
  FIELDS_IN_BATCH,
  type InputLimits,
  inputLimits,
  parseBoundedField,
  parseBoundedJson,
} from "../../src/http/bounded_json.ts";
import { PayloadTooLargeError } from "../../src/http/errors.ts";
import { ValidationError } from "../../src/errors.ts";
import { type ApiResponse, inMs, type TestNode, withNode } from "../support/node.ts";

const MINUTE_MS = 60_000;
const LIMITS = DEFAULT_INPUT_LIMITS;

const nested = (depth: number, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth);

function assertRefused(res: ApiResponse, status: number, message: RegExp, path?: string): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.body.error, message, res.text);
  if (path !== undefined) {
    assert.deepEqual(res.body.details.map((d: { path: string }) => d.path), [path], res.text);
  }
}

async function jobCount(t: TestNode): Promise<number> {
  const res = await t.get("/jobs?limit=1000");
  assert.equal(res.status, 200, res.text);
  return res.body.jobs.length;
}

Deno.test("the defaults are the documented ones and each is configurable by env and flag", () => {
  assert.deepEqual(LIMITS, {
    depth_max: 64,
    keys_max: 10_000,
    items_max: 100_000,
    string_chars_max: 65_536,
    payload_bytes_max: 256 * 1024,
    headers_bytes_max: 16 * 1024,
    query_bytes_max: 4 * 1024,
  });
  const loaded = loadConfig(["--input-max-depth", "8", "--input-max-payload", "1KiB"], {
    INPUT_MAX_KEYS: "5",
    INPUT_MAX_ITEMS: "6",
    INPUT_MAX_STRING: "7",
    INPUT_MAX_HEADERS: "2KB",
    INPUT_MAX_QUERY: "100",
  });
  assert.ok(!loaded.help);
  assert.deepEqual(inputLimits(loaded.config), {
    depth_max: 8,
    keys_max: 5,
    items_max: 6,
    string_chars_max: 7,
    payload_bytes_max: 1024,
    headers_bytes_max: 2048,
    query_bytes_max: 100,
  });
  assert.throws(() => loadConfig([], { INPUT_MAX_DEPTH: "0" }), /INPUT_MAX_DEPTH="0"/);
  assert.deepEqual(inputLimits(defaultConfig()), LIMITS);
});

Deno.test("the reader with small limits: each limit, its path and its error class", () => {
  const small: InputLimits = {
    depth_max: 3,
    keys_max: 3,
    items_max: 3,
    string_chars_max: 10,
    payload_bytes_max: 30,
    headers_bytes_max: 20,
    query_bytes_max: 10,
  };
  const refuses = (
    text: string,
    field_depth: number,
    kind: new (...args: never[]) => Error,
    message: RegExp,
  ) =>
    assert.throws(() => parseBoundedJson(text, small, field_depth), (error: Error) => {
      assert.ok(error instanceof kind, `${error.constructor.name}: ${error.message}`);
      assert.match(error.message, message);
      return true;
    });
  // Depth: exactly at the limit passes, one more is refused, in a job and in a batch.
  assert.deepEqual(parseBoundedJson(`{"payload":${nested(3)}}`, small, FIELDS_AT_TOP), {
    payload: [[[1]]],
  });
  refuses(
    `{"payload":${nested(4)}}`,
    FIELDS_AT_TOP,
    ValidationError,
    /^payload nests deeper than 3 levels \(INPUT_MAX_DEPTH\)/,
  );
  refuses(
    `{"jobs":[{},{"type":"once"},{"a":1, "payload":${nested(4)}}]}`,
    FIELDS_IN_BATCH,
    ValidationError,
    /^jobs\.2\.payload nests deeper/,
  );
  // Escaped quotes and brackets inside strings do not count.
  assert.ok(parseBoundedJson(`{"p\\"[[[[":"[[[[\\\\","q":[[["]]]]"]]]}`, small, 1));
  refuses(`{"k\\u0065y":${nested(5)}}`, 1, ValidationError, /^key nests deeper/);
  refuses(nested(10), 1, ValidationError, /^0 nests deeper/);
  refuses(`{"a":1,"b":2,"c":3,"d":4}`, 1, ValidationError, /^body holds an object of 4 keys/);
  refuses(`{"payload":[1,2,3,4]}`, 1, ValidationError, /^payload holds an array of 4 items.*ITEMS/);
  refuses(`{"payload":{"a":{"b":1,"c":2,"d":3,"e":4}}}`, 1, ValidationError, /^payload.*KEYS/);
  refuses(`{"name":"${"x".repeat(11)}"}`, 1, PayloadTooLargeError, /^name holds a string of 11/);
  refuses(`{"payload":{"${"k".repeat(11)}":1}}`, 1, PayloadTooLargeError, /INPUT_MAX_STRING/);
  refuses(
    `{"payload":["${"x".repeat(10)}","${"y".repeat(10)}","${"z".repeat(10)}"]}`,
    1,
    PayloadTooLargeError,
    /^payload is 40 bytes as JSON, more than 30 \(INPUT_MAX_PAYLOAD\)/,
  );
  refuses(`{"headers":{"a":"0123456789","b":"1"}}`, 1, PayloadTooLargeError, /INPUT_MAX_HEADERS/);
  refuses(`{"name":"\\ud800"}`, 1, ValidationError, /^name holds a lone UTF-16 surrogate/);
  // A lone surrogate survives in payload (stored as JSON text, escaped).
  assert.deepEqual(parseBoundedJson(`{"payload":"\\ud800"}`, small, 1), { payload: "\ud800" });
  assert.deepEqual(parseBoundedJson(`{"payload":"\\u0000"}`, small, 1), { payload: "\u0000" });
  refuses(`{"a":`, 1, ValidationError, /^malformed JSON body/);
  refuses(`]]]][[[[`, 1, ValidationError, /^malformed JSON body/);
  assert.deepEqual(parseBoundedJson("  ", small, 1), {});
  assert.deepEqual(parseBoundedField("[[1]]", "payload", small), [[1]]);
  assert.throws(() => parseBoundedField(nested(4), "payload", small), /: payload nests deeper/);
});

Deno.test("payload size counts the bytes stored, not the bytes sent", () => {
  const limits = { ...LIMITS, payload_bytes_max: 100 };
  // 1e20 is 4 bytes as sent and 21 as stored (JSON.stringify writes every digit).
  assert.throws(
    () => parseBoundedJson(`{"payload":[${Array(10).fill("1e20").join(",")}]}`, limits, 1),
    /: payload is 221 bytes as JSON, more than 100 \(INPUT_MAX_PAYLOAD\)/,
  );
  // A payload that is one string: 20 control characters are 122 bytes as JSON.
  assert.throws(
    () => parseBoundedJson(`{"payload":"${"\\u0001".repeat(20)}"}`, limits, 1),
    /: payload is 122 bytes/,
  );
  // "é" is 1 character and 2 UTF-8 bytes.
  assert.throws(
    () => parseBoundedJson(`{"payload":"${"é".repeat(60)}"}`, limits, 1),
    /: payload is 122 bytes/,
  );
});

Deno.test("the deep payload of issue 9 → 400; the node stays up and a normal job fires", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const deep = `{"type":"once","timestamp":"${inMs(MINUTE_MS)}","webhook_url":"${sink.url}",` +
      `"payload":${nested(100_000, "")}}`;
    assertRefused(
      await t.request("POST", "/jobs", deep),
      400,
      /^payload nests deeper than 64 levels \(INPUT_MAX_DEPTH\)/,
      "payload",
    );
    const batch = `{"jobs":[{"type":"once","timestamp":"${inMs(MINUTE_MS)}"},` +
      `{"type":"once","timestamp":"${inMs(MINUTE_MS)}","payload":${nested(100_000, "")}}]}`;
    assertRefused(
      await t.request("POST", "/jobs/batch", batch),
      400,
      /^jobs\.1\.payload nests deeper than 64 levels/,
      "jobs.1.payload",
    );
    const objects = `{"type":"once","timestamp":"${inMs(MINUTE_MS)}","payload":` +
      `${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}}`;
    assertRefused(await t.request("POST", "/jobs", objects), 400, /^payload nests deeper/);
    // Every other body that is read as JSON is bounded the same way.
    const created = await t.post("/jobs", { type: "once", timestamp: inMs(MINUTE_MS) });
    assert.equal(created.status, 201, created.text);
    assertRefused(
      await t.request("POST", `/jobs/${created.body.id}/cancel`, `{"reason":${nested(100_000)}}`),
      400,
      /^reason nests deeper/,
    );
    assert.equal(await jobCount(t), 1);

    const health = await t.get("/health");
    assert.equal(health.status, 200, health.text);
    assert.equal(health.body.status, "ok");
    const fires = await t.post("/jobs", {
      type: "once",
      timestamp: inMs(300),
      webhook_url: `${sink.url}/after`,
      payload: { deep: nested(64, "") },
    });
    assert.equal(fires.status, 201, fires.text);
    await sink.waitFor((reqs) => reqs.some((r) => r.path === "/after"), 10_000);
  });
});

Deno.test("each limit over real HTTP → 400 or 413 naming field, limit and setting", async () => {
  await withNode({}, async (t) => {
    const base = { type: "once", timestamp: inMs(10 * MINUTE_MS) };
    const deepest = JSON.parse(nested(64));
    const ok = await t.post("/jobs", { ...base, payload: deepest, headers: { "X-A": "b" } });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual(ok.body.payload, deepest);

    const cases: { name: string; body: unknown; status: number; message: RegExp }[] = [
      {
        name: "depth 65",
        body: { ...base, payload: JSON.parse(nested(65)) },
        status: 400,
        message: /^payload nests deeper than 64 levels \(INPUT_MAX_DEPTH\)/,
      },
      {
        name: "keys",
        body: {
          ...base,
          payload: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i])),
        },
        status: 400,
        message: /^payload holds an object of 10001 keys, more than 10000 \(INPUT_MAX_KEYS\)/,
      },
      {
        name: "keys of the body itself",
        body: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i])),
        status: 400,
        message: /^body holds an object of 10001 keys/,
      },
      {
        name: "items",
        body: { ...base, payload: Array(100_001).fill(0) },
        status: 400,
        message: /^payload holds an array of 100001 items, more than 100000 \(INPUT_MAX_ITEMS\)/,
      },
      {
        name: "string",
        body: { ...base, payload: { text: "x".repeat(65_537) } },
        status: 413,
        message:
          /^payload holds a string of 65537 characters, more than 65536 \(INPUT_MAX_STRING\)/,
      },
      {
        name: "payload size",
        body: { ...base, payload: Array(5).fill("x".repeat(60_000)) },
        status: 413,
        message: /^payload is 300016 bytes as JSON, more than 262144 \(INPUT_MAX_PAYLOAD\)/,
      },
      {
        name: "headers size",
        body: {
          ...base,
          headers: Object.fromEntries(
            Array.from({ length: 3 }, (_, i) => [`X-${i}`, "v".repeat(6_000)]),
          ),
        },
        status: 413,
        message: /^headers is \d+ bytes as JSON, more than 16384 \(INPUT_MAX_HEADERS\)/,
      },
      {
        name: "lone surrogate in a stored text field",
        body: `{"type":"once","timestamp":"${base.timestamp}","name":"a\\udc00b"}`,
        status: 400,
        message: /^name holds a lone UTF-16 surrogate/,
      },
      {
        // Found by tests/http/api_fuzz_test.ts: libSQL ended the stored name at the NUL ("").
        name: "a NUL in a stored text field",
        body: { ...base, name: "\u0000" },
        status: 400,
        message: /^name holds a NUL character/,
      },
      {
        name: "a NUL in an idempotency key (k and k\\0x would be one key once stored)",
        body: { ...base, idempotency_key: "k\u0000x" },
        status: 400,
        message: /^idempotency_key holds a NUL character/,
      },
      {
        name: "a header value with a line break",
        body: { ...base, headers: { "X-A": "b\r\nX-Injected: 1" } },
        status: 400,
        message: /headers\.X-A: use visible ASCII/,
      },
    ];
    for (const c of cases) {
      const res = await t.post("/jobs", c.body);
      assertRefused(res, c.status, c.message);
      // The same item inside a batch is named by its index.
      if (typeof c.body !== "string" && c.name !== "keys of the body itself") {
        const batch = await t.post("/jobs/batch", { jobs: [base, c.body] });
        assert.ok(batch.status === c.status, `${c.name} in a batch: ${batch.text.slice(0, 300)}`);
        assert.match(batch.text, /jobs\.1\./, c.name);
      }
    }
    assert.equal(await jobCount(t), 1);
  });
});

Deno.test("query strings and the Idempotency-Key header are bounded", async () => {
  await withNode({}, async (t) => {
    const base = { type: "once", timestamp: inMs(10 * MINUTE_MS) };
    assertRefused(
      await t.get(`/jobs?q=${"x".repeat(5_000)}`),
      400,
      /^the query string is 5002 bytes, more than 4096 \(INPUT_MAX_QUERY\)/,
      "query",
    );
    assertRefused(
      await t.get(`/jobs/some-id/executions?cursor=${"x".repeat(5_000)}`),
      400,
      /INPUT_MAX_QUERY/,
    );
    assert.equal((await t.get(`/jobs?q=${"x".repeat(200)}`)).status, 200);
    assertRefused(
      await t.post("/jobs", base, { "Idempotency-Key": "k".repeat(257) }),
      400,
      /^invalid Idempotency-Key header: use 1 to 256 characters \(257 sent\)/,
      "Idempotency-Key",
    );
    assertRefused(await t.post("/jobs", base, { "Idempotency-Key": "" }), 400, /1 to 256/);
    assert.equal(await jobCount(t), 0);
    const keyed = await t.post("/jobs", base, { "Idempotency-Key": "k".repeat(256) });
    assert.equal(keyed.status, 201, keyed.text);
    assert.equal(keyed.body.idempotency_key, "k".repeat(256));
  });
});

Deno.test("a node applies the limits it is configured with", async () => {
  await withNode({ input_depth_max: 3 }, async (t) => {
    const base = { type: "once", timestamp: inMs(10 * MINUTE_MS) };
    const ok = await t.post("/jobs", { ...base, payload: JSON.parse(nested(3)) });
    assert.equal(ok.status, 201, ok.text);
    const deep = await t.post("/jobs", { ...base, payload: JSON.parse(nested(4)) });
    assert.equal(deep.status, 400);
    assert.match(deep.body.error, /^payload nests deeper than 3 levels \(INPUT_MAX_DEPTH\)/);
  });
});
