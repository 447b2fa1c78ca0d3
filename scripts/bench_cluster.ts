/**
 * `deno task bench:cluster`: the cluster benchmark (not a test). Starts a 3-node Tickraft cluster
 * on loopback (child processes, fsync on, default Raft timeouts) and, in the same run, a 3-member
 * etcd 3.4 cluster (Debian's `etcd-server`), drives both with the same closed-loop load generator
 * and prints a side-by-side table:
 *
 * - creates/s and p50/p99 latency at 1, 16 and 64 clients (`POST /jobs` of a ~200-byte cron job
 *   to the leader vs `POST /v3/kv/put` of a 200-byte value to etcd's leader), 64 clients through
 *   a follower, and batches of 1,000 and 10,000 jobs (`POST /jobs/batch`; etcd: `POST /v3/kv/txn`
 *   of 128 puts, its most); a measurement that fails is reported as such and the run goes on;
 * - failover on a fresh cluster under light write load: `kill -9` of the leader to the first
 *   acknowledged write and to the first webhook delivery of an every-second cron job, median of
 *   `--failover-runs`; the killed node is restarted on its data dir and caught up between runs.
 *
 * ```sh
 * ./deno task bench:cluster                  # full run, about 3 minutes on 2 cores
 * ./deno task bench:cluster --quick          # small sizes, a smoke run
 * ./deno task bench:cluster --skip-etcd      # Tickraft only
 * ./deno task bench:cluster --failover-runs 9
 * ```
 *
 * SIGINT (Ctrl-C) or SIGTERM stops every node and etcd member it started, by pid, removes its
 * temporary directory and prints the table of what it had measured so far.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startSink } from "../tests/support/sink.ts";
import { sleep } from "../tests/support/wait.ts";
import {
  clusterBatchCreates,
  clusterCreates,
  type ClusterNode,
  JOB_BODY_BYTES,
  raftCounts,
  TickraftCluster,
  Writer,
} from "./bench/cluster.ts";
import {
  ensureEtcd,
  ETCD_TXN_OPS_MAX,
  EtcdCluster,
  etcdPuts,
  etcdTxnPuts,
} from "./bench/cluster_etcd.ts";
import type { LoadResult } from "./bench/load.ts";
import { elapsedLog, hostLine, loadAverage, loadAverageSince, withCpu } from "./bench/host.ts";
import { interrupted, stopChildrenOnSignal, waitFor } from "./bench/proc.ts";
import {
  loadText,
  markdownTable,
  met,
  ms,
  positiveIntOption,
  rate,
  ratio,
  seconds,
} from "./bench/report.ts";
import { median } from "./bench/stats.ts";
import { BATCH_MAX } from "./bench/tickraft.ts";

const USAGE = `usage: deno task bench:cluster [--quick] [--skip-etcd] [--failover-runs N]
  --quick            small sizes (a smoke run of a minute or so)
  --skip-etcd        measure Tickraft only (no etcd)
  --failover-runs N  leader kills, median reported (default 5; quick 2)`;

const CLIENTS = [1, 16, 64] as const;
const BATCH_CLIENTS = 2;
/** Jobs per `POST /jobs/batch`: a moderate size and the largest the node takes by default. */
const BATCH_SIZES = [1_000, BATCH_MAX] as const;
const AIM_RATIO = 3;
const AIM_FAILOVER_WRITE_MS = 1_500;
/** The kill comes this long after a delivery, so that none is in flight. */
const KILL_AFTER_DELIVERY_MS = 250;
/** How often the live nodes are asked for their leader after a kill. */
const ELECTION_POLL_MS = 10;
/** Longest wait for the first write and delivery after a kill. */
const FAILOVER_TIMEOUT_MS = 30_000;

interface Sizes {
  creates: Record<(typeof CLIENTS)[number], number>;
  follower: number;
  batch_jobs: number;
  etcd_puts: Record<(typeof CLIENTS)[number], number>;
  etcd_follower: number;
  warmup: number;
  failover_runs: number;
}

const FULL: Sizes = {
  creates: { 1: 300, 16: 2_000, 64: 5_000 },
  follower: 3_000,
  batch_jobs: 60_000,
  etcd_puts: { 1: 1_000, 16: 5_000, 64: 10_000 },
  etcd_follower: 10_000,
  warmup: 200,
  failover_runs: 5,
};

const QUICK: Sizes = {
  creates: { 1: 50, 16: 300, 64: 600 },
  follower: 300,
  batch_jobs: 10_000,
  etcd_puts: { 1: 100, 16: 500, 64: 1_000 },
  etcd_follower: 1_000,
  warmup: 50,
  failover_runs: 2,
};

/** What one measurement row compares; `etcd` stays undefined when etcd was skipped. */
interface Pair {
  tickraft?: LoadResult;
  /** Why the Tickraft measurement failed, when it did. */
  tickraft_error?: string;
  etcd?: LoadResult;
}

/** One leader kill. */
interface FailoverSample {
  killed: string;
  new_leader: string;
  /** Until the live nodes agree on a new leader (polled every {@link ELECTION_POLL_MS}). */
  election_ms: number;
  write_ms: number;
  delivery_ms: number;
}

interface Results {
  creates: Map<number, Pair>;
  follower: Pair;
  /** By jobs per batch; etcd's transactions sit in the first row. */
  batches: Map<number, Pair>;
  failover: FailoverSample[];
  /** Per-run diagnostics printed under the table (CPU, entries and rounds per run). */
  notes: string[];
}

function parseOptions(): { sizes: Sizes; skip_etcd: boolean } {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      "skip-etcd": { type: "boolean", default: false },
      "failover-runs": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const base = values.quick ? QUICK : FULL;
  const failover_runs = positiveIntOption("failover-runs", values["failover-runs"], USAGE) ??
    base.failover_runs;
  return { skip_etcd: values["skip-etcd"], sizes: { ...base, failover_runs } };
}

const log = elapsedLog();

/** Creates through the leader, a follower and batches on a fresh Tickraft cluster. */
async function runTickraft(dir: string, sizes: Sizes, results: Results): Promise<void> {
  const cluster = await TickraftCluster.start(dir);
  try {
    const leader = await cluster.agreedLeader(cluster.nodes);
    const follower = cluster.nodes.find((n) => n !== leader)!;
    const order = [leader, ...cluster.nodes.filter((n) => n !== leader)];
    log(`tickraft: leader ${leader.name}; warm-up ${sizes.warmup} creates`);
    await clusterCreates(leader.url, 16, sizes.warmup);
    /** Runs one measurement and notes CPU per node and the leader's rounds and entries. */
    const measure = async (what: string, run: () => Promise<LoadResult>) => {
      const before = await raftCounts(leader.url);
      const { value, cpu } = await withCpu(order.map((n) => n.child.pid), run);
      const after = await raftCounts(leader.url);
      const rounds = after.rounds - before.rounds;
      const entries = after.entries - before.entries;
      const jobs = after.jobs_created - before.jobs_created;
      const note = `${what}: tickraft ${rate(value.per_s)}; CPU leader/followers ${cpu}; ` +
        `leader: ${rounds} rounds (one log fsync + one state transaction each), ${entries} entries, ` +
        `${(jobs / entries).toFixed(1)} jobs per entry, ${
          (jobs / rounds).toFixed(1)
        } jobs per round`;
      results.notes.push(note);
      log(note);
      return value;
    };
    for (const clients of CLIENTS) {
      const total = sizes.creates[clients];
      const pair = results.creates.get(clients) ?? {};
      results.creates.set(clients, pair);
      pair.tickraft = await measure(
        `${clients} clients, ${total} creates to the leader`,
        () => clusterCreates(leader.url, clients, total),
      );
    }
    results.follower.tickraft = await measure(
      `64 clients, ${sizes.follower} creates through follower ${follower.name}`,
      () => clusterCreates(follower.url, 64, sizes.follower),
    );
    for (const size of BATCH_SIZES) {
      const pair = results.batches.get(size) ?? {};
      results.batches.set(size, pair);
      const what = `${sizes.batch_jobs} jobs in batches of ${size}, ${BATCH_CLIENTS} in flight`;
      try {
        pair.tickraft = await measure(
          what,
          () => clusterBatchCreates(leader.url, BATCH_CLIENTS, sizes.batch_jobs, size),
        );
      } catch (error) {
        pair.tickraft_error = (error as Error).message.split("\n")[0];
        results.notes.push(`${what}: tickraft FAILED: ${pair.tickraft_error}`);
        log(results.notes.at(-1)!);
      }
    }
  } finally {
    await cluster.stop();
  }
}

/** The same load against a fresh etcd cluster. */
async function runEtcd(dir: string, sizes: Sizes, results: Results): Promise<void> {
  const cluster = await EtcdCluster.start(dir);
  try {
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m !== leader)!;
    const order = [leader, ...cluster.members.filter((m) => m !== leader)];
    log(`etcd: leader ${leader.name} (by /v3/maintenance/status); warm-up ${sizes.warmup} puts`);
    let key = 0;
    const measure = async (
      what: string,
      run: (first: number) => Promise<LoadResult>,
      n: number,
    ) => {
      const { value, cpu } = await withCpu(order.map((m) => m.child.pid), () => run(key));
      key += n;
      const note = `${what}: etcd ${rate(value.per_s)}; CPU leader/followers ${cpu}`;
      results.notes.push(note);
      log(note);
      return value;
    };
    await etcdPuts(leader.client_url, 16, sizes.warmup, key);
    key += sizes.warmup;
    for (const clients of CLIENTS) {
      const total = sizes.etcd_puts[clients];
      const pair = results.creates.get(clients) ?? {};
      results.creates.set(clients, pair);
      pair.etcd = await measure(
        `${clients} clients, ${total} puts to the leader`,
        (first) => etcdPuts(leader.client_url, clients, total, first),
        total,
      );
    }
    results.follower.etcd = await measure(
      `64 clients, ${sizes.etcd_follower} puts through follower ${follower.name}`,
      (first) => etcdPuts(follower.client_url, 64, sizes.etcd_follower, first),
      sizes.etcd_follower,
    );
    const pair = results.batches.get(BATCH_SIZES[0]) ?? {};
    results.batches.set(BATCH_SIZES[0], pair);
    pair.etcd = await measure(
      `${sizes.batch_jobs} puts in transactions of ${ETCD_TXN_OPS_MAX}, ${BATCH_CLIENTS} in flight`,
      (first) => etcdTxnPuts(leader.client_url, BATCH_CLIENTS, sizes.batch_jobs, first),
      sizes.batch_jobs,
    );
  } finally {
    await cluster.stop();
  }
}

/**
 * Failover on a fresh cluster: a writer in a loop and an every-second cron job delivering to a
 * sink in this process; each run kills the leader with SIGKILL, times the first acknowledged
 * write sent after the kill and the first delivery arriving after it, then restarts the killed
 * node on its data dir and waits until it has caught up.
 */
async function runFailover(dir: string, sizes: Sizes, results: Results): Promise<void> {
  const deliveries: number[] = [];
  const sink = await startSink({
    record: false,
    onRequest: (req) => deliveries.push(req.arrived_at_ms),
  });
  const cluster = await TickraftCluster.start(dir);
  let writer: Writer | null = null;
  try {
    const leader = await cluster.agreedLeader(cluster.nodes);
    const res = await fetch(`${leader.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        type: "cron",
        cron_expression: "* * * * * *",
        webhook_url: `${sink.url}/failover`,
        name: "failover-probe",
      }),
    });
    if (res.status !== 201) throw new Error(`the cron job was refused: ${await res.text()}`);
    await res.body?.cancel();
    writer = new Writer(cluster.nodes.map((n) => n.url));
    for (let run = 1; run <= sizes.failover_runs; run++) {
      const sample = await failoverRun(cluster, writer, deliveries);
      results.failover.push(sample);
      const note = `failover ${run}: killed ${sample.killed}, new leader ${sample.new_leader}, ` +
        `leader agreed after ${ms(sample.election_ms)} ms, first write ${
          ms(sample.write_ms)
        } ms, ` +
        `first delivery ${ms(sample.delivery_ms)} ms`;
      results.notes.push(note);
      log(note);
    }
  } finally {
    await writer?.stop();
    await cluster.stop();
    await sink.close();
  }
}

async function failoverRun(
  cluster: TickraftCluster,
  writer: Writer,
  deliveries: number[],
): Promise<FailoverSample> {
  const leader = await cluster.agreedLeader(cluster.nodes);
  const live = cluster.nodes.filter((n) => n !== leader);
  const seen = deliveries.length;
  await waitFor(
    "a delivery before the kill",
    () => Promise.resolve(deliveries.length > seen || undefined),
    FAILOVER_TIMEOUT_MS,
    leader.child,
    5,
  );
  await sleep(KILL_AFTER_DELIVERY_MS);
  const kill_ms = Date.now();
  await cluster.kill(leader);
  const elected = cluster.agreedLeader(live, ELECTION_POLL_MS)
    .then((node) => ({ node, at_ms: Date.now() }));
  // Awaited below; if it fails first (a node exits), that must not be an unhandled rejection.
  elected.catch(() => {});
  const firstAfter = () => {
    const ack = writer.firstAckSince(kill_ms);
    const delivery = deliveries.find((at) => at >= kill_ms);
    return Promise.resolve(
      ack !== undefined && delivery !== undefined ? { ack, delivery } : undefined,
    );
  };
  const { ack, delivery } = await waitFor(
    "the first write and delivery after the kill",
    firstAfter,
    FAILOVER_TIMEOUT_MS,
    live[0].child,
  );
  const new_leader = await elected;
  await restartCaughtUp(cluster, leader, new_leader.node);
  return {
    killed: leader.name,
    new_leader: new_leader.node.name,
    election_ms: new_leader.at_ms - kill_ms,
    write_ms: ack.acked_ms - kill_ms,
    delivery_ms: delivery - kill_ms,
  };
}

async function restartCaughtUp(
  cluster: TickraftCluster,
  node: ClusterNode,
  leader: ClusterNode,
): Promise<void> {
  const started = performance.now();
  await cluster.restart(node, leader);
  log(`${node.name} restarted and caught up in ${seconds(performance.now() - started)}`);
}

/** A table cell for one side of a pair: its result, why it failed, or "–" when it did not run. */
function resultCell(r: LoadResult | undefined, error?: string): string {
  if (error !== undefined) return `failed: ${error}`;
  return r === undefined ? "–" : loadText(r);
}

function pairRow(what: string, pair: Pair, aimed: boolean): string[] {
  const both = pair.tickraft !== undefined && pair.etcd !== undefined;
  return [
    what,
    resultCell(pair.tickraft, pair.tickraft_error),
    resultCell(pair.etcd),
    both ? ratio(pair.tickraft!.per_s, pair.etcd!.per_s) : "–",
    aimed ? `≥ ${AIM_RATIO}x etcd` : "",
    aimed && both ? met(pair.tickraft!.per_s >= AIM_RATIO * pair.etcd!.per_s) : "",
  ];
}

function failoverRow(what: string, values_ms: number[], aim_ms: number | null): string[] {
  const mid = median(values_ms);
  const all = values_ms.map((v) => (v / 1_000).toFixed(2)).join(", ");
  return [
    what,
    `${seconds(mid)} (runs: ${all} s)`,
    "–",
    "",
    aim_ms === null ? "" : `≤ ${seconds(aim_ms)}`,
    aim_ms === null ? "" : met(mid <= aim_ms),
  ];
}

/** The rows of the results table; ratio above 1 means Tickraft is better. */
function tableRows(results: Results, sizes: Sizes): string[][] {
  const rows: string[][] = [];
  const n = (count: number) => count.toLocaleString("en-US");
  for (const clients of CLIENTS) {
    const pair = results.creates.get(clients);
    if (pair === undefined) continue;
    rows.push(pairRow(
      `creates/s, ${clients} client${clients === 1 ? "" : "s"} to the leader (${
        n(sizes.creates[clients])
      } jobs; ${n(sizes.etcd_puts[clients])} puts)`,
      pair,
      true,
    ));
  }
  if (results.follower.tickraft !== undefined || results.follower.etcd !== undefined) {
    rows.push(pairRow(
      `creates/s, 64 clients through a follower (${n(sizes.follower)}; ${n(sizes.etcd_follower)})`,
      results.follower,
      false,
    ));
  }
  for (const [size, pair] of results.batches) {
    const peer = size === BATCH_SIZES[0] ? `; /v3/kv/txn of ${ETCD_TXN_OPS_MAX} puts` : "";
    rows.push(pairRow(
      `jobs/s in batches, ${BATCH_CLIENTS} in flight (${
        n(sizes.batch_jobs)
      } jobs, POST /jobs/batch of ${n(size)}${peer})`,
      pair,
      false,
    ));
  }
  if (results.failover.length > 0) {
    const runs = results.failover.length;
    rows.push(failoverRow(
      `failover: kill -9 of the leader to the first acknowledged write, median of ${runs}`,
      results.failover.map((s) => s.write_ms),
      AIM_FAILOVER_WRITE_MS,
    ));
    rows.push(failoverRow(
      `failover: kill -9 of the leader to the first delivery of an every-second job, median of ${runs}`,
      results.failover.map((s) => s.delivery_ms),
      null,
    ));
  }
  return rows;
}

async function printReport(
  results: Results,
  sizes: Sizes,
  etcd_version: string | null,
  load: string,
  stopped_by: string | null,
): Promise<void> {
  const peer = etcd_version === null ? "etcd (skipped)" : `etcd ${etcd_version}`;
  console.log(
    [
      ...(stopped_by === null ? [] : [
        `INTERRUPTED by ${stopped_by}: the rows below are what was measured before it`,
        "",
      ]),
      `Tickraft 3-node cluster vs ${peer} 3 members, all on loopback; ${new Date().toISOString()}`,
      await hostLine(load),
      `fsync on both sides (libSQL synchronous=FULL; etcd's default); default Raft timeouts; ` +
      `${JOB_BODY_BYTES}-byte job JSON / etcd value; ratio > 1 means Tickraft is better`,
      "",
      markdownTable(
        ["measure", "Tickraft", peer, "ratio", "aim", "met"],
        tableRows(results, sizes),
      ),
      "",
      "Per run:",
      ...results.notes.map((note) => `- ${note}`),
    ].join("\n"),
  );
}

/** Removes `dir` and everything in it; already gone is fine (the signal handler races the run). */
async function removeDir(dir: string): Promise<void> {
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function main(): Promise<void> {
  const { sizes, skip_etcd } = parseOptions();
  const load_before = await loadAverage();
  const dir = await Deno.makeTempDir({ prefix: "tickraft-bench-cluster-" });
  const results: Results = {
    creates: new Map(),
    follower: {},
    batches: new Map(),
    failover: [],
    notes: [],
  };
  let etcd_version: string | null = null;
  let reporting: Promise<void> | null = null;
  /** Prints the table once, whether the run ends or a signal stops it. */
  const report = (stopped_by: string | null) =>
    reporting ??= (async () => {
      const load = await loadAverageSince(load_before);
      await printReport(results, sizes, etcd_version, load, stopped_by);
    })();
  stopChildrenOnSignal(async () => {
    await removeDir(dir);
    await report("a signal");
  });
  let failure: unknown = null;
  try {
    if (!skip_etcd) etcd_version = await ensureEtcd(log);
    log("tickraft: creates");
    await runTickraft(`${dir}/creates`, sizes, results);
    if (!skip_etcd) {
      log("etcd: puts");
      await runEtcd(`${dir}/etcd`, sizes, results);
    }
    log(`failover: ${sizes.failover_runs} leader kills`);
    await runFailover(`${dir}/failover`, sizes, results);
  } catch (error) {
    failure = error;
  } finally {
    await interrupted();
    await removeDir(dir);
  }
  await report(null);
  if (failure !== null) throw failure;
}

if (import.meta.main) await main();
