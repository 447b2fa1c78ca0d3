/**
 * Peer discovery: the static list parser, Raft ids, and the Fly.io and Kubernetes strategies
 * against a real DNS server on 127.0.0.1 queried through `Deno.resolveDns`.
 */
import assert from "node:assert/strict";
import {
  denoResolver,
  discoverWithRetry,
  type Discovery,
  DiscoveryError,
  discoveryFromConfig,
  dnsDiscovery,
  flyDiscovery,
  nodeNumericId,
  parsePeers,
  type PeerSpec,
  type Resolver,
  staticDiscovery,
} from "../../src/cluster/discovery.ts";
import { type DnsServer, type NameRecords, startDnsServer } from "../support/dns_server.ts";

/** Runs `body` with a DNS server serving `records` and a resolver pointed at it. */
async function withDns(
  records: Record<string, NameRecords>,
  body: (dns: DnsServer, resolve: Resolver) => Promise<void>,
): Promise<void> {
  const dns = await startDnsServer(records);
  try {
    await body(dns, denoResolver({ nameServer: { ipAddr: "127.0.0.1", port: dns.port } }));
  } finally {
    await dns.close();
  }
}

const FLY_ENV = {
  FLY_APP_NAME: "tickraft",
  FLY_MACHINE_ID: "3d8d9e3fe0d389",
  FLY_REGION: "ams",
  FLY_PRIVATE_IP: "fdaa:0:18:a7b:7d:3d8d:9e3f:2",
};

function assertThrowsMessage(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof DiscoveryError, `expected a DiscoveryError, got ${error}`);
    assert.match(error.message, pattern);
    return true;
  });
}

async function assertRejectsMessage(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DiscoveryError, `expected a DiscoveryError, got ${error}`);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("parsePeers reads name=url entries and normalizes addresses to their origin", () => {
  assert.deepEqual(
    parsePeers(
      " node-1=http://127.0.0.1:8080 , node-2=http://127.0.0.1:8081/,node-3=https://[FDAA::3]:443",
    ),
    [
      { name: "node-1", address: "http://127.0.0.1:8080" },
      { name: "node-2", address: "http://127.0.0.1:8081" },
      { name: "node-3", address: "https://[fdaa::3]" },
    ],
  );
  assert.deepEqual(parsePeers(""), []);
  assert.deepEqual(parsePeers("   "), []);
});

Deno.test("parsePeers says what is wrong with each bad list", () => {
  const cases: [string, RegExp][] = [
    [
      "http://10.0.0.1:8080",
      /entry "http:\/\/10.0.0.1:8080" has no name: write name=url, e\.g\. node-1=http:\/\/10\.0\.0\.1:8080/,
    ],
    ["node-1=http://a:1,=http://b:2", /entry "=http:\/\/b:2" has no name/],
    ["node-1=http://a:1,,node-2=http://b:2", /entry 2 is empty/],
    ["node 1=http://a:1", /peer name "node 1": use 1-64 letters/],
    ["node-1=10.0.0.1:8080", /peer node-1: "10.0.0.1:8080" has no scheme; write http:\/\/10\.0/],
    ["node-1=ftp://h:21", /peer node-1: "ftp:\/\/h:21" must start with http:\/\/ or https:\/\//],
    ["node-1=http://bad host:1", /peer node-1: "http:\/\/bad host:1" is not a URL/],
    ["node-1=http://a:1/raft", /must be only scheme, host and port/],
    ["node-1=http://a:1,node-1=http://b:2", /peer name node-1 is listed twice/],
    ["node-1=http://a:1,node-2=http://a:1/", /peer address http:\/\/a:1 is listed twice/],
    [
      "node-160386=http://a:1,node-416259=http://b:2",
      /node-160386 and node-416259 have the same Raft id 374737810/,
    ],
  ];
  for (const [spec, pattern] of cases) assertThrowsMessage(() => parsePeers(spec), pattern);
});

Deno.test("nodeNumericId is 32-bit FNV-1a folded into 1..2^31-1, pinned", () => {
  // Reference values computed independently (FNV-1a 32 of "a" is 0xe40c292c).
  assert.equal(nodeNumericId("a"), 0xe40c292c % 0x7fffffff + 1);
  assert.equal(nodeNumericId("node-1"), 1422144388);
  assert.equal(nodeNumericId("node-2"), 1438922007);
  assert.equal(nodeNumericId("3d8d9e3fe0d389"), 645545980);
  assert.equal(nodeNumericId("tickraft-0"), 142053016);
  assert.equal(nodeNumericId("é"), 513665218); // UTF-8 bytes, not UTF-16 code units
  for (let i = 0; i < 10_000; i++) {
    const id = nodeNumericId(`n${i}`);
    assert.ok(Number.isInteger(id) && id >= 1 && id <= 0x7fffffff, `id of n${i}: ${id}`);
  }
});

Deno.test("staticDiscovery adds self, sorts by name and rejects a conflicting address", async () => {
  const peers = parsePeers("node-3=http://h3:8080,node-1=http://h1:8080");
  const d = staticDiscovery({ name: "node-2", address: "http://h2:8080/" }, peers);
  assert.equal(d.strategy, "static");
  assert.deepEqual(d.self, { name: "node-2", address: "http://h2:8080" });
  assert.deepEqual((await d.discover()).map((p) => p.name), ["node-1", "node-2", "node-3"]);
  const listed = staticDiscovery({ name: "node-1", address: "http://h1:8080" }, peers);
  assert.deepEqual((await listed.discover()).map((p) => p.address), [
    "http://h1:8080",
    "http://h3:8080",
  ]);
  assertThrowsMessage(
    () => staticDiscovery({ name: "node-1", address: "http://other:8080" }, peers),
    /node-1 is listed at http:\/\/h1:8080 but advertises http:\/\/other:8080/,
  );
  assertThrowsMessage(
    () => staticDiscovery({ name: "node-9", address: "http://h3:8080" }, peers),
    /node-9 advertises http:\/\/h3:8080, which the peer list gives to node-3/,
  );
});

Deno.test("fly: TXT vms.<app>.internal over several regions plus per-Machine AAAA", async () => {
  await withDns({
    // One TXT record split into two character strings mid-entry, as long records are.
    "vms.tickraft.internal": {
      TXT: [["3d8d9e3fe0d389 ams,148e4d55b36289 ord,9080e6", "2f1d4587 syd, e784079b449483 ord"]],
    },
    "148e4d55b36289.vm.tickraft.internal": { AAAA: ["fdaa:0:18:a7b:c4:148e:4d55:2"] },
    "9080e62f1d4587.vm.tickraft.internal": { AAAA: ["fdaa:0:18:a7b:d5:9080:e62f:2"] },
    "e784079b449483.vm.tickraft.internal": { AAAA: ["fdaa:0:18:a7b:e6:e784:79b:2"] },
  }, async (dns, resolve) => {
    const d = flyDiscovery(FLY_ENV, { port: 8080, resolve });
    assert.deepEqual(d.self, {
      name: "3d8d9e3fe0d389",
      address: "http://[fdaa:0:18:a7b:7d:3d8d:9e3f:2]:8080",
      region: "ams",
    });
    assert.deepEqual(await d.discover(), [
      {
        name: "148e4d55b36289",
        address: "http://[fdaa:0:18:a7b:c4:148e:4d55:2]:8080",
        region: "ord",
      },
      d.self,
      {
        name: "9080e62f1d4587",
        address: "http://[fdaa:0:18:a7b:d5:9080:e62f:2]:8080",
        region: "syd",
      },
      {
        name: "e784079b449483",
        address: "http://[fdaa:0:18:a7b:e6:e784:79b:2]:8080",
        region: "ord",
      },
    ]);
    // Self is taken from the environment, never looked up.
    assert.ok(!dns.queries.includes("AAAA 3d8d9e3fe0d389.vm.tickraft.internal"));
  });
});

Deno.test("fly: a Machine listed without an address is left out; NXDOMAIN gives just self", async () => {
  await withDns({
    "vms.tickraft.internal": { TXT: [["148e4d55b36289 ord,e784079b449483 iad"]] },
    "148e4d55b36289.vm.tickraft.internal": { AAAA: ["fdaa::5"] },
  }, async (dns, resolve) => {
    const d = flyDiscovery(FLY_ENV, { port: 8080, resolve });
    assert.deepEqual((await d.discover()).map((p) => p.name), ["148e4d55b36289", "3d8d9e3fe0d389"]);
    delete dns.records["vms.tickraft.internal"];
    assert.deepEqual(await d.discover(), [d.self]);
  });
});

Deno.test("fly: a malformed TXT entry is an error; missing variables are named", async () => {
  await withDns(
    { "vms.tickraft.internal": { TXT: [["148e4d55b36289 ord extra"]] } },
    async (_, resolve) => {
      await assertRejectsMessage(
        flyDiscovery(FLY_ENV, { port: 8080, resolve }).discover(),
        /TXT vms\.tickraft\.internal has "148e4d55b36289 ord extra", not "<machine id> <region>"/,
      );
    },
  );
  assertThrowsMessage(
    () => flyDiscovery({ ...FLY_ENV, FLY_MACHINE_ID: "" }, { port: 8080 }),
    /needs FLY_MACHINE_ID/,
  );
  assertThrowsMessage(
    () => flyDiscovery({ ...FLY_ENV, FLY_APP_NAME: " " }, { port: 8080 }),
    /needs FLY_APP_NAME/,
  );
  const noIp = flyDiscovery({ FLY_APP_NAME: "tickraft", FLY_MACHINE_ID: "3d8d9e3fe0d389" }, {
    port: 8080,
  });
  assert.deepEqual(noIp.self, {
    name: "3d8d9e3fe0d389",
    address: "http://3d8d9e3fe0d389.vm.tickraft.internal:8080",
  });
});

const SVC = "tickraft.default.svc.cluster.local";

Deno.test("dns: headless Service A records name peers by IP", async () => {
  await withDns(
    { [SVC]: { A: ["10.244.2.7", "10.244.1.5", "10.244.3.9"] } },
    async (_, resolve) => {
      const d = dnsDiscovery({
        service: `${SVC}.`,
        self_name: "10.244.1.5",
        self_address: "http://10.244.1.5:8080",
        port: 8080,
        resolve,
      });
      assert.equal(d.strategy, "dns");
      assert.deepEqual(await d.discover(), [
        { name: "10.244.1.5", address: "http://10.244.1.5:8080" },
        { name: "10.244.2.7", address: "http://10.244.2.7:8080" },
        { name: "10.244.3.9", address: "http://10.244.3.9:8080" },
      ]);
    },
  );
});

Deno.test("dns: an IPv6 node reads AAAA only and writes ':' as '-' in names", async () => {
  await withDns(
    { [SVC]: { A: ["10.244.2.7"], AAAA: ["fd00:10:244::7", "fd00:10:244::5"] } },
    async (dns, resolve) => {
      const d = dnsDiscovery({
        service: SVC,
        self_name: "fd00:10:244::5",
        self_address: "http://[fd00:10:244::5]:8080",
        port: 8080,
        resolve,
      });
      assert.deepEqual(await d.discover(), [
        { name: "fd00-10-244--5", address: "http://[fd00:10:244::5]:8080" },
        { name: "fd00-10-244--7", address: "http://[fd00:10:244::7]:8080" },
      ]);
      assert.deepEqual(dns.queries, [`AAAA ${SVC}`]);
    },
  );
});

Deno.test("dns: SRV records name peers by pod hostname and carry the port", async () => {
  const srv = (host: string) => ({
    priority: 0,
    weight: 33,
    port: 9090,
    target: `${host}.${SVC}.`,
  });
  await withDns({
    [`_raft._tcp.${SVC}`]: { SRV: [srv("tickraft-2"), srv("tickraft-0"), srv("tickraft-1")] },
  }, async (_, resolve) => {
    const d = dnsDiscovery({
      service: SVC,
      self_name: "tickraft-1",
      self_address: `http://tickraft-1.${SVC}:9090`,
      port: 8080,
      resolve,
      srv: true,
      port_name: "raft",
    });
    assert.deepEqual(await d.discover(), [
      { name: "tickraft-0", address: `http://tickraft-0.${SVC}:9090` },
      { name: "tickraft-1", address: `http://tickraft-1.${SVC}:9090` },
      { name: "tickraft-2", address: `http://tickraft-2.${SVC}:9090` },
    ]);
  });
});

Deno.test("dns: NXDOMAIN (no ready pods) and an empty answer both give just self", async () => {
  await withDns({ [SVC]: {} }, async (_, resolve) => {
    const byIp = dnsDiscovery({
      service: SVC,
      self_name: "10.0.0.1",
      self_address: "http://10.0.0.1:8080",
      port: 8080,
      resolve,
    });
    assert.deepEqual(await byIp.discover(), [byIp.self]);
    const bySrv = dnsDiscovery({
      service: SVC,
      self_name: "tickraft-0",
      self_address: `http://tickraft-0.${SVC}:8080`,
      port: 8080,
      resolve,
      srv: true,
    });
    assert.deepEqual(await bySrv.discover(), [bySrv.self]);
  });
});

Deno.test("dns: without SRV the node must be named and addressed by its IP", () => {
  const base = { service: SVC, port: 8080 };
  assertThrowsMessage(
    () => dnsDiscovery({ ...base, self_name: "node-1", self_address: "http://10.0.0.1:8080" }),
    /this node's name must be 10\.0\.0\.1 \(the IP it advertises\), not node-1/,
  );
  assertThrowsMessage(
    () => dnsDiscovery({ ...base, self_name: "node-1", self_address: "http://node-1.svc:8080" }),
    /advertise the pod IP/,
  );
  assert.equal(
    dnsDiscovery({ ...base, self_name: "fd00-1--5", self_address: "http://[fd00:1::5]:8080" }).self
      .name,
    "fd00-1--5",
  );
});

Deno.test("denoResolver: a resolver that does not answer is a rejection, not an empty list", async () => {
  const silent = await startDnsServer();
  await silent.close(); // nothing listens on the port any more
  const resolve = denoResolver({
    nameServer: { ipAddr: "127.0.0.1", port: silent.port },
    timeout_ms: 200,
  });
  await assert.rejects(resolve("x.test", "A"), /DNS A lookup of x\.test failed/);
});

Deno.test("denoResolver: Deno reports SERVFAIL like NXDOMAIN, so it reads as no records", async () => {
  // Pinned because docs/discovery.md relies on it: a failing server cannot be told apart from an
  // empty one, which is why boot waits for min_peers instead of trusting one answer.
  await withDns({ [SVC]: { A: ["10.0.0.1"] } }, async (dns, resolve) => {
    dns.servfail.add(SVC);
    assert.deepEqual(await resolve(SVC, "A"), []);
    assert.ok(dns.queries.includes(`A ${SVC}`), "the server was asked");
  });
});

/** A Discovery whose answers come from a list, one per call; an Error entry rejects. */
function scripted(answers: (PeerSpec[] | Error)[]): Discovery & { calls: number } {
  const self = { name: "a", address: "http://a:1" };
  const d = {
    strategy: "static" as const,
    self,
    calls: 0,
    discover() {
      const answer = answers[Math.min(d.calls++, answers.length - 1)];
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
  return d;
}

Deno.test("discoverWithRetry waits for min_peers as DNS fills in", async () => {
  await withDns({
    "vms.tickraft.internal": { TXT: [["3d8d9e3fe0d389 ams"]] },
  }, async (dns, resolve) => {
    const d = flyDiscovery(FLY_ENV, { port: 8080, resolve });
    const delays: number[] = [];
    const sleep = (ms: number) => {
      delays.push(ms);
      // The platform publishes one more Machine while we wait.
      const n = delays.length;
      dns.records[`14${n}e4d55b3628${n}.vm.tickraft.internal`] = { AAAA: [`fdaa::${n}`] };
      dns.records["vms.tickraft.internal"].TXT![0].push(`,14${n}e4d55b3628${n} ord`);
      return Promise.resolve();
    };
    const peers = await discoverWithRetry(d, { attempts: 5, delay_ms: 250, min_peers: 3, sleep });
    assert.deepEqual(peers.map((p) => p.name), [
      "141e4d55b36281",
      "142e4d55b36282",
      "3d8d9e3fe0d389",
    ]);
    assert.deepEqual(delays, [250, 250]);
  });
});

Deno.test("discoverWithRetry retries lookup failures, stops on DiscoveryError, says what it saw", async () => {
  const sleep = () => Promise.resolve();
  const two = [{ name: "a", address: "http://a:1" }, { name: "b", address: "http://b:1" }];
  const flaky = scripted([new Error("timed out"), two]);
  assert.deepEqual(
    await discoverWithRetry(flaky, { attempts: 3, delay_ms: 1, min_peers: 2, sleep }),
    two,
  );
  assert.equal(flaky.calls, 2);

  const bad = scripted([new DiscoveryError("bad TXT")]);
  await assertRejectsMessage(
    discoverWithRetry(bad, { attempts: 5, delay_ms: 1, min_peers: 1, sleep }),
    /bad TXT/,
  );
  assert.equal(bad.calls, 1);

  await assertRejectsMessage(
    discoverWithRetry(scripted([two]), { attempts: 3, delay_ms: 1, min_peers: 3, sleep }),
    /static discovery needs 3 nodes; after 3 attempts found 2 \(a, b\)/,
  );
  await assertRejectsMessage(
    discoverWithRetry(scripted([new Error("timed out")]), {
      attempts: 2,
      delay_ms: 1,
      min_peers: 1,
      sleep,
    }),
    /after 2 attempts the last attempt failed: timed out/,
  );
});

Deno.test("discoveryFromConfig picks the strategy and names the setting to fix", async () => {
  const cfg = {
    strategy: "auto" as const,
    peers: "",
    node_id: "node-1",
    advertise_url: "",
    dns_service: "",
    port: 8080,
  };
  const single = discoveryFromConfig(cfg, {});
  assert.equal(single.strategy, "static");
  assert.deepEqual(await single.discover(), [{ name: "node-1", address: "http://127.0.0.1:8080" }]);

  const listed = discoveryFromConfig({ ...cfg, peers: "node-1=http://h1:1,node-2=http://h2:2" }, {
    FLY_APP_NAME: "tickraft",
  });
  assert.equal(listed.strategy, "static");
  assert.equal(listed.self.address, "http://h1:1");
  assertThrowsMessage(
    () => discoveryFromConfig({ ...cfg, node_id: "node-3", peers: "node-1=http://h1:1" }, {}),
    /NODE_ID node-3 is not in CLUSTER_NODES \(node-1\): add it, or set ADVERTISE_URL/,
  );
  assert.equal(
    discoveryFromConfig({
      ...cfg,
      node_id: "node-3",
      peers: "node-1=http://h1:1",
      advertise_url: "http://h3:3",
    }, {})
      .self.address,
    "http://h3:3",
  );

  const fly = discoveryFromConfig(cfg, { ...FLY_ENV, FLY_PRIVATE_IP: "fdaa::9" });
  assert.equal(fly.strategy, "fly");
  assert.deepEqual(fly.self, {
    name: "3d8d9e3fe0d389",
    address: "http://[fdaa::9]:8080",
    region: "ams",
  });
  assertThrowsMessage(
    () => discoveryFromConfig({ ...cfg, strategy: "fly" }, {}),
    /needs FLY_APP_NAME/,
  );
  assertThrowsMessage(
    () => discoveryFromConfig({ ...cfg, advertise_url: "http://x:1" }, FLY_ENV),
    /ADVERTISE_URL is derived from FLY_PRIVATE_IP/,
  );
  assertThrowsMessage(
    () => discoveryFromConfig({ ...cfg, strategy: "dns", peers: "node-1=http://h1:1" }, {}),
    /CLUSTER_NODES is only read by static discovery/,
  );

  const dns = { ...cfg, strategy: "dns" as const };
  assertThrowsMessage(() => discoveryFromConfig(dns, {}), /needs DNS_SERVICE/);
  assertThrowsMessage(
    () => discoveryFromConfig({ ...dns, dns_service: SVC }, {}),
    /with A records needs ADVERTISE_URL=http:\/\/<pod IP>:8080/,
  );
  assertThrowsMessage(
    () => discoveryFromConfig({ ...dns, dns_service: `_http.${SVC}` }, {}),
    /_<port name>\._tcp\.<service>/,
  );
  const srv = discoveryFromConfig({
    ...dns,
    node_id: "tickraft-0",
    dns_service: `_http._tcp.${SVC}`,
  }, {});
  assert.deepEqual(srv.self, { name: "tickraft-0", address: `http://tickraft-0.${SVC}:8080` });
  const byIp = discoveryFromConfig(
    { ...dns, node_id: "10.0.0.4", dns_service: SVC, advertise_url: "http://10.0.0.4:8080" },
    {},
  );
  assert.equal(byIp.self.name, "10.0.0.4");
});
