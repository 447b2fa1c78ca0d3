/**
 * One Jepsen-style run: N node processes behind fault-injecting proxies, a sink, concurrent
 * clients, the hostile client and the nemesis for `time_ms`; then heal, wait for the due
 * deliveries, read the final state of every member, look at every node once more, run the
 * checkers and write the run folder (history.json, report.md, timeline.svg, node logs).
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
import { perform, runClient, type WorkloadContext } from "./workload.ts";

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
}

export interface RunResult {
  ok: boolean;
  dir: string;
  checks: CheckResult[];
  stats: FiringStats;
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
  const proxies = new Proxies(names);
  const env: Record<string, string> = {
    CLUSTER_NODES: names.map((n) => `${n}=${nodes.get(n)!.proxy_url}`).join(","),
    CLUSTER_SECRET: RUN_SECRET,
    RAFT_TICK: "50ms",
    LOG_LEVEL: "INFO",
    RETRY_BACKOFF_BASE: "500ms",
    RETRY_BACKOFF_MAX: "2s",
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
  const nemesis: NemesisContext = {
    // Its own stream, so that a seed replays the same faults whatever the clients drew.
    random: sfc32(opts.seed ^ 0x1b873593),
    now,
    nodes,
    proxies,
    env,
    leader: () => leader,
    events: history.nemesis,
    faults: opts.faults.filter((f) =>
      (f !== "member" || opts.nodes >= 5) && (f !== "clock" || clock)
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
  try {
    for (const [name, node] of nodes) {
      await Deno.mkdir(node.spec.data_dir, { recursive: true });
      proxies.listen(name, node.spec.proxy_port, node.spec.port);
    }
    await Promise.all([...nodes.values()].map((n) => n.start(env)));
    await Promise.all([...nodes.values()].map((n) => n.ready(60_000)));
    await agreedLeader(nodes, 30_000);

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
        ].map((name): CheckResult => ({ name, ok: false, summary: why, violations: [why] })),
      ];
      return await writeRun(dir, history, opts, nemesis.faults, checks, EMPTY_STATS);
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
    ];
    return await writeRun(dir, history, opts, nemesis.faults, checks, firing.stats);
  } catch (error) {
    // Keep what was recorded for the post-mortem.
    await Deno.writeTextFile(`${dir}/history.json`, JSON.stringify(history, null, 1));
    throw error;
  } finally {
    monitoring = false;
    await monitor;
    await healAll({ ...nemesis, env }).catch(() => {});
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
): Promise<RunResult> {
  await Deno.writeTextFile(`${dir}/history.json`, JSON.stringify(history, null, 1));
  await Deno.writeTextFile(
    `${dir}/report.md`,
    renderReport(
      history,
      { ...opts, faults, hostile: opts.hostile ?? DEFAULT_HOSTILE },
      checks,
      stats,
    ),
  );
  await Deno.writeTextFile(`${dir}/timeline.svg`, renderTimeline(history));
  return { ok: checks.every((c) => c.ok), dir, checks, stats, history };
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
