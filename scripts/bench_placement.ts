/**
 * Placement, measured twice (issue 11). The engine part: decisions per second of the placement
 * engine alone (src/placement/, no I/O), over a fleet of
 * 1,000 workers in 4 pools, 4 regions, 12 zones, with labels, taints (NoSchedule and
 * PreferNoSchedule), draining and lost workers and partly used capacity. Not a test: prints the
 * median and the spread (min–max) of several runs per scenario, and the load average.
 *
 * The cluster part (scripts/bench/placement_cluster.ts): a real 3-node cluster on loopback with
 * 1,000 simulated workers (one process speaking the worker protocol), committed placements per
 * second over a backlog of `--jobs` worker jobs, and dispatch latency (due time to start on the
 * worker) at `--rate` occurrences per second; `--runs-cluster` interleaved runs of both. Then a
 * table with the issue's aims and anchors. `--profile` takes a CPU profile of the leader during
 * the first throughput run (through its inspector) and prints its top costs.
 *
 *   deno task bench:placement                  # both parts
 *   deno task bench:placement --engine         # the engine alone
 *   deno task bench:placement --cluster [--jobs 100000] [--rate 500] [--profile]
 *   options: [--workers 1000] [--runs 5] [--seconds 1] [--seed 1] [--runs-cluster 3]
 *            [--latency-seconds 10] [--budget-seconds 300] [--node-arg=--flag=value …]
 *            [--workers-on-leader] (every simulated worker talks to the leader, none to a follower)
 *
 * A decision is one request placed (a `count: 3` request is one decision of three picks).
 * Requests are frozen (`freezeRequest`, compiled once, as a registry keeping one per job does),
 * except in the "mutable" row (compiled on every call). Batches apply each decision before the
 * next; the timed step also releases what the batch held, so the fleet stays as built.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { elapsedLog, loadAverage } from "./bench/host.ts";
import {
  type LatencyRun,
  latencyRun,
  PlacementCluster,
  type ThroughputRun,
  throughputRun,
} from "./bench/placement_cluster.ts";
import { leaderProfile } from "./bench/cpu_profile.ts";
import { interrupted, stopChildrenOnSignal } from "./bench/proc.ts";
import { median as medianOf } from "./bench/stats.ts";
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
    engine: { type: "boolean", default: false },
    cluster: { type: "boolean", default: false },
    jobs: { type: "string", default: "100000" },
    rate: { type: "string", default: "500" },
    "rate-low": { type: "string", default: "20" },
    "latency-low-seconds": { type: "string", default: "10" },
    "runs-cluster": { type: "string", default: "3" },
    "latency-seconds": { type: "string", default: "10" },
    "budget-seconds": { type: "string", default: "300" },
    "node-arg": { type: "string", multiple: true, default: [] },
    profile: { type: "boolean", default: false },
    "workers-on-leader": { type: "boolean", default: false },
  },
});
/** Neither flag: both parts. */
const RUN_ENGINE = values.engine || !values.cluster;
const RUN_CLUSTER = values.cluster || !values.engine;
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

/** Median decisions/s of the single bounded scenario, per wall and per CPU second. */
interface EngineFigure {
  wall_per_s: number;
  cpu_per_s: number;
}

/** Runs the engine scenarios and prints their table; returns the single bounded medians. */
function enginePart(): EngineFigure {
  const results = measure([
    ["single, no preferences, bounded", singles(plainRequests, false, true)],
    ["single, no preferences, bounded, mutable requests", singles(plainRequests, false)],
    ["single, no preferences, exhaustive", singles(plainRequests, true, true)],
    ["single, preferences (always exhaustive)", singles(preferenceRequests, false, true)],
    ["batch of 100, no preferences, bounded (+ release)", batches(plainRequests, 100)],
    ["batch of 100, preferences (+ release)", batches(preferenceRequests, 100)],
  ]);
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
  console.log(`load average: ${loadLine()}\n`);
  return { wall_per_s: median(results[0].per_s), cpu_per_s: median(results[0].per_cpu_s) };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs: number[]) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
const ms = (n: number) => n < 10 ? n.toFixed(1) : fmt(n);
function loadLine(): string {
  const [l1, l5, l15] = Deno.loadavg();
  return `${l1.toFixed(2)} ${l5.toFixed(2)} ${l15.toFixed(2)}`;
}

/** What the cluster part measured over its interleaved runs. */
interface ClusterResults {
  throughput: ThroughputRun[];
  latency: LatencyRun[];
  /** The same at `--rate-low`, a rate the cluster keeps up with: the pipeline's own latency. */
  latency_low: LatencyRun[];
  load_start: string;
  load_end: string;
}

/** Starts the cluster and the simulated fleet, runs throughput and latency in turn, stops it. */
async function clusterPart(): Promise<ClusterResults> {
  const log = elapsedLog();
  const dir = await Deno.makeTempDir({ prefix: "bench_placement_" });
  stopChildrenOnSignal(() => Deno.remove(dir, { recursive: true }));
  const load_start = await loadAverage();
  const jobs = Number(values.jobs);
  const runs = Math.max(1, Number(values["runs-cluster"]));
  const rate = Number(values.rate);
  const latency_s = Number(values["latency-seconds"]);
  const cluster = await PlacementCluster.start(dir, WORKERS, {
    node_args: values["node-arg"],
    inspect: values.profile,
    workers_on_leader: values["workers-on-leader"],
    log,
  });
  const throughput: ThroughputRun[] = [];
  const latency: LatencyRun[] = [];
  const latency_low: LatencyRun[] = [];
  const budget_ms = Number(values["budget-seconds"]) * 1_000;
  const latencyAt = async (at_rate: number, seconds: number, into: LatencyRun[]) => {
    log(`run ${into.length + 1}/${runs}: ${at_rate} occurrences/s for ${seconds} s`);
    const l = await latencyRun(cluster, at_rate, seconds, 5_000, budget_ms, log);
    into.push(l);
    log(
      `  ${l.started}/${l.jobs} started, p50 ${ms(l.latency_ms.p50)} ms, ` +
        `p99 ${ms(l.latency_ms.p99)} ms, load ${loadLine()}`,
    );
  };
  try {
    for (let run = 1; run <= runs; run++) {
      log(`run ${run}/${runs}: ${jobs} worker jobs due at once`);
      // Creating 1,000 jobs takes 0.2-1.5 s on this machine (by load): they are due once stored.
      const lead_ms = 3_000 + jobs * 2;
      const measureOnce = () => throughputRun(cluster, jobs, lead_ms, budget_ms, log);
      const t = run === 1 && values.profile
        ? await leaderProfile(await cluster.refreshLeader(), dir, measureOnce, log)
        : await measureOnce();
      throughput.push(t);
      log(
        `  ${fmt(t.placed)} placed, ${fmt(t.per_s)}/s (steady ${fmt(t.steady_per_s)}/s), ` +
          `load ${loadLine()}`,
      );
      await latencyAt(rate, latency_s, latency);
      await latencyAt(
        Number(values["rate-low"]),
        Number(values["latency-low-seconds"]),
        latency_low,
      );
    }
  } catch (error) {
    await interrupted();
    throw error;
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
  return { throughput, latency, latency_low, load_start, load_end: await loadAverage() };
}

const spread = (xs: number[], f: (n: number) => string) =>
  `${f(medianOf(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;

/** The summary: each figure beside the issue's aim and the anchors the issue names. */
function summary(engine: EngineFigure | null, c: ClusterResults | null): void {
  const rows: string[][] = [];
  if (c !== null) {
    const t = c.throughput;
    const per_s = t.map((r) => r.per_s);
    const complete = t.every((r) => r.complete);
    const elections = t.filter((r) => r.leader_changed).length;
    rows.push([
      `committed placements/s, 3 nodes, ${fmt(WORKERS)} workers, backlog of ${
        fmt(t[0].jobs)
      } (placed_at span; ${t.map((r) => fmt(r.placed)).join(", ")} placed${
        complete ? "" : ", budget ran out"
      }${elections === 0 ? "" : `, leader changed in ${elections} run(s)`})`,
      spread(per_s, fmt),
      "≥ 5,000/s",
      medianOf(per_s) >= 5_000 ? "yes" : "NO",
      "Nomad C1M ≈ 3,300/s (large servers); kube-scheduler a few hundred pods/s",
    ]);
    rows.push([
      "the same, steady part (10th to 90th percentile of placed_at)",
      spread(t.map((r) => r.steady_per_s), fmt),
      "",
      "",
      "",
    ]);
    const points = [
      [c.latency, values.rate, values["latency-seconds"]],
      [c.latency_low, values["rate-low"], values["latency-low-seconds"]],
    ] as const;
    for (const [l, at_rate, seconds] of points) {
      rows.push([
        `dispatch latency p50 / p99 / max at ${at_rate}/s for ${seconds} s (started_at − scheduled_at; started: ${
          l.map((r) => `${r.started}/${r.jobs}`).join(", ")
        })`,
        `${spread(l.map((r) => r.latency_ms.p50), ms)} / ${
          spread(l.map((r) => r.latency_ms.p99), ms)
        } / ${spread(l.map((r) => r.latency_ms.max), ms)} ms`,
        at_rate === values.rate ? "p99 ≤ 50 ms" : "",
        at_rate === values.rate
          ? (medianOf(l.map((r) => r.latency_ms.p99)) <= 50 ? "yes" : "NO")
          : "",
        "",
      ]);
    }
    const cpu = (f: (r: ThroughputRun) => number) => spread(t.map(f), (n) => n.toFixed(2));
    rows.push([
      "CPU ms per placement: leader / both followers / simulated workers (whole run)",
      `${cpu((r) => r.cpu_ms_per_placement.leader)} / ${
        cpu((r) => r.cpu_ms_per_placement.followers)
      } / ${cpu((r) => r.cpu_ms_per_placement.workers)}`,
      "",
      "",
      "",
    ]);
    rows.push([
      "dispatch latency p50 / p99 of the backlog (informative)",
      `${spread(t.map((r) => r.backlog_latency_ms.p50), fmt)} / ${
        spread(t.map((r) => r.backlog_latency_ms.p99), fmt)
      } ms`,
      "",
      "",
      "",
    ]);
  }
  if (engine !== null) {
    rows.push([
      `engine decisions/s alone, ${fmt(WORKERS)} workers (single, bounded, frozen; ` +
      `per wall second, and per CPU second of this process)`,
      `${fmt(engine.wall_per_s)} (${fmt(engine.cpu_per_s)} per CPU s)`,
      "≥ 100,000/s",
      engine.wall_per_s >= 100_000
        ? "yes"
        : engine.cpu_per_s >= 100_000
        ? "per CPU second only"
        : "NO",
      "",
    ]);
  }
  console.log("| measure | Tickraft: median (min–max) | aim | met | anchor |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  const runs = c === null ? "" : `, ${c.throughput.length} interleaved cluster runs` +
    (values["workers-on-leader"] ? ", every worker on the leader" : "");
  const load = c === null ? loadLine() : `${c.load_start} at start, ${c.load_end} at end (1 min)`;
  console.log(
    `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}${runs}; load average ${load}`,
  );
}

const engine = RUN_ENGINE ? enginePart() : null;
const cluster = RUN_CLUSTER ? await clusterPart() : null;
summary(engine, cluster);
