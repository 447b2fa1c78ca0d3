/**
 * The worker agent as a real process (`deno run src/main.ts worker …`) against the cluster side
 * of docs/workers.md (tests/support/worker_server.ts) on loopback, running allocations through a
 * real local handler (tests/support/sink.ts) or a real subprocess.
 */
import assert from "node:assert/strict";
import { verifySignature } from "../../src/scheduler/webhook/signing.ts";
import { eventually } from "../support/wait.ts";
import { startSink } from "../support/sink.ts";
import { startWorkerCluster } from "../support/worker_server.ts";
import { spawnWorker } from "../support/worker_process.ts";

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

/** A command that echoes its stdin and environment, sleeps when the payload asks, exits 3. */
const EXEC = `sh -c 'p=$(cat); case "$p" in *sleep*) exec sleep 30;; esac; ` +
  `printf "%s|%s|%s|%s|%s" "$p" "$TICKRAFT_ALLOCATION_ID" "$TICKRAFT_JOB_ID" ` +
  `"$TICKRAFT_ATTEMPT" "$TICKRAFT_IDEMPOTENCY_KEY"; exit 3'`;

Deno.test("--exec: payload on stdin, TICKRAFT_* env, exit code reported, killed at the lease", async () => {
  await using cluster = await startWorkerCluster({ token: TOKEN });
  await using worker = spawnWorker(
    workerArgs("w-exec", [cluster.nodes[0].url], ["--slots", "2", "--exec", EXEC]),
  );
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const echo = cluster.place("w-exec", { payload: { hello: "world" }, attempt: 2 });
  const sleeper = cluster.place("w-exec", { payload: { sleep: true }, lease_seconds: 1 });
  await cluster.waitFor(
    "both finished",
    () => echo.finish !== undefined && sleeper.finish !== undefined,
    WAIT_MS,
  ).catch((error) => {
    throw new Error(`${error.message}\n${worker.output()}`);
  });

  assert.deepEqual(echo.finish, {
    ...echo.finish,
    worker_id: "w-exec",
    ok: false,
    exit_code: 3,
    status_code: null,
    error: "exit code 3",
    output_excerpt: `{"hello":"world"}|${echo.id}|${echo.job_id}|2|${echo.idempotency_key}`,
  });
  assert.equal(sleeper.finish?.ok, false);
  assert.match(sleeper.finish?.error ?? "", /lease ran out/);
  assert.equal(sleeper.finish?.exit_code, 143, "ended by SIGTERM");
  assert.equal(sleeper.status, "failed", "finished within its lease, so not lost");
  assert.ok(worker.logs().some((l) => l.msg === "allocation finished" && l.allocation === echo.id));
});

Deno.test("a start answered 409 is skipped; the next allocation runs", async () => {
  await using cluster = await startWorkerCluster();
  await using sink = await startSink();
  await using worker = spawnWorker(
    ["--server", cluster.nodes[0].url, "--id", "w-409", "--handler", `${sink.url}/run`],
  );
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const taken = cluster.place("w-409", { stale: true });
  const next = cluster.place("w-409");
  await cluster.waitFor("the next one finished", () => next.finish !== undefined, WAIT_MS);

  assert.equal(next.finish?.ok, true);
  assert.equal(taken.finish, undefined);
  assert.equal(taken.status, "placed", "left to the worker that has it");
  const starts = cluster.calls.filter((c) => c.path === `/allocations/${taken.id}/start`);
  assert.deepEqual(starts.map((c) => c.status), [409]);
  assert.deepEqual(
    sink.requests.map((r) => r.headers["x-tickraft-allocation"]),
    [next.id],
    "the skipped one never reached the handler",
  );
  assert.ok(
    worker.logs().some((l) =>
      String(l.msg).startsWith("allocation skipped") && l.allocation === taken.id
    ),
  );
});

Deno.test("a heartbeat answered 404 makes the agent register again", async () => {
  await using cluster = await startWorkerCluster();
  await using sink = await startSink();
  await using worker = spawnWorker(
    ["--server", cluster.nodes[0].url, "--id", "w-404", "--handler", `${sink.url}/run`],
  );
  await cluster.waitFor("a long poll", () => cluster.polling("w-404") === 1, WAIT_MS);
  cluster.forget("w-404");
  await cluster.waitFor("a second registration", () => cluster.registrations.length === 2, WAIT_MS);
  assert.ok(
    cluster.calls.some((c) => c.path === "/workers/w-404/heartbeat" && c.status === 404),
    "it was the 404 that did it",
  );
  const after = cluster.place("w-404");
  await cluster.waitFor("it runs work again", () => after.finish?.ok === true, WAIT_MS);
  assert.ok(worker.logs().some((l) => String(l.msg).includes("registering again")));
});

Deno.test("when its node stops, the agent fails over to the next --server", async () => {
  await using cluster = await startWorkerCluster({ nodes: 2 });
  await using sink = await startSink();
  const [first, second] = cluster.nodes;
  await using worker = spawnWorker(
    ["--server", `${first.url},${second.url}`, "--id", "w-fail", "--handler", `${sink.url}/run`],
  );
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const before = cluster.place("w-fail");
  await cluster.waitFor("the first allocation", () => before.finish?.ok === true, WAIT_MS);
  assert.ok(cluster.calls.every((c) => c.node === 0), "all calls to the first node so far");

  await first.stop();
  const heartbeats_at_stop = cluster.heartbeats.length;
  const after = cluster.place("w-fail");
  await cluster.waitFor("the allocation after the stop", () => after.finish?.ok === true, WAIT_MS);
  await cluster.waitFor(
    "heartbeats to the second node",
    () => cluster.heartbeats.length > heartbeats_at_stop + 2,
    WAIT_MS,
  );
  const late = cluster.calls.filter((c) => c.path.includes(after.id));
  assert.ok(late.length === 2 && late.every((c) => c.node === 1), JSON.stringify(late));
  assert.ok(
    worker.logs().some((l) =>
      l.msg === "reconnecting" && l.from === first.url && l.to === second.url
    ),
    worker.output(),
  );
});

Deno.test("a node that refuses connections or answers 503 is left for the next one", async () => {
  await using cluster = await startWorkerCluster({ nodes: 3 });
  await using sink = await startSink();
  const [gone, unavailable, healthy] = cluster.nodes;
  await gone.stop();
  unavailable.answerAll(503);
  await using worker = spawnWorker([
    "--server",
    cluster.nodes.map((n) => n.url).join(","),
    "--id",
    "w-503",
    "--handler",
    `${sink.url}/run`,
  ]);
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const allocation = cluster.place("w-503");
  await cluster.waitFor("it ran", () => allocation.finish?.ok === true, WAIT_MS);
  assert.ok(cluster.calls.some((c) => c.node === 1 && c.status === 503));
  assert.ok(cluster.calls.filter((c) => c.status !== 503).every((c) => c.node === 2));
  const hops = worker.logs().filter((l) => l.msg === "reconnecting").map((l) => [l.from, l.to]);
  assert.deepEqual(hops.slice(0, 2), [[gone.url, unavailable.url], [unavailable.url, healthy.url]]);
});

Deno.test("a wrong token stops the agent with exit 1 and says what to check", async () => {
  await using cluster = await startWorkerCluster({ token: TOKEN });
  await using worker = spawnWorker([
    "--server",
    cluster.nodes[0].url,
    "--token",
    "wrong",
    "--exec",
    "true",
  ]);
  assert.equal(await worker.exited, 1, worker.output());
  assert.match(worker.output(), /HTTP 401.*check --token/);
  assert.equal(cluster.registrations.length, 0);
});

Deno.test("never more than --slots allocations at once", async () => {
  await using cluster = await startWorkerCluster();
  const finished = () => [...cluster.allocations.values()].filter((a) => a.finish).length;
  let received = 0;
  let in_flight_max = 0;
  await using sink = await startSink({
    // A slot frees only once its finish is answered, so what the handler holds at any arrival is
    // all it received minus all the cluster saw finished.
    onRequest: () => in_flight_max = Math.max(in_flight_max, ++received - finished()),
    respond: () => ({ status: 200, delay_ms: 400 }),
  });
  await using worker = spawnWorker([
    "--server",
    cluster.nodes[0].url,
    "--id",
    "w-slots",
    "--slots",
    "2",
    "--handler",
    `${sink.url}/run`,
  ]);
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const placed = Array.from({ length: 5 }, () => cluster.place("w-slots"));
  await cluster.waitFor("all five finished", () => finished() === 5, WAIT_MS);
  assert.equal(cluster.workers.get("w-slots")?.running_max, 2, "two ran at once, never three");
  assert.equal(in_flight_max, 2, "the handler had two at once, never three");
  assert.ok(placed.every((a) => a.finish?.ok === true));
  assert.ok(worker.logs().some((l) => l.msg === "allocation finished"));
});

Deno.test("SIGTERM drains: tells the cluster, finishes what runs, starts nothing, exits 0", async () => {
  await using cluster = await startWorkerCluster();
  await using sink = await startSink({ respond: () => ({ status: 200, delay_ms: 1_500 }) });
  await using worker = spawnWorker(
    ["--server", cluster.nodes[0].url, "--id", "w-drain", "--handler", `${sink.url}/run`],
  );
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const running = cluster.place("w-drain");
  await sink.waitFor((reqs) => reqs.length === 1, WAIT_MS);
  worker.signal("SIGTERM");
  await cluster.waitFor(
    "the drain call",
    () => cluster.workers.get("w-drain")?.status === "draining",
    WAIT_MS,
  );
  assert.equal(
    cluster.allocations.get(running.id)?.status,
    "running",
    "the drain was sent while the allocation still ran",
  );
  const late = cluster.place("w-drain");

  assert.equal(await worker.exited, 0, worker.output());
  assert.equal(running.finish?.ok, true);
  assert.equal(late.status, "lost", "nothing new started; the removal gave it back");
  assert.equal(sink.requests.length, 1);
  assert.equal(cluster.workers.has("w-drain"), false, "deregistered once nothing ran");
  const order = cluster.calls.map((c) => `${c.method} ${c.path.replace(/\?.*$/, "")}`)
    .filter((c) => !c.endsWith("/heartbeat") && !c.endsWith("/allocations"));
  assert.deepEqual(order, [
    "POST /workers",
    `POST /allocations/${running.id}/start`,
    "POST /workers/w-drain/drain",
    `POST /allocations/${running.id}/finish`,
    "DELETE /workers/w-drain",
  ]);
});

Deno.test("a second SIGTERM exits at once, without waiting for what runs", async () => {
  await using cluster = await startWorkerCluster();
  await using sink = await startSink({ respond: () => ({ status: 200, delay_ms: 60_000 }) });
  await using worker = spawnWorker(
    ["--server", cluster.nodes[0].url, "--id", "w-twice", "--handler", `${sink.url}/run`],
  );
  await cluster.waitFor("a registration", () => cluster.registrations.length === 1, WAIT_MS);
  const running = cluster.place("w-twice");
  await sink.waitFor((reqs) => reqs.length === 1, WAIT_MS);
  worker.signal("SIGTERM");
  await cluster.waitFor(
    "the drain call",
    () => cluster.workers.get("w-twice")?.status === "draining",
    WAIT_MS,
  );
  worker.signal("SIGTERM");
  assert.equal(await worker.exited, 143);
  assert.equal(running.finish, undefined);
  assert.equal(running.status, "running", "left to its lease");
});

Deno.test("--exec without --allow-run exits 2 naming the flag", async () => {
  const main = new URL("../../src/main.ts", import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-sys",
      "--allow-env",
      "--allow-read",
      main,
      "worker",
      "--server",
      "http://127.0.0.1:9",
      "--exec",
      "true",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 2);
  assert.match(new TextDecoder().decode(stderr), /run it with --allow-run/);
});

Deno.test("SIGTERM while no node answers ends the agent with 0 instead of retrying", async () => {
  const cluster = await startWorkerCluster();
  const url = cluster.nodes[0].url;
  await cluster.close();
  await using worker = spawnWorker(["--server", url, "--id", "w-alone", "--exec", "true"]);
  await eventually(
    "a reconnect",
    () => Promise.resolve(worker.logs().some((l) => l.msg === "reconnecting") || undefined),
  );
  worker.signal("SIGTERM");
  assert.equal(await worker.exited, 0, worker.output());
});
