import assert from "node:assert/strict";
import { ManualClock, systemClock } from "../../src/clock.ts";
import { backoffDelayMs, isRetryableStatus } from "../../src/scheduler/retry.ts";
import {
  deliver,
  type DeliveryRequest,
  RESPONSE_EXCERPT_MAX_CHARS,
} from "../../src/scheduler/webhook/delivery.ts";
import {
  idempotencyKey,
  signatureHeader,
  verifySignature,
  webhookBody,
} from "../../src/scheduler/webhook/signing.ts";
import { isReservedHeader, webhookUrlProblem } from "../../src/scheduler/webhook/target_policy.ts";
import { type Sink, type SinkOptions, startSink } from "../support/sink.ts";

const SCHEDULED_AT_MS = Date.UTC(2026, 2, 29, 1, 30, 0);

function request(overrides: Partial<DeliveryRequest> = {}): DeliveryRequest {
  return {
    job_id: "job-42",
    execution_id: "exec-7",
    scheduled_at_ms: SCHEDULED_AT_MS,
    attempt: 1,
    redelivery: false,
    payload: { hello: "world", n: [1, 2] },
    url: "http://127.0.0.1:9/unused",
    method: "POST",
    headers: {},
    secrets: [],
    timeout_ms: 5_000,
    ...overrides,
  };
}

/** Runs `fn` against a fresh sink and always closes it. */
async function withSink(opts: SinkOptions, fn: (sink: Sink) => Promise<void>): Promise<void> {
  const sink = await startSink(opts);
  try {
    await fn(sink);
  } finally {
    await sink.close();
  }
}

/** A port on 127.0.0.1 with nothing listening: bound, then released. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/** Verifies one `v1=` entry with Web Crypto directly, independent of delivery.ts. */
async function independentlyVerifies(
  secret: string,
  header: string,
  timestamp: string,
  body: string,
): Promise<boolean> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  for (const entry of header.split(",")) {
    const hex = entry.replace(/^v1=/, "");
    if (
      await crypto.subtle.verify("HMAC", key, hexToBytes(hex), enc.encode(`${timestamp}.${body}`))
    ) {
      return true;
    }
  }
  return false;
}

Deno.test("idempotency key is stable per occurrence", () => {
  assert.equal(idempotencyKey("job-42", SCHEDULED_AT_MS), `job-42:${SCHEDULED_AT_MS}`);
  assert.equal(idempotencyKey("a", 1), idempotencyKey("a", 1));
  assert.notEqual(idempotencyKey("a", 1), idempotencyKey("a", 2));
});

Deno.test("webhook body has exactly job_id, scheduled_at, attempt, payload in order", () => {
  const body = webhookBody(request({ attempt: 3 }));
  assert.equal(
    body,
    '{"job_id":"job-42","scheduled_at":"2026-03-29T01:30:00.000Z","attempt":3,' +
      '"payload":{"hello":"world","n":[1,2]}}',
  );
  assert.deepEqual(Object.keys(JSON.parse(webhookBody(request({ payload: undefined })))), [
    "job_id",
    "scheduled_at",
    "attempt",
    "payload",
  ]);
});

Deno.test("POST delivery sends the exact body and headers", async () => {
  const clock = new ManualClock(Date.UTC(2026, 2, 29, 1, 30, 2, 999));
  await withSink({}, async (sink) => {
    const result = await deliver(
      request({
        url: `${sink.url}/hooks/a?x=1`,
        attempt: 2,
        secrets: ["whsec_one"],
        headers: {
          "X-Custom": "yes",
          "idempotency-key": "forged",
          "X-Tickraft-Signature": "v1=forged",
          "Content-Type": "text/plain",
        },
      }),
      { clock },
    );
    assert.deepEqual(result, {
      ok: true,
      status_code: 200,
      error_class: null,
      error: null,
      retryable: false,
      aborted: false,
      duration_ms: 0,
      response_excerpt: "",
    });
    assert.equal(sink.requests.length, 1);
    const got = sink.requests[0];
    assert.equal(got.method, "POST");
    assert.equal(got.path, "/hooks/a?x=1");
    assert.equal(got.body, webhookBody(request({ attempt: 2 })));
    assert.deepEqual(got.json, {
      job_id: "job-42",
      scheduled_at: "2026-03-29T01:30:00.000Z",
      attempt: 2,
      payload: { hello: "world", n: [1, 2] },
    });
    const timestamp_s = Math.floor(clock.now() / 1000);
    const signature = await signatureHeader(["whsec_one"], timestamp_s, got.body);
    const { host: _host, "content-length": _length, ...rest } = got.headers;
    delete rest["accept"];
    delete rest["accept-encoding"];
    delete rest["accept-language"];
    assert.deepEqual(rest, {
      "content-type": "application/json",
      "user-agent": "tickraft/0.1.0",
      "idempotency-key": `job-42:${SCHEDULED_AT_MS}`,
      "x-tickraft-timestamp": String(timestamp_s),
      "x-tickraft-signature": signature,
      "x-tickraft-job-id": "job-42",
      "x-tickraft-execution-id": "exec-7",
      "x-tickraft-attempt": "2",
      "x-tickraft-scheduled-at": "2026-03-29T01:30:00.000Z",
      "x-custom": "yes",
    });
    assert.equal(got.idempotency_key, `job-42:${SCHEDULED_AT_MS}`);
  });
});

Deno.test("redelivery is marked and keeps the idempotency key", async () => {
  await withSink({}, async (sink) => {
    const url = `${sink.url}/hook`;
    await deliver(request({ url }), { clock: systemClock });
    await deliver(request({ url, redelivery: true, execution_id: "exec-8" }), {
      clock: systemClock,
    });
    const [first, second] = sink.requests;
    assert.equal(first.headers["x-tickraft-redelivery"], undefined);
    assert.equal(second.headers["x-tickraft-redelivery"], "true");
    assert.equal(first.idempotency_key, second.idempotency_key);
    assert.equal(first.headers["x-tickraft-signature"], undefined);
  });
});

Deno.test("signature verifies with verifySignature and with Web Crypto directly", async () => {
  await withSink({}, async (sink) => {
    await deliver(request({ url: sink.url, secrets: ["whsec_one"] }), { clock: systemClock });
    const got = sink.requests[0];
    const header = got.headers["x-tickraft-signature"];
    const timestamp = got.headers["x-tickraft-timestamp"];
    assert.match(header, /^v1=[0-9a-f]{64}$/);
    const now_s = Math.floor(Date.now() / 1000);
    assert.equal(
      await verifySignature("whsec_one", header, Number(timestamp), got.body, now_s),
      true,
    );
    assert.equal(await independentlyVerifies("whsec_one", header, timestamp, got.body), true);
    assert.equal(await independentlyVerifies("whsec_two", header, timestamp, got.body), false);
  });
});

Deno.test("rotation: every secret's signature verifies, others do not", async () => {
  await withSink({}, async (sink) => {
    await deliver(request({ url: sink.url, secrets: ["old", "new"] }), { clock: systemClock });
    const got = sink.requests[0];
    const header = got.headers["x-tickraft-signature"];
    const timestamp_s = Number(got.headers["x-tickraft-timestamp"]);
    assert.match(header, /^v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    for (const secret of ["old", "new"]) {
      assert.equal(await verifySignature(secret, header, timestamp_s, got.body, timestamp_s), true);
      assert.equal(
        await independentlyVerifies(secret, header, String(timestamp_s), got.body),
        true,
      );
    }
    assert.equal(await verifySignature("other", header, timestamp_s, got.body, timestamp_s), false);
  });
});

Deno.test("verifySignature rejects stale, future, tampered and malformed input", async () => {
  const ts = 1_790_000_000;
  const body = webhookBody(request());
  const header = await signatureHeader(["k"], ts, body);
  assert.equal(await verifySignature("k", header, ts, body, ts + 300), true);
  assert.equal(await verifySignature("k", header, ts, body, ts + 301), false);
  assert.equal(await verifySignature("k", header, ts, body, ts - 301), false);
  assert.equal(await verifySignature("k", header, ts, body, ts + 30, 10), false);
  assert.equal(await verifySignature("k", header, ts, body.replace("world", "w0rld"), ts), false);
  assert.equal(await verifySignature("k", header, ts + 1, body, ts), false);
  assert.equal(
    await verifySignature("k", header.toUpperCase().replace("V1", "v1"), ts, body, ts),
    true,
  );
  assert.equal(await verifySignature("k", header.replace("v1=", "v0="), ts, body, ts), false);
  assert.equal(await verifySignature("k", "", ts, body, ts), false);
  assert.equal(await verifySignature("k", "v1=", ts, body, ts), false);
  assert.equal(await verifySignature("k", header, Number.NaN, body, ts), false);
  assert.equal(await signatureHeader([], ts, body), "");
});

Deno.test("GET and DELETE send no body and sign the empty string", async () => {
  await withSink({}, async (sink) => {
    for (const method of ["GET", "DELETE"] as const) {
      const result = await deliver(request({ url: sink.url, method, secrets: ["k"] }), {
        clock: systemClock,
      });
      assert.equal(result.ok, true);
    }
    for (const [i, got] of sink.requests.entries()) {
      assert.equal(got.method, i === 0 ? "GET" : "DELETE");
      assert.equal(got.body, "");
      assert.equal(got.headers["content-type"], undefined);
      assert.equal(got.headers["x-tickraft-job-id"], "job-42");
      assert.equal(got.headers["x-tickraft-scheduled-at"], "2026-03-29T01:30:00.000Z");
      const ts = Number(got.headers["x-tickraft-timestamp"]);
      assert.equal(
        await verifySignature("k", got.headers["x-tickraft-signature"], ts, "", ts),
        true,
      );
    }
  });
});

Deno.test("http_error: 5xx, 408, 425, 429 retryable; 404 and 400 not", async () => {
  const statuses = [500, 503, 408, 425, 429, 404, 400];
  await withSink(
    { respond: (_req, n) => ({ status: statuses[n - 1], body: `status ${statuses[n - 1]}` }) },
    async (sink) => {
      for (const status of statuses) {
        const result = await deliver(request({ url: sink.url }), { clock: systemClock });
        assert.equal(result.ok, false);
        assert.equal(result.status_code, status);
        assert.equal(result.error_class, "http_error");
        assert.equal(result.error, `HTTP ${status}`);
        assert.equal(result.retryable, ![404, 400].includes(status), `status ${status}`);
        assert.equal(result.response_excerpt, `status ${status}`);
        assert.equal(result.aborted, false);
      }
    },
  );
});

Deno.test("redirects are not followed and not retryable", async () => {
  await withSink({ respond: () => ({ status: 302 }) }, async (sink) => {
    const result = await deliver(request({ url: sink.url }), { clock: systemClock });
    assert.equal(sink.requests.length, 1);
    assert.equal(result.status_code, 302);
    assert.equal(result.error_class, "http_error");
    assert.equal(result.retryable, false);
    assert.match(result.error ?? "", /redirect not followed/);
  });
});

Deno.test("timeout: a slow receiver past timeout_ms", async () => {
  await withSink({ respond: () => ({ status: 200, delay_ms: 10_000 }) }, async (sink) => {
    const result = await deliver(request({ url: sink.url, timeout_ms: 200 }), {
      clock: systemClock,
    });
    assert.equal(result.ok, false);
    assert.equal(result.error_class, "timeout");
    assert.equal(result.status_code, null);
    assert.equal(result.retryable, true);
    assert.equal(result.aborted, false);
    assert.equal(result.response_excerpt, null);
    assert.ok(result.duration_ms >= 190 && result.duration_ms < 5_000, `${result.duration_ms}`);
  });
});

Deno.test("timeout runs on the injected clock", async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  await withSink({ respond: () => ({ status: 200, delay_ms: 10_000 }) }, async (sink) => {
    const pending = deliver(request({ url: sink.url, timeout_ms: 30_000 }), { clock });
    await sink.waitFor((reqs) => reqs.length === 1, 5_000);
    clock.advance(30_000);
    const result = await pending;
    assert.equal(result.error_class, "timeout");
    assert.equal(result.duration_ms, 30_000);
    assert.equal(clock.pending, 0);
  });
});

Deno.test("connection_error: nothing listening on the port", async () => {
  const result = await deliver(request({ url: `http://127.0.0.1:${closedPort()}/hook` }), {
    clock: systemClock,
  });
  assert.equal(result.ok, false);
  assert.equal(result.error_class, "connection_error");
  assert.equal(result.retryable, true);
  assert.equal(result.status_code, null);
  assert.match(result.error ?? "", /refused/i);
});

Deno.test("connection_error: the receiver drops the connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const result = await deliver(request({ url: `http://127.0.0.1:${port}/` }), {
      clock: systemClock,
    });
    assert.equal(result.error_class, "connection_error");
    assert.equal(result.retryable, true);
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("dns_error: an unresolvable host", async () => {
  const result = await deliver(request({ url: "http://nonexistent.invalid/hook" }), {
    clock: systemClock,
  });
  assert.equal(result.ok, false);
  assert.equal(result.error_class, "dns_error");
  assert.equal(result.retryable, true);
  assert.match(result.error ?? "", /dns error/);
});

Deno.test("requests that cannot be sent are non-retryable connection errors", async () => {
  const cases: Partial<DeliveryRequest>[] = [
    { url: "not a url" },
    { url: "ftp://127.0.0.1/x" },
    { url: "http://127.0.0.1:6000/" },
    { url: `http://127.0.0.1:${closedPort()}/`, headers: { "bad header": "x" } },
  ];
  for (const overrides of cases) {
    const result = await deliver(request(overrides), { clock: systemClock });
    assert.equal(result.error_class, "connection_error", JSON.stringify(overrides));
    assert.equal(result.retryable, false);
    assert.match(result.error ?? "", /^request not sent: /);
  }
  assert.equal(webhookUrlProblem("https://example.com:8443/x"), null);
  assert.equal(webhookUrlProblem("http://example.com:25/"), "port 25 is blocked by fetch");
});

Deno.test("reserved headers", () => {
  for (const name of ["Idempotency-Key", "x-tickraft-anything", "Content-Type", "Host"]) {
    assert.equal(isReservedHeader(name), true, name);
  }
  assert.equal(isReservedHeader("Authorization"), false);
});

Deno.test("abort via the caller's signal", async () => {
  await withSink({ respond: () => ({ status: 200, delay_ms: 10_000 }) }, async (sink) => {
    const controller = new AbortController();
    const pending = deliver(request({ url: sink.url }), {
      clock: systemClock,
      signal: controller.signal,
    });
    await sink.waitFor((reqs) => reqs.length === 1, 5_000);
    controller.abort(new Error("replaced by a newer execution"));
    const result = await pending;
    assert.deepEqual({ ...result, duration_ms: 0 }, {
      ok: false,
      status_code: null,
      error_class: null,
      error: "aborted: replaced by a newer execution",
      retryable: false,
      aborted: true,
      duration_ms: 0,
      response_excerpt: null,
    });
  });
});

Deno.test("an already aborted signal sends nothing", async () => {
  await withSink({}, async (sink) => {
    const result = await deliver(request({ url: sink.url }), {
      clock: systemClock,
      signal: AbortSignal.abort("shutdown"),
    });
    assert.equal(result.aborted, true);
    assert.equal(result.error, "aborted: shutdown");
    assert.equal(sink.requests.length, 0);
  });
});

Deno.test("response excerpt is capped, also for multi-byte and huge bodies", async () => {
  const bodies = ["x".repeat(10_000), "é😀".repeat(2_000), "y".repeat(8 * 1024 * 1024)];
  await withSink({ respond: (_req, n) => ({ status: 200, body: bodies[n - 1] }) }, async (sink) => {
    for (const body of bodies) {
      const result = await deliver(request({ url: sink.url }), { clock: systemClock });
      assert.equal(result.ok, true);
      const excerpt = result.response_excerpt ?? "";
      assert.equal(Array.from(excerpt).length, RESPONSE_EXCERPT_MAX_CHARS);
      assert.ok(body.startsWith(excerpt));
    }
  });
});

Deno.test("isRetryableStatus", () => {
  for (const status of [408, 425, 429, 500, 502, 503, 504, 599]) {
    assert.equal(isRetryableStatus(status), true, `${status}`);
  }
  for (const status of [301, 302, 304, 400, 401, 403, 404, 409, 410, 422]) {
    assert.equal(isRetryableStatus(status), false, `${status}`);
  }
});

Deno.test("backoffDelayMs: equal jitter within [ceiling/2, ceiling], capped at max", () => {
  const policy = { base_ms: 1_000, max_ms: 60_000 };
  for (let attempt = 1; attempt <= 40; attempt++) {
    const ceiling_ms = Math.min(60_000, 1_000 * 2 ** (attempt - 1));
    assert.equal(backoffDelayMs(attempt, policy, 0), ceiling_ms / 2);
    assert.equal(backoffDelayMs(attempt, policy, 1), ceiling_ms);
    const mid = backoffDelayMs(attempt, policy, 0.5);
    assert.ok(mid >= ceiling_ms / 2 && mid <= ceiling_ms);
  }
  assert.equal(backoffDelayMs(2, policy, 0.25), 1_250);
  assert.equal(backoffDelayMs(10_000, policy, 1), 60_000);
  assert.equal(backoffDelayMs(5, { base_ms: 0, max_ms: 60_000 }, 1), 0);
  assert.equal(backoffDelayMs(3, { base_ms: 1_000, max_ms: 500 }, 1), 500);
});

Deno.test("backoffDelayMs is monotone in the attempt for a fixed random value", () => {
  const policy = { base_ms: 250, max_ms: 3_600_000 };
  for (const random01 of [0, 0.1, 0.5, 0.99, 1]) {
    let previous_ms = 0;
    for (let attempt = 1; attempt <= 100; attempt++) {
      const delay_ms = backoffDelayMs(attempt, policy, random01);
      assert.ok(delay_ms >= previous_ms && Number.isInteger(delay_ms));
      previous_ms = delay_ms;
    }
  }
});

Deno.test("backoffDelayMs rejects invalid arguments", () => {
  const policy = { base_ms: 1_000, max_ms: 60_000 };
  assert.throws(() => backoffDelayMs(0, policy, 0.5), RangeError);
  assert.throws(() => backoffDelayMs(1.5, policy, 0.5), RangeError);
  assert.throws(() => backoffDelayMs(1, policy, 1.5), RangeError);
  assert.throws(() => backoffDelayMs(1, policy, Number.NaN), RangeError);
  assert.throws(() => backoffDelayMs(1, { base_ms: -1, max_ms: 10 }, 0.5), RangeError);
  assert.throws(() => backoffDelayMs(1, { base_ms: 1, max_ms: Infinity }, 0.5), RangeError);
});

Deno.test("the standalone sink process records deliveries as JSON lines", async () => {
  const out_path = await Deno.makeTempFile({ suffix: ".jsonl" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-write",
      new URL("../support/sink_main.ts", import.meta.url).pathname,
      "--out",
      out_path,
      "--status",
      "202",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let banner = "";
    while (!banner.includes("\n")) {
      const { done, value } = await stderr.read();
      if (done) break;
      banner += value;
    }
    const url = banner.match(/^listening (\S+)$/m)?.[1];
    assert.ok(url, `unexpected sink output: ${banner}`);
    const result = await deliver(request({ url: `${url}/bench` }), { clock: systemClock });
    assert.equal(result.status_code, 202);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    const lines = (await Deno.readTextFile(out_path)).trim().split("\n");
    assert.equal(lines.length, 1);
    const recorded = JSON.parse(lines[0]);
    assert.equal(recorded.path, "/bench");
    assert.equal(recorded.idempotency_key, `job-42:${SCHEDULED_AT_MS}`);
    assert.equal(recorded.body, webhookBody(request()));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await stderr.cancel();
    await Deno.remove(out_path);
  }
});
