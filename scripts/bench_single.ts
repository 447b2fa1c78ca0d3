/**
 * `deno task bench:single`: the single-node benchmark (not a test). Runs a Tickraft node as a
 * child process and, in the same run, BullMQ on a private redis-server with every write
 * fsynced, and prints a side-by-side table:
 *
 * - creates/s at 1, 16 and 64 concurrent clients (`POST /jobs` vs `Queue.add` with a delay) and
 *   through `POST /jobs/batch` (vs `Queue.addBulk`), median of `--repeats` interleaved runs;
 * - firing lateness p50/p99/max of 10,000 jobs due over 10 s, measured by a separate webhook
 *   sink process (BullMQ: in its worker, and again with the same webhook call);
 * - RSS with 1,000,000 jobs stored and the time to restart with them.
 *
 * ```sh
 * ./deno task bench:single              # full run, about 5 minutes on 2 cores
 * ./deno task bench:single --quick      # small sizes, a smoke run
 * ./deno task bench:single --skip-peer  # Tickraft only
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LoadResult } from "./bench/load.ts";
import {
  BullPeer,
  ensureRedisServer,
  type RedisServer,
  type RedisStoreResult,
  redisVersion,
  startRedis,
  storeAndRestartRedis,
} from "./bench/peer.ts";
import { elapsedLog, hostLine, loadAverage, loadAverageSince, withCpu } from "./bench/host.ts";
import { REPO_ROOT, stopChildrenOnSignal } from "./bench/proc.ts";
import {
  loadText,
  markdownTable,
  mb,
  met,
  ms,
  positiveIntOption,
  rate,
  ratio,
  seconds,
} from "./bench/report.ts";
import { type LatenessResult, SinkProcess } from "./bench/sink.ts";
import { median } from "./bench/stats.ts";
import {
  BATCH_MAX,
  batchCreates,
  commitCounts,
  creates,
  lateness,
  type NodeCode,
  startNode,
  storeAndRestart,
  type StoreResult,
} from "./bench/tickraft.ts";

const USAGE = `usage: deno task bench:single [--quick] [--skip-peer] [--jobs-1m N] [--repeats N]
       [--only SECTIONS] [--late-rate N] [--late-seconds N] [--node-root DIR] [--cpu-prof-dir DIR]
  --quick           small sizes (a smoke run of a minute or so)
  --skip-peer       measure Tickraft only (no redis-server, no BullMQ)
  --jobs-1m N       jobs stored for the memory and restart rows (default 1000000; quick 20000)
  --repeats N       interleaved runs of each create measurement, median reported (default 3; quick 1)
  --only SECTIONS   comma-separated subset of creates,lateness,store (default all three)
  --late-rate N     jobs due per second in the lateness section (default 1000; quick 500)
  --late-seconds N  length of the lateness window in seconds (default 10; quick 2)
  --late-lead-seconds N  time from creating the lateness jobs to the first due (default 5; quick 3)
  --node-root DIR   run the node from another checkout (e.g. \`git archive\` of an older commit),
                    for A/B runs interleaved with this one
  --cpu-prof-dir D  run the node with \`deno run --cpu-prof --cpu-prof-dir D\` (profiles on exit)`;

const SECTIONS = ["creates", "lateness", "store"] as const;
type Section = (typeof SECTIONS)[number];

const CLIENTS = [1, 16, 64] as const;
const CREATE_DELAY_MS = 3_600_000;
const PEER_WORKER_CONCURRENCY = 64;
const AIM_BATCH_PER_S = 50_000;
const AIM_P99_MS = 20;
const AIM_RSS_BYTES = 600_000_000;
const AIM_RESTART_MS = 15_000;

interface Sizes {
  creates: Record<(typeof CLIENTS)[number], number>;
  warmup: number;
  batch_jobs: number;
  late: { count: number; window_ms: number; lead_ms: number };
  jobs_1m: number;
  repeats: number;
}

const FULL: Sizes = {
  creates: { 1: 2_000, 16: 10_000, 64: 20_000 },
  warmup: 1_000,
  batch_jobs: 100_000,
  late: { count: 10_000, window_ms: 10_000, lead_ms: 5_000 },
  jobs_1m: 1_000_000,
  repeats: 3,
};

const QUICK: Sizes = {
  creates: { 1: 200, 16: 1_000, 64: 2_000 },
  warmup: 100,
  batch_jobs: 20_000,
  late: { count: 1_000, window_ms: 2_000, lead_ms: 3_000 },
  jobs_1m: 20_000,
  repeats: 1,
};

interface Pair<T> {
  ours: T[];
  peer: T[];
}

/** Everything measured; sections that did not run (or failed) stay empty. */
interface Results {
  creates: Map<number, Pair<LoadResult>>;
  batch: Pair<LoadResult>;
  late?: {
    ours: LatenessResult & { node_p99_bound_ms: number };
    peer?: LatenessResult;
    peer_webhook?: LatenessResult;
  };
  store?: StoreResult;
  peer_store?: RedisStoreResult;
  /** Per-run diagnostics printed under the table (server CPU, group-commit sizes). */
  notes: string[];
}

interface Options {
  sizes: Sizes;
  skip_peer: boolean;
  sections: Set<Section>;
  code: NodeCode;
}

function parseSections(text: string | undefined): Set<Section> {
  if (text === undefined) return new Set(SECTIONS);
  const names = text.split(",").map((name) => name.trim());
  const unknown = names.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    console.error(`--only takes ${SECTIONS.join(",")}, got ${unknown.join(",")}\n${USAGE}`);
    Deno.exit(2);
  }
  return new Set(names as Section[]);
}

function parseOptions(): Options {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      "skip-peer": { type: "boolean", default: false },
      "jobs-1m": { type: "string" },
      repeats: { type: "string" },
      only: { type: "string" },
      "late-rate": { type: "string" },
      "late-seconds": { type: "string" },
      "late-lead-seconds": { type: "string" },
      "node-root": { type: "string" },
      "cpu-prof-dir": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const base = values.quick ? QUICK : FULL;
  const window_ms =
    (positiveIntOption("late-seconds", values["late-seconds"], USAGE) ?? 0) * 1_000 ||
    base.late.window_ms;
  const per_s = positiveIntOption("late-rate", values["late-rate"], USAGE) ??
    base.late.count * 1_000 / base.late.window_ms;
  const cpu_prof_dir = values["cpu-prof-dir"];
  return {
    skip_peer: values["skip-peer"],
    sections: parseSections(values.only),
    code: {
      root: values["node-root"],
      deno_flags: cpu_prof_dir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", cpu_prof_dir],
    },
    sizes: {
      ...base,
      late: {
        window_ms,
        count: Math.round(per_s * window_ms / 1_000),
        lead_ms: (positiveIntOption("late-lead-seconds", values["late-lead-seconds"], USAGE) ?? 0) *
            1_000 ||
          base.late.lead_ms,
      },
      jobs_1m: positiveIntOption("jobs-1m", values["jobs-1m"], USAGE) ?? base.jobs_1m,
      repeats: positiveIntOption("repeats", values.repeats, USAGE) ?? base.repeats,
    },
  };
}

const log = elapsedLog();

/** Median of each figure over repeated runs. */
function medianLoad(runs: LoadResult[]): LoadResult {
  return {
    per_s: median(runs.map((r) => r.per_s)),
    p50_ms: median(runs.map((r) => r.p50_ms)),
    p99_ms: median(runs.map((r) => r.p99_ms)),
  };
}

async function versions(): Promise<{ bullmq: string; redis: string; deno: string }> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`));
  const bullmq = String(config.imports.bullmq).replace(/^npm:bullmq@/, "");
  const redis = await redisVersion() ?? "not installed";
  return { bullmq, redis, deno: Deno.version.deno };
}

type CommitCounts = Awaited<ReturnType<typeof commitCounts>>;

/** How many group commits happened between two readings, and their mean size. */
function describeCommits(before: CommitCounts, after: CommitCounts): string {
  const commits = after.commits - before.commits;
  const per_commit = (after.commands - before.commands) / commits;
  return `${commits} group commits of ${per_commit.toFixed(1)} commands on average`;
}

/** Creates at each client count and through batches, Tickraft and BullMQ interleaved. */
async function runCreates(
  dir: string,
  sizes: Sizes,
  webhook_url: string,
  peer: { bull: BullPeer; redis: RedisServer } | null,
  results: Results,
  code: NodeCode,
): Promise<void> {
  const node = await startNode(`${dir}/creates`, 0, code);
  /** Runs one Tickraft measurement and notes the node's CPU and group-commit sizes. */
  const ours = async (what: string, run: () => Promise<LoadResult>) => {
    const before = await commitCounts(node);
    const { value, cpu } = await withCpu([node.child.pid], run);
    const after = await commitCounts(node);
    results.notes.push(
      `${what}: tickraft ${rate(value.per_s)}, node CPU ${cpu}, ${describeCommits(before, after)}`,
    );
    return value;
  };
  const theirs = async (what: string, run: (bull: BullPeer) => Promise<LoadResult>) => {
    if (peer === null) return null;
    const { value, cpu } = await withCpu([peer.redis.child.pid], () => run(peer.bull));
    results.notes.push(`${what}: bullmq ${rate(value.per_s)}, redis-server CPU ${cpu}`);
    return value;
  };
  try {
    log(`warm-up: ${sizes.warmup} creates each`);
    await creates(node, 16, sizes.warmup, CREATE_DELAY_MS, webhook_url);
    await peer?.bull.adds(16, sizes.warmup);
    for (let rep = 1; rep <= sizes.repeats; rep++) {
      for (const clients of CLIENTS) {
        const total = sizes.creates[clients];
        const pair = results.creates.get(clients) ?? { ours: [], peer: [] };
        results.creates.set(clients, pair);
        const what = `run ${rep}, ${clients} clients, ${total} creates`;
        pair.ours.push(
          await ours(what, () => creates(node, clients, total, CREATE_DELAY_MS, webhook_url)),
        );
        const peer_result = await theirs(what, (bull) => bull.adds(clients, total));
        if (peer_result !== null) pair.peer.push(peer_result);
        log(results.notes.slice(peer === null ? -1 : -2).join("; "));
      }
      const what = `run ${rep}, ${sizes.batch_jobs} jobs in batches`;
      results.batch.ours.push(
        await ours(what, () =>
          batchCreates(node, {
            concurrency: 2,
            jobs: sizes.batch_jobs,
            batch_size: BATCH_MAX,
            first_due_ms: Date.now() + CREATE_DELAY_MS,
            spacing_ms: 1,
            webhook_url,
          })),
      );
      const peer_result = await theirs(
        what,
        (bull) => bull.addBulk(null, 2, sizes.batch_jobs, BATCH_MAX),
      );
      if (peer_result !== null) results.batch.peer.push(peer_result);
      log(results.notes.slice(peer === null ? -1 : -2).join("; "));
    }
  } finally {
    await node.child.stop();
  }
}

function lateText(r: LatenessResult): string {
  const dups = r.duplicates > 0 ? `, ${r.duplicates} duplicates` : "";
  return `${ms(r.p50_ms)} / ${ms(r.p99_ms)} / ${
    ms(r.max_ms)
  } ms (${r.delivered}/${r.expected}${dups})`;
}

/** The rows of the results table; ratio above 1 means Tickraft is better, in every row. */
function tableRows(results: Results, sizes: Sizes): string[][] {
  const rows: string[][] = [];
  const none = "–";
  for (const clients of CLIENTS) {
    const pair = results.creates.get(clients);
    if (pair === undefined || pair.ours.length === 0) continue;
    const ours = medianLoad(pair.ours);
    const peer = pair.peer.length > 0 ? medianLoad(pair.peer) : null;
    const aimed = clients === 64 && peer !== null;
    rows.push([
      `creates/s, ${clients} client${clients === 1 ? "" : "s"}, ${
        sizes.creates[clients].toLocaleString("en-US")
      } jobs (POST /jobs; Queue.add with delay)`,
      loadText(ours),
      peer === null ? none : loadText(peer),
      peer === null ? none : ratio(ours.per_s, peer.per_s),
      clients === 64 ? "≥ BullMQ" : "",
      aimed ? met(ours.per_s >= peer.per_s) : "",
    ]);
  }
  if (results.batch.ours.length > 0) {
    const ours = medianLoad(results.batch.ours);
    const peer = results.batch.peer.length > 0 ? medianLoad(results.batch.peer) : null;
    rows.push([
      `jobs/s in batches of 10,000, 2 in flight, ${
        sizes.batch_jobs.toLocaleString("en-US")
      } jobs (POST /jobs/batch; addBulk)`,
      loadText(ours),
      peer === null ? none : loadText(peer),
      peer === null ? none : ratio(ours.per_s, peer.per_s),
      `≥ ${rate(AIM_BATCH_PER_S)}`,
      met(ours.per_s >= AIM_BATCH_PER_S),
    ]);
  }
  const late = results.late;
  if (late !== undefined) {
    const what = `${sizes.late.count.toLocaleString("en-US")} jobs due over ${
      sizes.late.window_ms / 1_000
    } s`;
    rows.push([
      `lateness p50 / p99 / max, ${what} (Tickraft: at the sink, webhook included; BullMQ: worker start, no webhook)`,
      lateText(late.ours),
      late.peer === undefined ? none : lateText(late.peer),
      late.peer === undefined ? none : ratio(late.peer.p99_ms, late.ours.p99_ms),
      `p99 ≤ ${AIM_P99_MS} ms`,
      met(late.ours.p99_ms <= AIM_P99_MS && late.ours.delivered === late.ours.expected),
    ]);
    if (late.peer_webhook !== undefined) {
      rows.push([
        `lateness, ${what}, BullMQ worker making the same webhook call (both at the sink)`,
        lateText(late.ours),
        lateText(late.peer_webhook),
        ratio(late.peer_webhook.p99_ms, late.ours.p99_ms),
        "",
        "",
      ]);
    }
    rows.push([
      "Tickraft's own tickraft_firing_lateness_seconds: bucket holding p99",
      `≤ ${ms(late.ours.node_p99_bound_ms)} ms`,
      none,
      "",
      "",
      "",
    ]);
  }
  const store = results.store;
  if (store !== undefined) {
    const peer = results.peer_store;
    const jobs = store.jobs.toLocaleString("en-US");
    rows.push([
      `store ${jobs} jobs (batches of 10,000, 2 in flight)`,
      rate(store.insert.per_s),
      peer === undefined ? none : rate(peer.insert.per_s),
      peer === undefined ? none : ratio(store.insert.per_s, peer.insert.per_s),
      "",
      "",
    ]);
    rows.push([
      `RSS with ${jobs} jobs stored (node; redis-server), peak, after restart`,
      `${mb(store.rss_bytes)} (/health ${mb(store.health_rss_bytes)}, peak ${
        mb(store.hwm_bytes)
      }, after restart ${mb(store.rss_after_restart_bytes)})`,
      peer === undefined
        ? none
        : `${mb(peer.rss_bytes)} (peak ${mb(peer.hwm_bytes)}, after restart ${
          mb(peer.rss_after_restart_bytes)
        })`,
      peer === undefined ? none : ratio(peer.rss_bytes, store.rss_bytes),
      `≤ ${mb(AIM_RSS_BYTES)}`,
      met(store.rss_bytes <= AIM_RSS_BYTES),
    ]);
    rows.push([
      `restart with ${jobs} jobs: process start to every job served (SIGTERM to exit)`,
      `${seconds(store.restart_ms)} (${seconds(store.stop_ms)})`,
      peer === undefined ? none : `${seconds(peer.restart_ms)} (${seconds(peer.stop_ms)})`,
      peer === undefined ? none : ratio(peer.restart_ms, store.restart_ms),
      `≤ ${seconds(AIM_RESTART_MS)}`,
      met(store.restart_ms <= AIM_RESTART_MS),
    ]);
  }
  return rows;
}

async function main(): Promise<void> {
  const { sizes, skip_peer, sections, code } = parseOptions();
  const load_before = await loadAverage();
  const dir = await Deno.makeTempDir({ prefix: "tickraft-bench-" });
  stopChildrenOnSignal(() => Deno.remove(dir, { recursive: true }));
  const results: Results = { creates: new Map(), batch: { ours: [], peer: [] }, notes: [] };
  const stops: (() => Promise<void>)[] = [];
  let failure: unknown = null;
  try {
    if (!skip_peer) await ensureRedisServer(log);
    const sink = await SinkProcess.start(dir);
    stops.push(() => sink.child.stop());
    let redis: RedisServer | null = null;
    if (!skip_peer) {
      await Deno.mkdir(`${dir}/redis`);
      redis = await startRedis(`${dir}/redis`);
      stops.push(() => redis!.child.stop());
    }
    const peer = redis === null ? null : new BullPeer(redis);
    try {
      if (sections.has("creates")) {
        log(`creates: ${sizes.repeats} interleaved runs`);
        await runCreates(
          dir,
          sizes,
          sink.hookUrl("never"),
          peer === null ? null : { bull: peer, redis: redis! },
          results,
          code,
        );
        await peer?.flush();
      }
      if (sections.has("lateness")) await runLateness(dir, sizes, sink, peer, results, code);
    } finally {
      await peer?.close();
    }
    if (sections.has("store")) {
      log(`store ${sizes.jobs_1m} jobs, measure memory, restart`);
      results.store = await storeAndRestart(
        `${dir}/million`,
        sizes.jobs_1m,
        sink.hookUrl("never"),
        code,
      );
      log(`tickraft: ${mb(results.store.rss_bytes)}, restart ${seconds(results.store.restart_ms)}`);
      if (redis !== null) {
        const stored = await storeAndRestartRedis(redis, `${dir}/redis`, sizes.jobs_1m, BATCH_MAX);
        redis = stored.redis;
        results.peer_store = stored.result;
        log(`redis: ${mb(stored.result.rss_bytes)}, restart ${seconds(stored.result.restart_ms)}`);
      }
    }
  } catch (error) {
    failure = error;
  } finally {
    for (const stop of stops.reverse()) await stop();
    await Deno.remove(dir, { recursive: true });
  }
  const load = await loadAverageSince(load_before);
  await printReport(results, sizes, skip_peer, load);
  if (failure !== null) throw failure;
}

/** The lateness section: Tickraft, then BullMQ's worker without and with the webhook call. */
async function runLateness(
  dir: string,
  sizes: Sizes,
  sink: SinkProcess,
  peer: BullPeer | null,
  results: Results,
  code: NodeCode,
): Promise<void> {
  log(`lateness: ${sizes.late.count} jobs over ${sizes.late.window_ms} ms`);
  const node = await startNode(`${dir}/lateness`, 0, code);
  try {
    const before = await commitCounts(node);
    const { value, cpu } = await withCpu([node.child.pid], () => lateness(node, sink, sizes.late));
    const after = await commitCounts(node);
    results.late = { ours: value };
    results.notes.push(
      `lateness: node CPU ${cpu} from creating the jobs to the last delivery, ${
        describeCommits(before, after)
      }`,
    );
  } finally {
    await node.child.stop();
  }
  log(`tickraft lateness: ${lateText(results.late.ours)}`);
  if (peer !== null) {
    const opts = { ...sizes.late, concurrency: PEER_WORKER_CONCURRENCY };
    results.late.peer = await peer.lateness(opts, null);
    log(`bullmq lateness: ${lateText(results.late.peer)}`);
    results.late.peer_webhook = await peer.lateness(opts, sink);
    log(`bullmq lateness with webhook: ${lateText(results.late.peer_webhook)}`);
    await peer.flush();
  }
}

async function printReport(
  results: Results,
  sizes: Sizes,
  skip_peer: boolean,
  load: string,
): Promise<void> {
  const v = await versions();
  const peer = skip_peer ? "BullMQ (skipped)" : `BullMQ ${v.bullmq} + Redis ${v.redis}`;
  console.log(
    [
      `Tickraft single node vs ${peer}; ${new Date().toISOString()}`,
      await hostLine(load),
      "fsync on both sides: libSQL synchronous=FULL; redis appendonly yes, appendfsync always",
      `creates: median of ${sizes.repeats} interleaved run(s); ratio > 1 means Tickraft is better`,
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

if (import.meta.main) await main();
