/**
 * One Jepsen-style run: N node processes behind fault-injecting proxies, W worker agents talking
 * to them through the same proxies, a sink, concurrent clients, the hostile client and the
 * nemesis for `time_ms` (with `GET /workers` sampled on every node); then heal, wait for the due
 * deliveries and worker runs, read the final state of every member, look at every node once more,
 * run the checkers and write the run folder (history.json, report.md, timeline.svg, node and
 * worker logs, the workers' runs files).
 *
 * A run that ends with no leader all nodes agree on (nodes a hostile request stopped) still
 * writes its report: the checkers that need the final state then fail with that reason.
 *
 * @module
 */
import { sfc32 } from "../../src/prng.ts";
import { freePorts } from "../../tests/support/ports.ts";
import { sleep } from "../../tests/support/wait.ts";
import {
  checkFiring,
  checkLinearizable,
  checkNodesSurvive,
  checkNoFiringAfterStop,
  checkNoLostCreates,
  type CheckResult,
  checkSameState,
  type FinalJob,
  type FinalState,
  type FiringStats,
} from "./checks.ts";
import type { History, LeaderSample, NodeProbe } from "./history.ts";
import { DEFAULT_HOSTILE, type HostileOptions, runHostile } from "./hostile.ts";
import { stopwatch } from "./history.ts";
import { type FaultKind, healAll, type NemesisContext, runNemesis } from "./nemesis.ts";
import {
  faketimeAvailable,
  NodeProcess,
  RUN_SECRET,
  snapshotSource,
  type SourceEdit,
  writeClockOffset,
} from "./nodes.ts";
import { Proxies } from "./proxy.ts";
import { renderReport, renderTimeline } from "./report.ts";
import { startRunSink } from "./sink.ts";
import {
  checkWorkerCapacity,
  checkWorkerRuns,
  checkWorkersSurvive,
  type WorkerStats,
} from "./worker_checks.ts";
import { readRuns, recordExit, startWorkers, WorkerAgent, workersReady } from "./workers.ts";
import { perform, runClient, type WorkloadContext } from "./workload.ts";
import type {
  AllocationFinal,
  ExecutionFinal,
  WorkerJobFinal,
  WorkerSample,
  WorkerView,
} from "./history.ts";

export interface RunOptions {
  seed: number;
  time_ms: number;
  nodes: number;
  clients: number;
  faults: readonly FaultKind[];
  /** Where the run folder goes (a folder named after the seed is made in it). */
  out_dir: string;
  /** An occurrence must be delivered within this of the moment it could fire. */
  firing_bound_ms: number;
  /**
   * Deliberate changes to the nodes' copy of src/ (a broken build the checkers must catch),
   * applied in order.
   */
  edit?: SourceEdit | readonly SourceEdit[];
  /** The hostile client's kinds, rate and count; absent: {@link DEFAULT_HOSTILE}. */
  hostile?: HostileOptions;
  /** Worker agents to run (w1, w2, ...); absent or 0: none, and no worker jobs. */
  workers?: number;
}

export interface RunResult {
  ok: boolean;
  dir: string;
  checks: CheckResult[];
  stats: FiringStats;
  /** The worker counts, when the run had workers. */
  worker_stats: WorkerStats | null;
  history: History;
}

interface ClusterView {
  leader: string | null;
  term: number;
  commit_index: number;
  applied_index: number;
  members: { id: string; role: string }[];
}

async function view(url: string): Promise<ClusterView | null> {
  try {
    const res = await fetch(`${url}/debug/cluster`, { signal: AbortSignal.timeout(800) });
    return res.ok ? await res.json() as ClusterView : null;
  } catch {
    return null;
  }
}

/** `run` until it succeeds, at most 40 times 500 ms apart (an election may be under way). */
async function retried<T>(what: string, run: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let attempt = 0; attempt < 40; attempt++) {
    try {
      return await run();
    } catch (error) {
      last = error;
      await sleep(500);
    }
  }
  throw new Error(`${what}: ${last}`);
}

/** All jobs a node serves (local reads, or linearizable ones), page by page. */
async function listJobs(url: string, linearizable: boolean): Promise<FinalJob[]> {
  const out: FinalJob[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1_000; page++) {
    const query = new URLSearchParams({ limit: "1000" });
    if (cursor !== null) query.set("cursor", cursor);
    if (linearizable) query.set("consistency", "linearizable");
    const body = await retried(`GET /jobs on ${url}`, async () => {
      const res = await fetch(`${url}/jobs?${query}`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
      return await res.json() as {
        jobs: (FinalJob & { idempotency_key: string | null })[];
        next_cursor: string | null;
      };
    });
    for (const j of body.jobs) {
      out.push({
        id: j.id,
        key: j.idempotency_key,
        kind: j.kind,
        status: j.status,
        next_run_at: j.next_run_at,
        run_count: j.run_count,
      });
    }
    cursor = body.next_cursor;
    if (cursor === null) break;
  }
  return out;
}

/** Runs the whole thing; never leaves a process behind. */
export async function runJepsen(opts: RunOptions): Promise<RunResult> {
  const dir = `${opts.out_dir}/${opts.seed}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${dir}/data`, { recursive: true });
  const main = await snapshotSource(`${dir}/build`, opts.edit);
  const now = stopwatch();
  const started_at = Date.now();
  const random = sfc32(opts.seed);
  const names = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
  const skipped: string[] = [];
  if (opts.faults.includes("member") && opts.nodes < 5) skipped.push("member: needs 5 nodes");
  const clock = opts.faults.includes("clock") && faketimeAvailable();
  if (opts.faults.includes("clock") && !clock) {
    skipped.push("clock: skipped: libfaketime not installed (apt-get install faketime)");
  }
  const workerNames = Array.from({ length: opts.workers ?? 0 }, (_, i) => `w${i + 1}`);
  if (workerNames.length === 0) {
    for (const f of opts.faults.filter((f) => f.startsWith("worker-"))) {
      skipped.push(`${f}: skipped: the run has no workers (--workers N)`);
    }
  }
  const ports = freePorts(names.length * 2);
  const nodes = new Map(names.map((name, i) => [
    name,
    new NodeProcess({
      name,
      port: ports[2 * i],
      proxy_port: ports[2 * i + 1],
      data_dir: `${dir}/data/${name}`,
      log_file: `${dir}/${name}.log`,
      main,
      clock_file: clock ? `${dir}/${name}.clock` : undefined,
    }),
  ]));
  for (const node of nodes.values()) {
    if (node.spec.clock_file !== undefined) await writeClockOffset(node.spec.clock_file, "+0");
  }
  const proxies = new Proxies(names, workerNames);
  // Each worker tries the nodes in its own order, so that they do not all start on one.
  const workers = new Map(workerNames.map((name, i) => [
    name,
    new WorkerAgent({
      name,
      servers: names.map((_, j) => nodes.get(names[(i + j) % names.length])!.proxy_url),
      main,
      log_file: `${dir}/${name}.log`,
      runs_file: `${dir}/${name}.runs`,
      script_file: `${dir}/worker_exec.sh`,
    }),
  ]));
  const env: Record<string, string> = {
    CLUSTER_NODES: names.map((n) => `${n}=${nodes.get(n)!.proxy_url}`).join(","),
    CLUSTER_SECRET: RUN_SECRET,
    RAFT_TICK: "50ms",
    LOG_LEVEL: "INFO",
    RETRY_BACKOFF_BASE: "500ms",
    RETRY_BACKOFF_MAX: "2s",
    // A worker not heard from for 3 s is lost: a worker fault of 1.5-5 s may or may not outlast it.
    WORKER_TTL: "3s",
  };
  const pids = () => {
    const m = new Map<number, string>();
    for (const [name, node] of nodes) if (node.pid !== null) m.set(node.pid, name);
    return m;
  };
  const sink = await startRunSink(now, started_at, pids);
  const leaders: LeaderSample[] = [];
  let leader: string | null = null;
  let monitoring = true;
  const history: History = {
    seed: opts.seed,
    nodes: names,
    started_at,
    ops: [],
    deliveries: sink.deliveries,
    nemesis: [],
    leaders,
    healed_ms: 0,
    workload_end_ms: 0,
    skipped,
    hostile: [],
    node_exits: [],
    probes: [],
    workers: workerNames,
    worker_samples: [],
    worker_runs: [],
    worker_exits: [],
    worker_jobs: [],
    active_allocations: [],
  };
  for (const [name, node] of nodes) {
    node.onUnexpectedExit = (status) =>
      history.node_exits.push({
        node: name,
        at_ms: now(),
        code: status.signal === null ? status.code : null,
        signal: status.signal,
      });
  }
  for (const [name, agent] of workers) {
    agent.onUnexpectedExit = recordExit(history.worker_exits, name, now);
  }
  const nemesis: NemesisContext = {
    // Its own stream, so that a seed replays the same faults whatever the clients drew.
    random: sfc32(opts.seed ^ 0x1b873593),
    now,
    nodes,
    workers,
    proxies,
    env,
    leader: () => leader,
    events: history.nemesis,
    faults: opts.faults.filter((f) =>
      (f !== "member" || opts.nodes >= 5) && (f !== "clock" || clock) &&
      (!f.startsWith("worker-") || workers.size > 0)
    ),
    end_ms: 0,
  };
  const monitor = (async () => {
    const last = new Map<string, string>();
    while (monitoring) {
      await Promise.all(names.map(async (name) => {
        const node = nodes.get(name)!;
        if (!node.running || node.paused) return;
        const v = await view(node.url);
        if (v === null) return;
        const sig = `${v.leader}/${v.term}`;
        if (last.get(name) !== sig) {
          last.set(name, sig);
          leaders.push({ at_ms: now(), node: name, leader: v.leader, term: v.term });
        }
        if (v.leader !== null) leader = v.leader;
      }));
      await sleep(250);
    }
  })();
  // GET /workers on every node once a second: no state any node applied may over-allocate.
  const sampler = (async () => {
    while (monitoring && workers.size > 0) {
      await Promise.all(names.map(async (name) => {
        const node = nodes.get(name)!;
        if (!node.running || node.paused) return;
        const sample = await sampleWorkers(node.url, name, now, false);
        if (sample !== null) history.worker_samples.push(sample);
      }));
      await sleep(1_000);
    }
  })();
  try {
    for (const [name, node] of nodes) {
      await Deno.mkdir(node.spec.data_dir, { recursive: true });
      proxies.listen(name, node.spec.proxy_port, node.spec.port);
    }
    await Promise.all([...nodes.values()].map((n) => n.start(env)));
    await Promise.all([...nodes.values()].map((n) => n.ready(60_000)));
    const first = await agreedLeader(nodes, 30_000);
    if (workers.size > 0) {
      await startWorkers(workers.values());
      await workersReady(nodes.get(first ?? names[0])!.url, workerNames, 60_000);
    }

    const t0 = now();
    const ctx: WorkloadContext = {
      random,
      now,
      started_at,
      urls: new Map(names.map((n) => [n, nodes.get(n)!.url])),
      sink_url: sink.url,
      ops: history.ops,
      keys: new Map(),
      end_ms: t0 + opts.time_ms,
      worker_share: workers.size > 0 ? 0.3 : 0,
    };
    nemesis.end_ms = t0 + opts.time_ms;
    await Promise.all([
      runNemesis(nemesis),
      runHostile({
        seed: opts.seed,
        now,
        urls: ctx.urls,
        sink_url: sink.url,
        records: history.hostile,
        end_ms: ctx.end_ms,
      }, opts.hostile ?? DEFAULT_HOSTILE),
      ...Array.from({ length: opts.clients }, (_, c) => runClient(ctx, c)),
    ]);
    history.workload_end_ms = ctx.end_ms;
    history.healed_ms = now();
    const lead = await agreedLeader(nodes, 60_000);
    if (lead === null) {
      history.probes = await probeNodes(nodes, null, dir);
      const why = "not checked: no leader all nodes agreed on within 60 s of the heal";
      const checks = [
        checkNodesSurvive(history),
        ...[
          "linearizability",
          "no lost acknowledged create",
          "every due occurrence delivered",
          "all nodes end with the same state",
          ...(workers.size > 0
            ? [
              "every due worker occurrence started and completed",
              "no worker occurrence ran twice at once",
              "no worker's capacity over-allocated",
            ]
            : []),
        ].map((name): CheckResult => ({ name, ok: false, summary: why, violations: [why] })),
      ];
      return await writeRun(dir, history, opts, nemesis.faults, checks, EMPTY_STATS, null);
    }

    // Stop the recurring jobs (recorded like client operations) and wait for the due one-offs.
    const maxDue = Math.max(0, ...[...ctx.keys.values()].map((k) => k.item.due_ms));
    for (const job of await listJobs(nodes.get(lead)!.url, true)) {
      if (job.kind !== "once" && job.status !== "cancelled") {
        await perform(ctx, -1, lead, "cancel", { id: job.id });
      }
    }
    const waitUntil = Math.max(maxDue, history.healed_ms) + opts.firing_bound_ms;
    while (now() < waitUntil) {
      const pending = (await listJobs(nodes.get(lead)!.url, true)).filter((j) =>
        j.kind === "once" && (j.status === "pending" || j.status === "in_progress")
      );
      if (pending.length === 0 && now() > maxDue + 1_000) break;
      await sleep(500);
    }
    const final = await finalState(nodes, lead);
    let workerChecks: CheckResult[] = [];
    let workerStats: WorkerStats | null = null;
    if (workers.size > 0) {
      monitoring = false;
      await sampler;
      await workerFinal(history, nodes, lead, final.jobs, now);
      // The commands still running (a stopped agent's) end within their sleep.
      await sleep(1_600);
      for (const [name, agent] of workers) {
        history.worker_runs.push(...await readRuns(agent.spec.runs_file, name, started_at));
      }
      const runs = checkWorkerRuns(history, opts.firing_bound_ms);
      const capacity = checkWorkerCapacity(history);
      workerChecks = [...runs.results, capacity.result, checkWorkersSurvive(history)];
      workerStats = {
        ...runs.stats,
        samples: capacity.samples,
        peak_share: capacity.peak_share,
      };
    }
    history.probes = await probeNodes(nodes, lead, dir);
    const lin = checkLinearizable(history);
    const firing = checkFiring(history, final, opts.firing_bound_ms);
    const checks = [
      lin,
      checkNoLostCreates(history, final),
      ...firing.results,
      checkNoFiringAfterStop(history),
      checkSameState(final),
      checkNodesSurvive(history),
      ...workerChecks,
    ];
    return await writeRun(dir, history, opts, nemesis.faults, checks, firing.stats, workerStats);
  } catch (error) {
    // Keep what was recorded for the post-mortem.
    await Deno.writeTextFile(`${dir}/history.json`, JSON.stringify(history, null, 1));
    throw error;
  } finally {
    monitoring = false;
    await monitor;
    await sampler;
    for (const agent of workers.values()) await agent.stopAll();
    await healAll({ ...nemesis, workers: new Map(), env }).catch(() => {});
    for (const node of nodes.values()) await node.signal("SIGKILL");
    await proxies.close();
    await sink.close();
    await Deno.remove(`${dir}/data`, { recursive: true }).catch(() => {});
    await Deno.remove(`${dir}/build`, { recursive: true }).catch(() => {});
  }
}

const EMPTY_STATS: FiringStats = {
  occurrences_expected: 0,
  delivered: 0,
  deliveries: 0,
  redeliveries: 0,
  longest_delay_ms: 0,
  longest_delay_after_heal_ms: 0,
  early: 0,
  earliest_ms: 0,
};

/** Writes history.json, report.md and timeline.svg; returns the run's result. */
async function writeRun(
  dir: string,
  history: History,
  opts: RunOptions,
  faults: readonly FaultKind[],
  checks: CheckResult[],
  stats: FiringStats,
  worker_stats: WorkerStats | null,
): Promise<RunResult> {
  await Deno.writeTextFile(`${dir}/history.json`, JSON.stringify(history, null, 1));
  await Deno.writeTextFile(
    `${dir}/report.md`,
    renderReport(
      history,
      { ...opts, faults, hostile: opts.hostile ?? DEFAULT_HOSTILE },
      checks,
      stats,
      worker_stats,
    ),
  );
  await Deno.writeTextFile(`${dir}/timeline.svg`, renderTimeline(history));
  return { ok: checks.every((c) => c.ok), dir, checks, stats, worker_stats, history };
}

/** The leader every running node agrees on, or null if they do not within `timeout_ms`. */
async function agreedLeader(
  nodes: Map<string, NodeProcess>,
  timeout_ms: number,
): Promise<string | null> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    const views = await Promise.all([...nodes.values()].map((n) => view(n.url)));
    const leaders = new Set(views.map((v) => v?.leader ?? null));
    const [only] = leaders;
    if (leaders.size === 1 && only !== null && only !== undefined) return only;
    await sleep(200);
  }
  return null;
}

/** Log lines that say a node cannot go on (its Raft loop stopped, an uncaught error). */
const FATAL_LINE = /the node stops|raft invariant violated|Uncaught|unhandled rejection/i;

/**
 * Every node once more after the heal: its /health, and whether its applied index reaches the
 * leader's commit index (a node whose Raft loop stopped answers HTTP but never does), waiting up
 * to 15 s for the slowest; plus the lines of its log that say a vital loop stopped.
 */
async function probeNodes(
  nodes: Map<string, NodeProcess>,
  lead: string | null,
  dir: string,
): Promise<NodeProbe[]> {
  const deadline = Date.now() + 15_000;
  let probes: NodeProbe[] = [];
  while (true) {
    const target = lead === null ? null : (await view(nodes.get(lead)!.url))?.commit_index ?? null;
    probes = await Promise.all([...nodes].map(async ([name, node]): Promise<NodeProbe> => {
      let health_status: number | null = null;
      let health: string | null = null;
      try {
        const res = await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(2_000) });
        health_status = res.status;
        health = String((await res.json() as { status?: unknown }).status ?? null);
      } catch {
        // no answer, or not JSON
      }
      const v = await view(node.url);
      return {
        node: name,
        health_status,
        health,
        applied_index: v?.applied_index ?? null,
        target_index: target,
        fatal_lines: [],
      };
    }));
    const behind = probes.some((p) =>
      p.applied_index === null || p.target_index === null || p.applied_index < p.target_index
    );
    if (!behind || Date.now() > deadline) break;
    await sleep(500);
  }
  for (const p of probes) {
    const text = await Deno.readTextFile(`${dir}/${p.node}.log`).catch(() => "");
    p.fatal_lines = text.split("\n").filter((l) => FATAL_LINE.test(l)).slice(0, 3);
  }
  return probes;
}

/**
 * The leader's jobs (linearizable) and every member's, read locally once all applied indexes
 * equal the leader's commit index; retried (bounded) until the members agree.
 */
async function finalState(nodes: Map<string, NodeProcess>, lead: string): Promise<FinalState> {
  const line = (j: FinalJob) => `${j.id} ${j.status} ${j.next_run_at} ${j.run_count}`;
  let per_node = new Map<string, string[]>();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const leadView = await view(nodes.get(lead)!.url);
    const members = (leadView?.members ?? []).map((m) => m.id).filter((m) => nodes.has(m));
    const views = await Promise.all(members.map((m) => view(nodes.get(m)!.url)));
    const caughtUp = leadView !== null &&
      views.every((v) => v !== null && v.applied_index === leadView.commit_index);
    if (caughtUp) {
      per_node = new Map();
      for (const m of members) {
        per_node.set(m, (await listJobs(nodes.get(m)!.url, false)).map(line).sort());
      }
      const all = [...per_node.values()].map((l) => l.join("\n"));
      if (all.every((a) => a === all[0])) break;
    }
    await sleep(500);
  }
  const jobs = new Map((await listJobs(nodes.get(lead)!.url, true)).map((j) => [j.id, j]));
  return { jobs, per_node };
}

/** One node's `GET /workers`, or null when it did not answer. */
async function sampleWorkers(
  url: string,
  node: string,
  now: () => number,
  final: boolean,
): Promise<WorkerSample | null> {
  try {
    const at_ms = now();
    const res = await fetch(`${url}/workers`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    const body = await res.json() as { workers: WorkerView[] };
    const workers = body.workers.map((w): WorkerView => ({
      id: w.id,
      status: w.status,
      capacity: w.capacity,
      allocated: w.allocated,
    }));
    return { at_ms, node, final, workers };
  } catch {
    return null;
  }
}

interface AllocationJson {
  id: string;
  worker_id: string | null;
  status: string;
  scheduled_at: string;
  attempt: number;
  idempotency_key: string;
  started_at: string | null;
  finished_at: string | null;
  resources: Record<string, number>;
  explanation: string | null;
}

/** GET `url` as JSON, retried (an election may be under way). */
async function getJson<T>(url: string): Promise<T> {
  return await retried(`GET ${url}`, async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return await res.json() as T;
  });
}

/** Every allocation matching `query` (paged). */
async function listAllocations(
  url: string,
  query: Record<string, string>,
  started_at: number,
): Promise<AllocationFinal[]> {
  const out: AllocationFinal[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const q = new URLSearchParams({ ...query, limit: "1000" });
    if (cursor !== null) q.set("cursor", cursor);
    const body = await getJson<{ allocations: AllocationJson[]; next_cursor: string | null }>(
      `${url}/allocations?${q}`,
    );
    const at = (t: string | null) => t === null ? null : Date.parse(t) - started_at;
    for (const a of body.allocations) {
      out.push({
        id: a.id,
        worker_id: a.worker_id,
        status: a.status,
        scheduled_at_ms: Date.parse(a.scheduled_at) - started_at,
        attempt: a.attempt,
        idempotency_key: a.idempotency_key,
        started_at_ms: at(a.started_at),
        finished_at_ms: at(a.finished_at),
        resources: a.resources,
        explanation: a.explanation,
      });
    }
    cursor = body.next_cursor;
    if (cursor === null) break;
  }
  return out;
}

/**
 * The worker side of the final state, once every member caught up: each node's `GET /workers`
 * (the final samples, the leader's first), the leader's placed and running allocations, and the
 * executions and allocations of every worker job in the final state.
 */
async function workerFinal(
  history: History,
  nodes: Map<string, NodeProcess>,
  lead: string,
  jobs: Map<string, FinalJob>,
  now: () => number,
): Promise<void> {
  const url = nodes.get(lead)!.url;
  const t0 = history.started_at;
  const order = [lead, ...[...nodes.keys()].filter((n) => n !== lead)];
  for (const name of order) {
    const sample = await sampleWorkers(nodes.get(name)!.url, name, now, true);
    if (sample !== null) history.worker_samples.push(sample);
  }
  for (const status of ["placed", "running"]) {
    history.active_allocations.push(...await listAllocations(url, { status }, t0));
  }
  const workerKeys = new Set(
    history.ops.flatMap((o) => o.items ?? []).filter((i) => i.worker !== undefined).map((i) =>
      i.key
    ),
  );
  for (const job of jobs.values()) {
    if (job.key === null || !workerKeys.has(job.key)) continue;
    const detail = await getJson<{ created_at: string }>(`${url}/jobs/${job.id}`);
    const executions = await getJson<{
      executions: { scheduled_at: string; status: string; trigger: string; missed_count: number }[];
    }>(`${url}/jobs/${job.id}/executions?limit=100`);
    const final: WorkerJobFinal = {
      id: job.id,
      key: job.key,
      kind: job.kind,
      status: job.status,
      created_at_ms: Date.parse(detail.created_at) - t0,
      executions: executions.executions.map((e): ExecutionFinal => ({
        scheduled_at_ms: Date.parse(e.scheduled_at) - t0,
        status: e.status,
        trigger: e.trigger,
        missed_count: e.missed_count,
      })),
      allocations: await listAllocations(url, { job: job.id }, t0),
    };
    history.worker_jobs.push(final);
  }
}
