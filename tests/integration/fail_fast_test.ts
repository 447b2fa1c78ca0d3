/**
 * A node whose vital loop fails does not go on as a zombie: for each loop (log flush, apply's
 * effects, timer, dispatcher on a node alone; the Raft loop of a cluster's leader) a real node
 * process gets a fault injected at that loop (tests/support/faulty_node.ts, armed by SIGUSR2),
 * answers `/health` and `/ready` with 503 and the reason, and exits with code 1 within a second
 * with one log line that names the loop. In the cluster the other two nodes elect a new leader
 * and take writes.
 */
import assert from "node:assert/strict";
import type { FaultPoint } from "../../src/faults.ts";
import {
  agreedLeader,
  json,
  logLines,
  post,
  startCluster,
  stopCluster,
} from "../support/process_cluster.ts";
import { type NodeProcess, spawnNode } from "../support/process.ts";
import { startSink } from "../support/sink.ts";
import { sleep } from "../support/wait.ts";

const FAULTY_NODE = new URL("../support/faulty_node.ts", import.meta.url).pathname;
const EXIT_WITHIN_MS = 1_000;
const EXIT_LINE = "a vital loop stopped; exiting so that the supervisor restarts the node";

/** What the test saw of a failing node: the first 503 on /health, and the exit. */
interface Failing {
  health: Record<string, unknown>;
  ready: Record<string, unknown>;
  first_503_ms: number;
  exit_code: number;
  exited_ms: number;
}

/** Polls /health until the node stops answering; returns the first 503 and the exit. */
async function watchFailure(node: NodeProcess, timeout_ms = 10_000): Promise<Failing> {
  let exited_ms = 0;
  const exit = node.exited.then((code) => {
    exited_ms = Date.now();
    return code;
  });
  const deadline = Date.now() + timeout_ms;
  let seen: Omit<Failing, "exit_code" | "exited_ms"> | null = null;
  while (exited_ms === 0 && Date.now() < deadline) {
    try {
      const health = await json<Record<string, unknown>>(`${node.url}/health`);
      if (health.status === 503 && seen === null) {
        const ready = await json<Record<string, unknown>>(`${node.url}/ready`);
        seen = {
          health: health.body,
          ready: { status: ready.status, ...ready.body },
          first_503_ms: Date.now(),
        };
      }
    } catch {
      // the server is gone: the process is exiting
    }
    await sleep(10);
  }
  const exit_code = await Promise.race([exit, sleep(5_000).then(() => -1)]);
  assert.ok(seen !== null, `/health never answered 503 before the exit:\n${node.output()}`);
  return { ...seen, exit_code, exited_ms };
}

function assertFailedFast(node: NodeProcess, failing: Failing, loop: string): void {
  assert.equal(failing.exit_code, 1, `exit code:\n${node.output()}`);
  assert.equal(failing.health.status, "failed");
  assert.deepEqual(
    (failing.health.failure as { loop: string }).loop,
    loop,
    JSON.stringify(failing.health),
  );
  assert.equal(failing.ready.status, 503);
  assert.equal(failing.ready.ready, false);
  assert.match(String(failing.ready.reason), new RegExp(`^${loop} stopped: injected fault`));
  const elapsed_ms = failing.exited_ms - failing.first_503_ms;
  assert.ok(elapsed_ms <= EXIT_WITHIN_MS, `exited ${elapsed_ms} ms after the first 503`);
  const lines = logLines(node, EXIT_LINE);
  assert.equal(lines.length, 1, node.output());
  assert.equal(lines[0].loop, loop);
}

/** A node alone with the fault point `point`, armed; `trigger` makes the node reach it. */
async function failAlone(
  point: FaultPoint,
  loop: string,
  trigger: (url: string, sink: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-fault-" });
  await using sink = await startSink();
  const node = await spawnNode(
    ["--data-dir", dir],
    { TICKRAFT_TEST_FAULT: point },
    undefined,
    FAULTY_NODE,
  );
  try {
    Deno.kill(node.pid, "SIGUSR2");
    await sleep(50);
    const watching = watchFailure(node);
    await trigger(node.url, sink.url);
    assertFailedFast(node, await watching, loop);
  } finally {
    await node.kill("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
}

const createJob = (ms_from_now: number) => async (url: string, sink: string) => {
  await fetch(
    `${url}/jobs`,
    post({
      type: "once",
      timestamp: new Date(Date.now() + ms_from_now).toISOString(),
      webhook_url: `${sink}/hook`,
    }),
  ).then((r) => r.body?.cancel());
};

Deno.test("log flush fails → 503, exit 1 within a second", async () => {
  await failAlone("log.flush", "log_flush", async (url, sink) => {
    const response = await fetch(
      `${url}/jobs`,
      post({
        type: "once",
        timestamp: new Date(Date.now() + 60_000).toISOString(),
        webhook_url: sink,
      }),
    );
    assert.equal(response.status, 503);
    await response.body?.cancel();
  });
});

Deno.test("an effects listener fails after a commit → 503, exit 1 within a second", async () => {
  await failAlone("apply.effects", "apply", createJob(60_000));
});

Deno.test("the timer fails on a wake-up → 503, exit 1 within a second", async () => {
  await failAlone("timer.wake", "timer", createJob(200));
});

Deno.test("the dispatcher fails on a delivery → 503, exit 1 within a second", async () => {
  await failAlone("dispatch", "dispatcher", createJob(0));
});

Deno.test("a leader's Raft loop fails → 503, exit 1 within a second; the others elect and write", async () => {
  const cluster = await startCluster({
    entry: FAULTY_NODE,
    env: { TICKRAFT_TEST_FAULT: "raft.round" },
  });
  try {
    const leader = await agreedLeader(cluster, cluster.names);
    const node = cluster.nodes.get(leader)!;
    const watching = watchFailure(node);
    Deno.kill(node.pid, "SIGUSR2");
    assertFailedFast(node, await watching, "raft_loop");
    const rest = cluster.names.filter((n) => n !== leader);
    const next = await agreedLeader(cluster, rest);
    assert.notEqual(next, leader);
    const created = await json<{ id: string }>(
      `${cluster.urls.get(next)}/jobs`,
      post({ type: "once", timestamp: new Date(Date.now() + 60_000).toISOString() }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
  } finally {
    await stopCluster(cluster);
  }
});
