/**
 * The system under test: a Tickraft node as a real child process (`deno run -A src/main.ts`) on
 * a data directory of its own, driven over HTTP on 127.0.0.1.
 *
 * @module
 */
import { freePort } from "../../tests/support/ports.ts";
import { sleep } from "../../tests/support/wait.ts";
import { procMemory } from "./host.ts";
import { expectStatus, JSON_HEADERS, tryJson } from "./http.ts";
import { batchedLoop, closedLoop, type LoadResult } from "./load.ts";
import { type Child, spawnChild, waitFor } from "./proc.ts";
import type { LatenessResult, SinkProcess } from "./sink.ts";

/** Largest `POST /jobs/batch` the node takes by default (BATCH_MAX_JOBS). */
export const BATCH_MAX = 10_000;
/** Time for the node's RSS sampler (1 s) to refresh `/health`. */
const RSS_SAMPLE_WAIT_MS = 1_500;

interface Health {
  jobs: { total: number };
  memory: { rss_bytes: number };
}

/**
 * Where the node's code comes from and how Deno runs it: `root` is a checkout (default this
 * one; another one, e.g. an export of an older commit, for A/B runs interleaved with this
 * one), `deno_flags` go before the script (e.g. `--cpu-prof`).
 */
export interface NodeCode {
  root?: string;
  deno_flags?: string[];
}

/** A running node. */
export interface TickraftNode {
  url: string;
  child: Child;
}

/** Starts a node on `data_dir` and waits until `/health` reports `jobs_expected` jobs. */
export async function startNode(
  data_dir: string,
  jobs_expected = 0,
  code: NodeCode = {},
): Promise<TickraftNode> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const root = code.root === undefined ? "" : `${code.root.replace(/\/+$/, "")}/`;
  const child = spawnChild("tickraft", Deno.execPath(), [
    "run",
    "-A",
    ...(root === "" ? [] : ["--config", `${root}deno.json`]),
    ...(code.deno_flags ?? []),
    `${root}src/main.ts`,
    "--data-dir",
    data_dir,
    "--http-port",
    String(port),
    "--host",
    "127.0.0.1",
    "--log-level",
    "error",
    "--queue-job-limit",
    "2000000",
  ]);
  await waitFor(
    "tickraft /health",
    async () => {
      const health = await tryHealth(url);
      return health !== undefined && health.jobs.total >= jobs_expected ? health : undefined;
    },
    120_000,
    child,
  );
  return { url, child };
}

function tryHealth(url: string): Promise<Health | undefined> {
  return tryJson<Health>(`${url}/health`);
}

async function health(url: string): Promise<Health> {
  const h = await tryHealth(url);
  if (h === undefined) throw new Error(`${url}/health did not answer`);
  return h;
}

/** A one-off job due at `at_ms` calling `webhook_url`, as the API takes it. */
function onceJob(at_ms: number, webhook_url: string, i: number) {
  return {
    type: "once",
    timestamp: new Date(at_ms).toISOString(),
    webhook_url,
    payload: { i },
  };
}

async function postBatch(url: string, jobs: unknown[]): Promise<number> {
  const res = await fetch(`${url}/jobs/batch`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ jobs }),
  });
  await expectStatus(res, "POST /jobs/batch", 201);
  return jobs.length;
}

/** `total` single creates (`POST /jobs`) with `concurrency` clients; jobs due in `delay_ms`. */
export function creates(
  node: TickraftNode,
  concurrency: number,
  total: number,
  delay_ms: number,
  webhook_url: string,
): Promise<LoadResult> {
  return closedLoop(concurrency, total, async (i) => {
    const res = await fetch(`${node.url}/jobs`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify(onceJob(Date.now() + delay_ms, webhook_url, i)),
    });
    await expectStatus(res, "POST /jobs", 201);
    return 1;
  });
}

/**
 * `jobs` creates through `POST /jobs/batch`, `batch_size` jobs a request and `concurrency`
 * requests in flight; job `k` is due at `first_due_ms + k * spacing_ms`. The result counts
 * jobs, not requests.
 */
export function batchCreates(
  node: TickraftNode,
  opts: {
    concurrency: number;
    jobs: number;
    batch_size: number;
    first_due_ms: number;
    spacing_ms: number;
    webhook_url: string;
  },
): Promise<LoadResult> {
  return batchedLoop(opts.concurrency, opts.jobs, opts.batch_size, (first, size) => {
    const jobs = Array.from({ length: size }, (_, j) => {
      const k = first + j;
      return onceJob(opts.first_due_ms + k * opts.spacing_ms, opts.webhook_url, k);
    });
    return postBatch(node.url, jobs);
  });
}

/** Group commits so far and the commands they held, from the node's /metrics. */
export async function commitCounts(
  node: TickraftNode,
): Promise<{ commits: number; commands: number }> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    commits: value("tickraft_log_commit_commands_count"),
    commands: value("tickraft_log_commit_commands_sum"),
  };
}

/** Smallest histogram bound (ms) under which 99% of the node's own lateness samples fall. */
async function nodeLatenessP99BoundMs(node: TickraftNode): Promise<number> {
  const res = await fetch(`${node.url}/metrics`);
  const text = await res.text();
  const buckets = [
    ...text.matchAll(/^tickraft_firing_lateness_seconds_bucket\{le="([^"]+)"\} (\d+)/gm),
  ]
    .map((m) => ({ le_s: m[1] === "+Inf" ? Infinity : Number(m[1]), count: Number(m[2]) }));
  const total = buckets.at(-1)?.count ?? 0;
  const bound = buckets.find((b) => b.count >= 0.99 * total);
  return (bound?.le_s ?? NaN) * 1_000;
}

/**
 * Lateness of `count` one-off jobs due uniformly over `window_ms`, starting `lead_ms` from now,
 * each calling the sink; measured by the sink. Also returns the node's own p99 histogram bound.
 */
export async function lateness(
  node: TickraftNode,
  sink: SinkProcess,
  opts: { count: number; window_ms: number; lead_ms: number },
): Promise<LatenessResult & { node_p99_bound_ms: number }> {
  const start_ms = Date.now() + opts.lead_ms;
  const spacing_ms = opts.window_ms / opts.count;
  const webhook_url = sink.hookUrl("tickraft");
  for (let first = 0; first < opts.count; first += BATCH_MAX) {
    const size = Math.min(BATCH_MAX, opts.count - first);
    const jobs = Array.from(
      { length: size },
      (_, j) => onceJob(start_ms + (first + j) * spacing_ms, webhook_url, first + j),
    );
    await postBatch(node.url, jobs);
  }
  if (Date.now() > start_ms) throw new Error("creating the lateness jobs took longer than lead_ms");
  const result = await sink.lateness(
    "tickraft",
    opts.count,
    start_ms + opts.window_ms + 30_000,
  );
  return { ...result, node_p99_bound_ms: await nodeLatenessP99BoundMs(node) };
}

/** What {@link storeAndRestart} measured. */
export interface StoreResult {
  jobs: number;
  insert: LoadResult;
  /** RSS from `/health` and from /proc (VmRSS, VmHWM) once the jobs are stored. */
  health_rss_bytes: number;
  rss_bytes: number;
  hwm_bytes: number;
  /** SIGTERM to exit. */
  stop_ms: number;
  /** Process start to `/health` answering with every job. */
  restart_ms: number;
  rss_after_restart_bytes: number;
}

/**
 * Fills a fresh node on `data_dir` with `jobs` one-off jobs (due a day ahead, so none fires)
 * through `/jobs/batch`, reads its memory, stops it with SIGTERM and times a restart.
 */
export async function storeAndRestart(
  data_dir: string,
  jobs: number,
  webhook_url: string,
  code: NodeCode = {},
): Promise<StoreResult> {
  let node = await startNode(data_dir, 0, code);
  try {
    const insert = await batchCreates(node, {
      concurrency: 2,
      jobs,
      batch_size: BATCH_MAX,
      first_due_ms: Date.now() + 86_400_000,
      spacing_ms: 10,
      webhook_url,
    });
    await sleep(RSS_SAMPLE_WAIT_MS);
    const h = await health(node.url);
    if (h.jobs.total !== jobs) {
      throw new Error(`expected ${jobs} jobs, /health says ${h.jobs.total}`);
    }
    const mem = await procMemory(node.child.pid);
    const stop_started = performance.now();
    await node.child.stop(60_000);
    const stop_ms = performance.now() - stop_started;
    const restart_started = performance.now();
    node = await startNode(data_dir, jobs, code);
    const restart_ms = performance.now() - restart_started;
    await sleep(RSS_SAMPLE_WAIT_MS);
    const after = await procMemory(node.child.pid);
    return {
      jobs,
      insert,
      health_rss_bytes: h.memory.rss_bytes,
      rss_bytes: mem.rss_bytes,
      hwm_bytes: mem.hwm_bytes,
      stop_ms,
      restart_ms,
      rss_after_restart_bytes: after.rss_bytes,
    };
  } finally {
    await node.child.stop();
  }
}
