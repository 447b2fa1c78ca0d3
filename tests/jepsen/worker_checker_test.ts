/**
 * The worker checkers on histories whose verdict is known: an occurrence that never started or
 * never completed, two runs of one occurrence at once (allowed only after the earlier allocation
 * was lost), an over-allocated worker in one node's sample, and a leader whose `allocated` does
 * not match its allocations.
 */
import assert from "node:assert/strict";
import type {
  AllocationFinal,
  History,
  WorkerJobFinal,
  WorkerRun,
  WorkerSample,
} from "../../scripts/jepsen/history.ts";
import { checkWorkerCapacity, checkWorkerRuns } from "../../scripts/jepsen/worker_checks.ts";

const WORKER = { sleep_ms: 500, cpu_millis: 200, memory_mb: 64 };

function history(
  jobs: WorkerJobFinal[],
  runs: WorkerRun[],
  samples: WorkerSample[] = [],
  active: AllocationFinal[] = [],
): History {
  return {
    seed: 1,
    nodes: ["n1"],
    started_at: 0,
    ops: jobs.map((j, index) => ({
      index,
      client: 0,
      node: "n1",
      f: "create",
      items: [{ key: j.key!, recurring: j.kind !== "once", due_ms: 1_000, worker: WORKER }],
      invoke_ms: 0,
      complete_ms: 10,
      type: "ok",
      status: 201,
      jobs: [{ id: j.id, created: true }],
    })),
    deliveries: [],
    nemesis: [],
    leaders: [],
    healed_ms: 30_000,
    workload_end_ms: 30_000,
    hostile: [],
    node_exits: [],
    probes: [],
    workers: ["w1", "w2"],
    worker_samples: samples,
    worker_runs: runs,
    worker_exits: [],
    worker_jobs: jobs,
    active_allocations: active,
  };
}

function alloc(id: string, worker: string, status: string, started = true): AllocationFinal {
  return {
    id,
    worker_id: worker,
    status,
    scheduled_at_ms: 1_000,
    attempt: 1,
    idempotency_key: "j1:1000",
    started_at_ms: started ? 1_100 : null,
    finished_at_ms: status === "completed" ? 1_700 : null,
    resources: { cpu_millis: 200, memory_mb: 64, disk_mb: 0, slots: 1 },
    explanation: null,
  };
}

function oneOff(allocations: AllocationFinal[]): WorkerJobFinal {
  return {
    id: "j1",
    key: "k1",
    kind: "once",
    status: "completed",
    created_at_ms: 10,
    executions: [{
      scheduled_at_ms: 1_000,
      status: "completed",
      trigger: "schedule",
      missed_count: 0,
    }],
    allocations,
  };
}

const run = (allocation_id: string, worker: string, start_ms: number, end_ms: number | null) => ({
  worker,
  allocation_id,
  idempotency_key: "j1:1000",
  start_ms,
  end_ms,
});

const verdicts = (h: History) => checkWorkerRuns(h, 20_000).results.map((r) => r.ok);

Deno.test("worker checker: a one-off that ran once and completed passes", () => {
  const h = history([oneOff([alloc("a1", "w1", "completed")])], [run("a1", "w1", 1_100, 1_600)]);
  assert.deepEqual(verdicts(h), [true, true]);
});

Deno.test("worker checker: an occurrence that never started, or never completed, fails", () => {
  const never = history([oneOff([alloc("a1", "w1", "placed", false)])], []);
  assert.deepEqual(verdicts(never), [false, true]);
  const unfinished = history([oneOff([alloc("a1", "w1", "running")])], [
    run("a1", "w1", 1_100, null),
  ]);
  assert.deepEqual(verdicts(unfinished), [false, true]);
  const noRecord = history([oneOff([alloc("a1", "w1", "completed")])], []);
  assert.deepEqual(verdicts(noRecord), [false, true], "the cluster says completed, nothing ran");
});

Deno.test("worker checker: two runs of one occurrence at once fail unless the first was lost", () => {
  const twice = history(
    [oneOff([alloc("a1", "w1", "completed"), alloc("a2", "w2", "completed")])],
    [run("a1", "w1", 1_100, 1_600), run("a2", "w2", 1_300, 1_800)],
  );
  assert.deepEqual(verdicts(twice), [true, false]);
  const afterLoss = history(
    [oneOff([alloc("a1", "w1", "lost"), alloc("a2", "w2", "completed")])],
    [run("a1", "w1", 1_100, 7_000), run("a2", "w2", 6_500, 7_200)],
  );
  assert.deepEqual(verdicts(afterLoss), [true, true]);
  const stats = checkWorkerRuns(afterLoss, 20_000).stats;
  assert.equal(stats.overlaps_after_loss, 1);
  const sequential = history(
    [oneOff([alloc("a1", "w1", "failed"), alloc("a2", "w2", "completed")])],
    [run("a1", "w1", 1_100, 1_600), run("a2", "w2", 3_000, 3_500)],
  );
  assert.deepEqual(verdicts(sequential), [true, true], "a retry after a failure is no overlap");
});

Deno.test("worker checker: allocations of one occurrence with two keys fail", () => {
  const other = { ...alloc("a2", "w2", "completed"), idempotency_key: "j1:2000" };
  const h = history([oneOff([alloc("a1", "w1", "lost"), other])], [
    run("a2", "w2", 3_000, 3_500),
  ]);
  assert.deepEqual(verdicts(h), [true, false]);
});

Deno.test("worker checker: a cron occurrence with no execution fails beyond the missed count", () => {
  const cron: WorkerJobFinal = {
    id: "j1",
    key: "k1",
    kind: "cron",
    status: "cancelled",
    created_at_ms: 10,
    executions: [],
    allocations: [],
  };
  const h = history([cron], []);
  const result = checkWorkerRuns(h, 20_000);
  assert.equal(result.results[0].ok, false, "ticks at 3, 6 and 9 s had to run");
  const covered = history([{
    ...cron,
    executions: [{
      scheduled_at_ms: 12_000,
      status: "missed",
      trigger: "schedule",
      missed_count: 3,
    }],
  }], []);
  assert.equal(checkWorkerRuns(covered, 20_000).results[0].ok, true);
});

const view = (allocated: number) => ({
  id: "w1",
  status: "ready",
  capacity: { cpu_millis: 1_000, memory_mb: 512, disk_mb: 0, slots: 3 },
  allocated: { cpu_millis: allocated, memory_mb: 64, disk_mb: 0, slots: 1 },
});

Deno.test("capacity checker: a sample over capacity fails; the final state must match the holds", () => {
  const holds = [{ ...alloc("a1", "w1", "running"), resources: view(200).allocated }];
  const fine = history([], [], [
    { at_ms: 5, node: "n1", final: false, workers: [view(1_000)] },
    { at_ms: 9, node: "n1", final: true, workers: [view(200)] },
  ], holds);
  assert.equal(checkWorkerCapacity(fine).result.ok, true);
  const over = history([], [], [
    { at_ms: 5, node: "n2", final: false, workers: [view(1_200)] },
    { at_ms: 9, node: "n1", final: true, workers: [view(200)] },
  ], holds);
  const verdict = checkWorkerCapacity(over).result;
  assert.equal(verdict.ok, false);
  assert.match(verdict.violations[0], /n2 at 5 ms: worker w1 cpu_millis allocated 1200 > capacity/);
  const mismatch = history([], [], [
    { at_ms: 9, node: "n1", final: true, workers: [view(400)] },
  ], holds);
  assert.equal(checkWorkerCapacity(mismatch).result.ok, false);
});
