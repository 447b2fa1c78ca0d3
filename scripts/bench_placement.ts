/**
 * Decisions per second of the placement engine alone (src/placement/, no I/O), over a fleet of
 * 1,000 workers in 4 pools, 4 regions, 12 zones, with labels, taints (NoSchedule and
 * PreferNoSchedule), draining and lost workers and partly used capacity. Not a test: prints the
 * median and the spread (min–max) of several runs per scenario, and the load average.
 *
 *   deno task bench:placement [--workers 1000] [--runs 5] [--seconds 1] [--seed 1]
 *
 * A decision is one request placed (a `count: 3` request is one decision of three picks).
 * Requests are frozen (`freezeRequest`, compiled once, as a registry keeping one per job does),
 * except in the "mutable" row (compiled on every call). Batches apply each decision before the
 * next; the timed step also releases what the batch held, so the fleet stays as built.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  Fleet,
  freezeRequest,
  place,
  placeBatch,
  type PlacementRequest,
  type Taint,
  type WorkerView,
} from "../src/placement/mod.ts";
import { randomInt, sfc32 } from "../src/prng.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "1000" },
    runs: { type: "string", default: "5" },
    seconds: { type: "string", default: "1" },
    seed: { type: "string", default: "1" },
  },
});
const WORKERS = Number(values.workers);
const RUNS = Math.max(3, Number(values.runs));
const RUN_MS = Number(values.seconds) * 1000;
const random = sfc32(Number(values.seed));

const POOLS: [string, number][] = [["web", 0.4], ["batch", 0.3], ["edge", 0.2], ["gpu", 0.1]];
const REGIONS = ["fra", "ams", "iad", "sin"];
const SPOT: Taint = { key: "spot", value: "true", effect: "PreferNoSchedule" };
const GPU: Taint = { key: "gpu", value: "true", effect: "NoSchedule" };
const MAINT: Taint = { key: "maint", value: "kernel", effect: "NoSchedule" };

function pick<T>(list: T[]): T {
  return list[randomInt(random, 0, list.length - 1)];
}

function makeWorker(i: number): WorkerView {
  let u = random();
  let pool = POOLS[POOLS.length - 1][0];
  for (const [name, share] of POOLS) {
    if (u < share) {
      pool = name;
      break;
    }
    u -= share;
  }
  const region = pick(REGIONS);
  const taints: Taint[] = [];
  if (pool === "gpu") taints.push(GPU);
  if (random() < 0.1) taints.push(SPOT);
  if (random() < 0.02) taints.push(MAINT);
  const cpu = pick([2000, 4000, 8000, 16000]);
  const capacity = { cpu_millis: cpu, memory_mb: cpu * 2, disk_mb: 100_000, slots: 16 };
  const used = random() * 0.8;
  const s = random();
  return {
    id: `worker-${String(i).padStart(4, "0")}`,
    pool,
    region,
    zone: `${region}-${randomInt(random, 1, 3)}`,
    labels: {
      tier: pick(["web", "db", "cache"]),
      disk: pick(["ssd", "ssd", "hdd"]),
      arch: pick(["amd64", "amd64", "amd64", "arm64"]),
      rack: `r${randomInt(random, 1, 40)}`,
    },
    taints,
    status: s < 0.02 ? "draining" : s < 0.03 ? "lost" : "ready",
    capacity,
    free: {
      cpu_millis: Math.floor(cpu * (1 - used)),
      memory_mb: Math.floor(cpu * 2 * (1 - used)),
      disk_mb: 100_000 - Math.floor(100_000 * used),
      slots: 16 - Math.floor(16 * used),
    },
    running_by_label: random() < 0.3 ? { "app=api": randomInt(random, 1, 3) } : {},
  };
}

const small = { cpu_millis: 250, memory_mb: 256, disk_mb: 100, slots: 1 };

/** Requests without preferences: the bounded mode (a few candidates in a seeded order). */
function plainRequests(): PlacementRequest[] {
  return [
    {
      job_id: "api",
      pool: "web",
      resources: small,
      constraints: [{ attribute: "region", operator: "in", values: ["fra", "ams"] }],
    },
    {
      job_id: "etl",
      pool: "batch",
      resources: { ...small, cpu_millis: 1000, memory_mb: 2048 },
      constraints: [
        { attribute: "disk", operator: "=", value: "ssd" },
        { attribute: "arch", operator: "!=", value: "arm64" },
      ],
      strategy: "spread",
    },
    {
      job_id: "train",
      pool: "gpu",
      resources: { ...small, cpu_millis: 2000, memory_mb: 4096 },
      tolerations: [{ key: "gpu", operator: "Equal", value: "true", effect: "NoSchedule" }],
    },
    {
      job_id: "probe",
      pool: "edge",
      resources: small,
      constraints: [{ attribute: "region", operator: "=", value: "sin" }],
      strategy: "random",
    },
    {
      job_id: "fanout",
      pool: "web",
      resources: small,
      constraints: [{ attribute: "tier", operator: "in", values: ["web", "cache"] }],
      count: 3,
    },
  ];
}

/** Requests with preferences: always exhaustive (every feasible worker of the pool scored). */
function preferenceRequests(): PlacementRequest[] {
  return [
    {
      job_id: "db",
      pool: "batch",
      resources: small,
      constraints: [{
        attribute: "disk",
        operator: "=",
        value: "ssd",
        mode: "preferred",
        weight: 50,
      }],
      spread: { attribute: "zone" },
    },
    {
      job_id: "web-near-api",
      pool: "web",
      resources: small,
      affinity: [{ selector: { app: "api" }, weight: 50 }],
    },
  ];
}

interface Result {
  name: string;
  /** Decisions per second of wall time, per run. */
  per_s: number[];
  /** Decisions per second of this process's CPU time, per run (less sensitive to a busy machine). */
  per_cpu_s: number[];
}

/** Decisions per wall and per CPU second of one timed run of `step`. */
function timedRun(step: () => number): [number, number] {
  let decisions = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < RUN_MS) {
    for (let i = 0; i < 100; i++) decisions += step();
    t = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  return [decisions / ((t - t0) / 1000), decisions / ((cpu.user + cpu.system) / 1e6)];
}

/** Warms every scenario up, then runs them in turn, so no scenario gets a JIT state of its own. */
function measure(scenarios: [string, () => number][]): Result[] {
  for (const [, step] of scenarios) timedRun(step);
  const results = scenarios.map(([name]): Result => ({ name, per_s: [], per_cpu_s: [] }));
  for (let run = 0; run < RUNS; run++) {
    scenarios.forEach(([, step], i) => {
      const [wall, cpu] = timedRun(step);
      results[i].per_s.push(wall);
      results[i].per_cpu_s.push(cpu);
    });
  }
  return results;
}

const fleet = new Fleet(Array.from({ length: WORKERS }, (_, i) => makeWorker(i)));
let seed = 1;

function singles(requests: () => PlacementRequest[], exhaustive: boolean, frozen = false) {
  const reqs = frozen ? requests().map(freezeRequest) : requests();
  let i = 0;
  return () => {
    place(fleet, reqs[i++ % reqs.length], { seed: seed++, exhaustive });
    return 1;
  };
}

function batches(requests: () => PlacementRequest[], size: number) {
  const kinds = requests().map(freezeRequest);
  const batch = Array.from({ length: size }, (_, i) => kinds[i % kinds.length]);
  return () => {
    const decisions = placeBatch(fleet, batch, { seed: seed++ });
    for (const d of decisions) {
      for (const p of d.placements) {
        fleet.release({
          worker_id: p.worker_id,
          job_id: d.job_id,
          job_labels: d.job_labels,
          resources: d.resources,
        });
      }
    }
    return decisions.length;
  };
}

const results = measure([
  ["single, no preferences, bounded", singles(plainRequests, false, true)],
  ["single, no preferences, bounded, mutable requests", singles(plainRequests, false)],
  ["single, no preferences, exhaustive", singles(plainRequests, true, true)],
  ["single, preferences (always exhaustive)", singles(preferenceRequests, false, true)],
  ["batch of 100, no preferences, bounded (+ release)", batches(plainRequests, 100)],
  ["batch of 100, preferences (+ release)", batches(preferenceRequests, 100)],
]);

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
console.log(
  `placement engine, ${WORKERS} workers, ${RUNS} runs of ${RUN_MS} ms each, Deno ${Deno.version.deno}`,
);
console.log(
  "| scenario | decisions/s (median) | min–max | per CPU second (median) | min–max | µs/decision (CPU) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of results) {
  const m = median(r.per_cpu_s);
  console.log(
    `| ${r.name} | ${fmt(median(r.per_s))} | ${range(r.per_s)} | ${fmt(m)} | ` +
      `${range(r.per_cpu_s)} | ${(1e6 / m).toFixed(2)} |`,
  );
}
const [l1, l5, l15] = Deno.loadavg();
console.log(`load average: ${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)}`);
