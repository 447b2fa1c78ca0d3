/**
 * `WEBHOOK_DENY_PRIVATE`: the range checker over edge addresses; `deliver` refusing a name that a
 * real DNS server on 127.0.0.1 resolves to loopback; and a real node refusing a literal loopback
 * target at creation and `localhost` at delivery (nothing reaches the sink), while with the
 * setting off both deliver.
 */
import assert from "node:assert/strict";
import { systemClock } from "../../src/clock.ts";
import { deliver, type DeliveryRequest } from "../../src/scheduler/webhook/delivery.ts";
import {
  deniedAddressRange,
  deniedTargetAtCreation,
  isIpAddress,
} from "../../src/scheduler/webhook/target_policy.ts";
import { startDnsServer } from "../support/dns_server.ts";
import { inMs, withNode } from "../support/node.ts";
import { startSink } from "../support/sink.ts";

Deno.test("deniedAddressRange: refused ranges, their IPv6 embeddings, and their neighbours allowed", () => {
  const denied: [string, RegExp][] = [
    ["0.0.0.0", /unspecified/],
    ["0.255.255.255", /0\.0\.0\.0\/8/],
    ["10.0.0.1", /private \(10\.0\.0\.0\/8\)/],
    ["100.64.0.0", /carrier-grade NAT/],
    ["100.127.255.255", /100\.64\.0\.0\/10/],
    ["127.0.0.1", /loopback/],
    ["127.255.255.254", /loopback/],
    ["169.254.169.254", /link-local/],
    ["172.16.0.1", /private/],
    ["172.31.255.255", /private/],
    ["192.0.0.170", /IETF/],
    ["192.0.2.1", /documentation/],
    ["192.168.1.1", /private/],
    ["198.18.0.1", /benchmarking/],
    ["198.51.100.7", /documentation/],
    ["203.0.113.9", /documentation/],
    ["224.0.0.1", /multicast/],
    ["239.255.255.250", /multicast/],
    ["255.255.255.255", /broadcast/],
    ["::", /unspecified \(::\/128\)/],
    ["::1", /loopback \(::1\/128\)/],
    ["[::1]", /loopback/],
    ["0:0:0:0:0:0:0:1", /loopback/],
    ["::ffff:10.0.0.1", /IPv4-mapped 10\.0\.0\.1, private/],
    ["::ffff:a00:1", /IPv4-mapped 10\.0\.0\.1/],
    ["[::ffff:7f00:1]", /IPv4-mapped 127\.0\.0\.1, loopback/],
    ["::ffff:169.254.169.254", /link-local/],
    ["::127.0.0.1", /IPv4-compatible 127\.0\.0\.1/],
    ["::0.0.0.2", /IPv4-compatible 0\.0\.0\.2, unspecified/],
    ["64:ff9b::192.168.0.1", /NAT64 192\.168\.0\.1/],
    ["2002:7f00:1::", /6to4 127\.0\.0\.1/],
    ["100::1", /discard-only/],
    ["2001:db8::1", /documentation/],
    ["3fff::1", /documentation/],
    ["fc00::", /unique-local \(fc00::\/7\)/],
    ["fd12:3456::1", /unique-local/],
    ["fe80::1", /link-local/],
    ["fe80::1%eth0", /link-local/],
    ["febf:ffff::1", /link-local/],
    ["fec0::1", /site-local/],
    ["ff02::1", /multicast/],
  ];
  for (const [address, why] of denied) {
    const range = deniedAddressRange(address);
    assert.ok(range !== null, `${address} must be refused`);
    assert.match(range, why, address);
  }
  const allowed = [
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "203.0.114.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "::8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::",
    "2001:db9::1",
    "fbff:ffff::1",
    "fe7f::1",
    "fe00::1",
  ];
  for (const address of allowed) assert.equal(deniedAddressRange(address), null, address);
  for (
    const text of ["localhost", "example.com", "1.2.3", "1.2.3.256", "01.2.3.4", ":::1", "1::2::3"]
  ) {
    assert.equal(deniedAddressRange(text), null, text);
    assert.equal(isIpAddress(text), false, text);
  }
  assert.equal(isIpAddress("[::ffff:10.0.0.1]"), true);
  assert.equal(isIpAddress("1:2:3:4:5:6:7:8"), true);
  assert.equal(isIpAddress("1:2:3:4:5:6:7:8:9"), false);
});

Deno.test("deniedTargetAtCreation: literals in any form the URL parser accepts; names wait for delivery", () => {
  for (
    const url of [
      "http://127.0.0.1:9000/hook",
      "http://2130706433/",
      "http://0x7f.0.0.1/",
      "http://[::ffff:127.0.0.1]/",
      "https://[fd00::1]:8443/x",
      "http://169.254.169.254/latest/meta-data/",
    ]
  ) {
    const problem = deniedTargetAtCreation(url);
    assert.ok(problem !== null, url);
    assert.match(problem, /WEBHOOK_DENY_PRIVATE/);
  }
  assert.equal(deniedTargetAtCreation("http://localhost:9000/hook"), null);
  assert.equal(deniedTargetAtCreation("https://example.com/hook"), null);
  assert.equal(deniedTargetAtCreation("http://8.8.8.8/"), null);
  assert.equal(deniedTargetAtCreation("not a url"), null);
});

function request(url: string): DeliveryRequest {
  return {
    job_id: "job-1",
    execution_id: "exec-1",
    scheduled_at_ms: Date.now(),
    attempt: 1,
    redelivery: false,
    payload: null,
    url,
    method: "POST",
    headers: {},
    secrets: [],
    timeout_ms: 5_000,
  };
}

Deno.test("deliver refuses a name a real DNS server resolves to a private address; nothing is sent", async () => {
  const dns = await startDnsServer({
    "rebind.test": { A: ["127.0.0.1"] },
    "v6.test": { AAAA: ["::1"] },
    "mixed.test": { A: ["8.8.8.8", "10.1.2.3"] },
  });
  const sink = await startSink();
  try {
    const resolve = async (hostname: string) => {
      const opts = { nameServer: { ipAddr: "127.0.0.1", port: dns.port } };
      const [a, aaaa] = await Promise.all([
        Deno.resolveDns(hostname, "A", opts).catch(() => []),
        Deno.resolveDns(hostname, "AAAA", opts).catch(() => []),
      ]);
      return [...a, ...aaaa];
    };
    const cases: [string, RegExp][] = [
      ["rebind.test", /rebind\.test resolves to 127\.0\.0\.1, loopback \(127\.0\.0\.0\/8\)/],
      ["v6.test", /v6\.test resolves to ::1, loopback/],
      ["mixed.test", /mixed\.test resolves to 10\.1\.2\.3, private/],
    ];
    for (const [host, why] of cases) {
      const result = await deliver(request(`http://${host}:${sink.port}/hook`), {
        clock: systemClock,
        deny_private: true,
        resolve,
      });
      assert.equal(result.ok, false, host);
      assert.equal(result.error_class, "denied", host);
      assert.equal(result.retryable, false, host);
      assert.equal(result.status_code, null, host);
      assert.match(result.error!, why);
      assert.match(result.error!, /WEBHOOK_DENY_PRIVATE/);
    }
    const literal = await deliver(request(`${sink.url}/hook`), {
      clock: systemClock,
      deny_private: true,
    });
    assert.equal(literal.error_class, "denied");
    assert.match(literal.error!, /webhook address 127\.0\.0\.1 is loopback/);
    const unknown = await deliver(request(`http://nxdomain.test:${sink.port}/hook`), {
      clock: systemClock,
      deny_private: true,
      resolve,
    });
    assert.equal(unknown.error_class, "dns_error");
    assert.equal(unknown.retryable, true);
    assert.ok(dns.queries.includes("A rebind.test"), "the name was resolved through the server");
    assert.deepEqual(sink.requests, []);

    const off = await deliver(request(`${sink.url}/hook`), { clock: systemClock });
    assert.equal(off.ok, true);
    assert.equal(sink.requests.length, 1);
  } finally {
    await sink.close();
    await dns.close();
  }
});

/** A once job due now that delivers to `url`. */
const onceJob = (url: string) => ({ type: "once", timestamp: inMs(0), webhook_url: url });

Deno.test("a node with WEBHOOK_DENY_PRIVATE refuses a loopback literal at creation and localhost at delivery", async () => {
  await withNode({ webhook_deny_private: true, max_attempts: 3 }, async (t) => {
    const sink = await t.sink();
    const literal = await t.post("/jobs", onceJob(`${sink.url}/literal`));
    assert.equal(literal.status, 400);
    assert.match(literal.body.error, /127\.0\.0\.1 is loopback.*WEBHOOK_DENY_PRIVATE/);
    assert.equal(literal.body.details[0].path, "webhook_url");
    const batch = await t.post("/jobs/batch", {
      jobs: [onceJob(`http://localhost:${sink.port}/ok`), onceJob("http://[::1]:9000/x")],
    });
    assert.equal(batch.status, 400);
    assert.deepEqual(batch.body.details.map((d: { path: string }) => d.path), [
      "jobs.1.webhook_url",
    ]);

    const named = await t.post("/jobs", onceJob(`http://localhost:${sink.port}/named`));
    assert.equal(named.status, 201);
    const status = await t.poll(
      `/jobs/${named.body.id}/status`,
      (b) => b.status === "failed",
    );
    assert.equal(status.attempt_count, 1, "a denied target is not retried");
    const executions = await t.get(`/jobs/${named.body.id}/executions`);
    const [execution] = executions.body.executions;
    assert.equal(execution.status, "failed");
    assert.equal(execution.error_class, "denied");
    assert.match(execution.error, /localhost resolves to 127\.0\.0\.1, loopback/);
    assert.deepEqual(sink.requests, [], "nothing reached the sink");
  });
});

Deno.test("with WEBHOOK_DENY_PRIVATE off (the default) the same targets deliver", async () => {
  await withNode({}, async (t) => {
    assert.equal(t.config.webhook_deny_private, false);
    const sink = await t.sink();
    for (const url of [`${sink.url}/literal`, `http://localhost:${sink.port}/named`]) {
      assert.equal((await t.post("/jobs", onceJob(url))).status, 201);
    }
    await sink.waitFor((reqs) => reqs.length === 2, 5_000);
    assert.deepEqual(sink.requests.map((r) => r.path).sort(), ["/literal", "/named"]);
  });
});
