/**
 * Worker jobs on a real 3-node cluster with real `tickraft worker` processes: occurrences run
 * where their constraints say, a job that fits nowhere waits with its explanation and runs when a
 * fitting worker joins, a drained worker takes nothing new, a worker killed with `kill -9` has its
 * allocation placed again after its TTL with the same idempotency key, and killing the leader
 * loses no allocation and runs no occurrence twice.
 */
import assert from "node:assert/strict";
import {
  agreedLeader,
  type Cluster,
  json,
  post,
  startCluster,
  stopCluster,
} from "../support/process_cluster.ts";
import { eventually } from "../support/wait.ts";
import { spawnWorker, type WorkerProcess } from "../support/worker_process.ts";

interface Allocation {
  id: string;
  job_id: string;
  worker_id: string | null;
  status: string;
  idempotency_key: string;
  explanation: string | null;
  outcome: { ok: boolean; output_excerpt: string | null; exit_code: number | null } | null;
}

/** Above the agent's longest reconnect backoff (5 s), so a leader change does not lose a worker. */
const TTL = "6s";

/** What the agents of the running test logged about their allocations (for a failure message). */
let workerLogs = () => "";

async function withWorkerCluster(
  fn: (cluster: Cluster, worker: (id: string, flags: string[]) => WorkerProcess) => Promise<void>,
): Promise<void> {
  const cluster = await startCluster({
    env: { WORKER_TTL: TTL, JOB_INPROGRESS_TIMEOUT: "20s" },
  });
  const workers: WorkerProcess[] = [];
  workerLogs = () =>
    workers.flatMap((w) => w.logs())
      .filter((l) => String(l.msg).startsWith("allocation") || l.level === "warn")
      .map((l) => JSON.stringify(l)).join("\n");
  try {
    await agreedLeader(cluster, cluster.names);
    const servers = [...cluster.urls.values()].join(",");
    const worker = (id: string, flags: string[]) => {
      const w = spawnWorker([
        "--server",
        servers,
        "--id",
        id,
        "--exec",
        `sh -c 'cat; echo " ran on ${id}"'`,
        ...flags,
      ]);
      workers.push(w);
      return w;
    };
    await fn(cluster, worker);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await stopCluster(cluster);
  }
}

const url = (cluster: Cluster, name = cluster.names[0]) => cluster.urls.get(name)!;

async function workerStatus(cluster: Cluster, id: string): Promise<string | undefined> {
  const { status, body } = await json<{ status: string }>(`${url(cluster)}/workers/${id}`);
  return status === 200 ? body.status : undefined;
}

async function createJob(cluster: Cluster, executor: Record<string, unknown>, extra = {}) {
  const { status, body } = await json<{ id: string; error?: string }>(
    `${url(cluster)}/jobs`,
    post({
      type: "once",
      timestamp: new Date(Date.now() + 300).toISOString(),
      payload: { hello: "worker" },
      executor: { type: "worker", ...executor },
      ...extra,
    }),
  );
  assert.equal(status, 201, JSON.stringify(body));
  return body.id;
}

async function allocations(cluster: Cluster, job_id: string): Promise<Allocation[]> {
  const { body } = await json<{ allocations: Allocation[] }>(
    `${url(cluster)}/allocations?job=${job_id}`,
  );
  return body.allocations;
}

const finished = (cluster: Cluster, job_id: string, timeout_ms = 20_000) =>
  eventually(`job ${job_id}'s allocation finished`, async () => {
    const all = await allocations(cluster, job_id);
    return all.some((a) => a.status === "completed" || a.status === "failed") ? all : undefined;
  }, timeout_ms);

Deno.test("worker jobs run where their constraints say; a job that fits nowhere waits, then runs", async () => {
  await withWorkerCluster(async (cluster, worker) => {
    worker("w-fra", ["--region", "fra", "--cpu", "1000", "--memory", "512", "--slots", "2"]);
    worker("w-ams", [
      "--region",
      "ams",
      "--cpu",
      "2000",
      "--memory",
      "1024",
      "--labels",
      "gpu=true",
    ]);
    await eventually(
      "both workers ready",
      async () =>
        (await workerStatus(cluster, "w-fra")) === "ready" &&
          (await workerStatus(cluster, "w-ams")) === "ready"
          ? true
          : undefined,
    );

    const inFra = await createJob(cluster, {
      resources: { cpu_millis: 500, memory_mb: 128 },
      constraints: [{ attribute: "region", operator: "=", value: "fra" }],
    });
    const onGpu = await createJob(cluster, {
      constraints: [{ attribute: "gpu", operator: "exists" }],
    });
    const [fra] = await finished(cluster, inFra);
    assert.equal(fra.worker_id, "w-fra");
    assert.equal(fra.status, "completed");
    assert.match(fra.outcome!.output_excerpt!, /"hello":"worker"/);
    assert.match(fra.outcome!.output_excerpt!, /ran on w-fra/);
    const [gpu] = await finished(cluster, onGpu);
    assert.equal(gpu.worker_id, "w-ams");
    const execution = await eventually("the execution recorded", async () => {
      const { body } = await json<{ executions: { status: string; worker_id: string | null }[] }>(
        `${url(cluster)}/jobs/${inFra}/executions`,
      );
      return body.executions[0]?.status === "completed" ? body.executions[0] : undefined;
    });
    assert.equal(execution.worker_id, "w-fra", "the execution names its worker");

    // Fits nowhere: pending with the explanation, then runs once a fitting worker registers.
    const big = await createJob(cluster, { resources: { cpu_millis: 100, memory_mb: 4_000 } });
    const pending = await eventually("the big job pending", async () => {
      const r = await json<Allocation>(`${url(cluster)}/jobs/${big}/placement`);
      return r.status === 200 && r.body.status === "pending" ? r.body : undefined;
    });
    assert.match(pending.explanation!, /no worker fits \(0 of 2\)/);
    assert.match(pending.explanation!, /memory exhausted: 2 workers/);
    worker("w-big", ["--region", "fra", "--cpu", "1000", "--memory", "8192"]);
    const [ran] = await finished(cluster, big);
    assert.equal(ran.worker_id, "w-big");
    assert.equal(ran.status, "completed");
    assert.equal(ran.id, pending.id, "the pending allocation itself was placed");

    // A drained worker takes nothing new.
    const drained = await json<{ status: string }>(
      `${url(cluster)}/workers/w-fra/drain`,
      post({}),
    );
    assert.equal(drained.body.status, "draining");
    const afterDrain = await createJob(cluster, {
      constraints: [{ attribute: "region", operator: "=", value: "fra" }],
    });
    const [placed] = await finished(cluster, afterDrain);
    assert.equal(placed.worker_id, "w-big");
  });
});

Deno.test("kill -9 of a worker: its allocation is placed again after WORKER_TTL with the same key", async () => {
  await withWorkerCluster(async (cluster, worker) => {
    const slow = spawnWorkerSleeping(worker);
    await eventually(
      "w-slow ready",
      async () => (await workerStatus(cluster, "w-slow")) === "ready" ? true : undefined,
    );
    const job = await createJob(cluster, {
      constraints: [{
        attribute: "worker.id",
        operator: "=",
        value: "w-slow",
        mode: "preferred",
        weight: 100,
      }],
    });
    const running = await eventually("running on w-slow", async () => {
      const all = await allocations(cluster, job);
      return all.find((a) => a.status === "running" && a.worker_id === "w-slow");
    });
    worker("w-quick", []);
    await eventually(
      "w-quick ready",
      async () => (await workerStatus(cluster, "w-quick")) === "ready" ? true : undefined,
    );
    slow.signal("SIGKILL");
    await slow.exited;
    const all = await finished(cluster, job, 30_000);
    const lost = all.find((a) => a.id === running.id)!;
    assert.equal(lost.status, "lost");
    assert.match(lost.explanation!, /worker lost: no heartbeat/);
    const again = all.find((a) => a.status === "completed")!;
    assert.equal(again.worker_id, "w-quick");
    assert.equal(again.idempotency_key, running.idempotency_key);
    assert.equal(await workerStatus(cluster, "w-slow"), "lost");
  });
});

/** A worker whose allocations take 60 s (killed by the test long before). */
function spawnWorkerSleeping(worker: (id: string, flags: string[]) => WorkerProcess) {
  return worker("w-slow", ["--exec", "sh -c 'sleep 60'"]);
}

Deno.test("killing the leader loses no allocation and runs no occurrence twice", async () => {
  await withWorkerCluster(async (cluster, worker) => {
    // Each allocation takes 2 s, so the leader dies while they run.
    worker("w-1", ["--slots", "4", "--exec", "sh -c 'sleep 2; cat'"]);
    worker("w-2", ["--slots", "4", "--exec", "sh -c 'sleep 2; cat'"]);
    await eventually(
      "workers ready",
      async () =>
        (await workerStatus(cluster, "w-1")) === "ready" &&
          (await workerStatus(cluster, "w-2")) === "ready"
          ? true
          : undefined,
    );
    const jobs: string[] = [];
    for (let i = 0; i < 8; i++) jobs.push(await createJob(cluster, {}, { name: `job-${i}` }));
    const leader = await agreedLeader(cluster, cluster.names);
    await eventually("allocations running", async () => {
      const { body } = await json<{ allocations: Allocation[] }>(
        `${url(cluster)}/allocations?status=running`,
      );
      return body.allocations.length >= 4 ? true : undefined;
    });
    await cluster.nodes.get(leader)!.kill("SIGKILL");
    const rest = cluster.names.filter((n) => n !== leader);
    await agreedLeader(cluster, rest);
    for (const job of jobs) {
      const all = await eventually(`job ${job} done`, async () => {
        const { body } = await json<{ allocations: Allocation[] }>(
          `${cluster.urls.get(rest[0])}/allocations?job=${job}`,
        );
        return body.allocations.some((a) => a.status === "completed")
          ? body.allocations
          : undefined;
      }, 30_000);
      const completed = all.filter((a) => a.status === "completed");
      assert.equal(completed.length, 1, `job ${job}: ${JSON.stringify(all)}`);
      assert.deepEqual(
        all.map((a) => a.status),
        ["completed"],
        `placed once, never again: ${JSON.stringify(all)}\n${workerLogs()}`,
      );
      await eventually(`job ${job} completed`, async () => {
        const status = await json<{ status: string }>(
          `${cluster.urls.get(rest[0])}/jobs/${job}/status`,
        );
        return status.body.status === "completed" ? true : undefined;
      });
    }
  });
});
