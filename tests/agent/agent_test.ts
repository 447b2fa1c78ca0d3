/**
 * The worker agent as a real process (`deno run src/main.ts worker …`) against the cluster side
 * of docs/workers.md (tests/support/worker_server.ts) on loopback, running allocations through a
 * real local handler (tests/support/sink.ts) or a real subprocess.
 */
import assert from "node:assert/strict";
import { verifySignature } from "../../src/scheduler/webhook/signing.ts";
import { startSink } from "../support/sink.ts";
import { startWorkerCluster } from "../support/worker_server.ts";
import { spawnWorker } from "./worker_process.ts";

const SECRET = "agent-test-secret";
const TOKEN = "agent-test-token";
const WAIT_MS = 20_000;

function workerArgs(id: string, servers: string[], extra: string[]): string[] {
  return ["--server", servers.join(","), "--id", id, "--token", TOKEN, ...extra];
}

Deno.test("register, heartbeat, poll, start, run on the handler, finish", async () => {
  await using cluster = await startWorkerCluster({ token: TOKEN });
  await using sink = await startSink({
    respond: (req) => ({
      status: (req.json as { payload: { fail?: boolean } }).payload.fail === true ? 500 : 200,
      body: `handled ${req.headers["x-tickraft-allocation"]} ${"x".repeat(1_000)}`,
    }),
  });
  await using worker = spawnWorker(workerArgs("w-handler", [cluster.nodes[0].url], [
    "--pool",
    "batch",
    "--region",
    "fra",
    "--zone",
    "fra-a",
    "--labels",
    "gpu=false,tier=batch",
    "--taints",
    "dedicated=ml:NoSchedule,spot:PreferNoSchedule",
    "--cpu",
    "1500",
    "--memory",
    "2048",
    "--disk",
    "100",
    "--slots",
    "2",
    "--secret",
    SECRET,
    "--handler",
    `${sink.url}/run`,
  ]));

  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  assert.deepEqual(cluster.registrations[0], {
    id: "w-handler",
    pool: "batch",
    region: "fra",
    zone: "fra-a",
    labels: { gpu: "false", tier: "batch" },
    taints: [
      { key: "dedicated", value: "ml", effect: "NoSchedule" },
      { key: "spot", value: "", effect: "PreferNoSchedule" },
    ],
    capacity: { cpu_millis: 1500, memory_mb: 2048, disk_mb: 100, slots: 2 },
  });
  await cluster.waitFor("heartbeats", () => cluster.heartbeats.length >= 3, WAIT_MS);
  const usage = cluster.heartbeats[0].usage;
  assert.ok(usage.memory_percent > 0, `memory from the OS: ${JSON.stringify(usage)}`);

  const good = cluster.place("w-handler", { payload: { n: 1 } });
  const bad = cluster.place("w-handler", { payload: { fail: true } });
  await cluster.waitFor(
    "both finished",
    () => bad.finish !== undefined && good.finish !== undefined,
    WAIT_MS,
  );

  assert.equal(good.status, "completed");
  assert.equal(good.finish?.ok, true);
  assert.equal(good.finish?.status_code, 200);
  assert.equal(good.finish?.output_excerpt.length, 512);
  assert.ok(good.finish?.output_excerpt.startsWith(`handled ${good.id} xxx`));
  assert.equal(bad.status, "failed");
  assert.equal(bad.finish?.ok, false);
  assert.equal(bad.finish?.status_code, 500);

  const request = sink.requests.find((r) => r.headers["x-tickraft-allocation"] === good.id);
  assert.ok(request !== undefined);
  assert.equal(request.path, "/run");
  assert.equal(request.idempotency_key, good.idempotency_key);
  assert.deepEqual(request.json, {
    job_id: good.job_id,
    scheduled_at: good.scheduled_at,
    attempt: 1,
    payload: { n: 1 },
  });
  const timestamp_s = Number(request.headers["x-tickraft-timestamp"]);
  const signature = request.headers["x-tickraft-signature"];
  assert.ok(await verifySignature(SECRET, signature, timestamp_s, request.body, Date.now() / 1000));
  assert.equal(
    await verifySignature("other", signature, timestamp_s, request.body, Date.now() / 1000),
    false,
  );

  await cluster.waitFor(
    "a heartbeat that reports the handled allocations",
    () => cluster.heartbeats.some((h) => h.usage.rps > 0),
    WAIT_MS,
  );
  const messages = worker.logs().map((l) => `${l.msg} ${l.allocation ?? ""}`.trim());
  for (const a of [good, bad]) {
    assert.ok(messages.includes(`allocation started ${a.id}`), messages.join("\n"));
    assert.ok(messages.includes(`allocation finished ${a.id}`), messages.join("\n"));
  }
  assert.ok(!worker.output().includes(SECRET), "the secret is never logged");
  assert.ok(!worker.output().includes(TOKEN), "the token is never logged");
});
