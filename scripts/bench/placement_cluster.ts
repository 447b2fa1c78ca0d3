/**
 * The cluster part of `deno task bench:placement`: a real 3-node cluster on loopback
 * (`deno run -A src/main.ts` per node, fsync on, default settings unless passed), one process
 * simulating the worker fleet (scripts/bench/sim_workers.ts), and two measurements read from
 * the allocations the cluster recorded, never from the client's clock:
 *
 * - committed placements per second: `jobs` one-off worker jobs created through
 *   `POST /jobs/batch`, all due at one instant once they are stored, so the leader has that
 *   backlog to place; the rate is the allocations' `placed_at` span (the leader's clock when it
 *   proposed each `alloc.create`, committed before it counts);
 * - dispatch latency: one-off worker jobs due at `rate_per_s` for a few seconds; each
 *   allocation's `started_at` (the clock of the node the worker's start reached) minus its
 *   `scheduled_at`.
 *
 * @module
 */
import { freePorts } from "../../tests/support/ports.ts";
import { sleep } from "../../tests/support/wait.ts";
import { ulid } from "../../src/scheduler/ids.ts";
import { cpuSeconds } from "./host.ts";
import { expectStatus, JSON_HEADERS, tryJson } from "./http.ts";
import { type Child, spawnChild, waitFor } from "./proc.ts";
import { summarize } from "./stats.ts";

/** Jobs per `POST /jobs/batch`: small enough that applying one does not hold the loop long. */
const BATCH_JOBS = 1_000;
/** Sends of one batch before a 503 fails the run. */
const BATCH_TRIES = 10;
/** The earliest due time of a job, after the moment its batch is built. */
const DUE_MARGIN_MS = 1_000;
/** Pause before a refused batch is sent again. */
const RETRY_MS = 500;
const START_TIMEOUT_MS = 60_000;
/** How often the benchmark reads the leader's metrics while it waits for the cluster. */
const PROGRESS_EVERY_MS = 1_000;

/** One node of the cluster. */
export interface PlacementNode {
  name: string;
  url: string;
  inspector_port: number;
  child: Child;
}

/** Options of {@link PlacementCluster.start}. */
export interface ClusterOptions {
  /** Extra flags of every node (e.g. `--max-inflight-deliveries 4096`). */
  node_args: string[];
  /** Starts each node with `--inspect` on a loopback port so the leader can be profiled. */
  inspect: boolean;
  /** Every simulated worker talks to the leader (no follower between it and the log). */
  workers_on_leader: boolean;
  log: (line: string) => void;
}

/** What `GET /debug/cluster` answers (the fields read here). */
interface ClusterView {
  leader: string | null;
  term: number;
}

/** The fields of an allocation the measurements read. */
interface AllocationRow {
  id: string;
  status: string;
  scheduled_at: string;
  placed_at: string | null;
  started_at: string | null;
}

/** A 3-node cluster and the simulated workers registered with it. */
export class PlacementCluster {
  private constructor(
    readonly nodes: PlacementNode[],
    readonly workers: Child,
    public leader: PlacementNode,
  ) {}

  /** Finds the leader again (before each measurement: an overloaded leader may have lost it). */
  async refreshLeader(): Promise<PlacementNode> {
    this.leader = await agreedLeader(this.nodes);
    return this.leader;
  }

  /** Starts node-1..3 under `dir`, waits for a leader, then registers `workers` simulated ones. */
  static async start(dir: string, workers: number, o: ClusterOptions): Promise<PlacementCluster> {
    const ports = freePorts(6);
    const secret = crypto.randomUUID();
    const specs = ["node-1", "node-2", "node-3"].map((name, i) => ({
      name,
      port: ports[i],
      inspector_port: ports[3 + i],
      url: `http://127.0.0.1:${ports[i]}`,
    }));
    const peers = specs.map((n) => `${n.name}=${n.url}`).join(",");
    const nodes: PlacementNode[] = specs.map((n) => ({
      name: n.name,
      url: n.url,
      inspector_port: n.inspector_port,
      child: spawnChild(n.name, Deno.execPath(), [
        "run",
        "-A",
        ...(o.inspect ? [`--inspect=127.0.0.1:${n.inspector_port}`] : []),
        "src/main.ts",
        ...["--node-id", n.name, "--host", "127.0.0.1", "--http-port", String(n.port)],
        ...["--data-dir", `${dir}/${n.name}`, "--peers", peers, "--cluster-secret", secret],
        ...["--log-level", "error", "--queue-job-limit", "2000000", ...o.node_args],
      ]),
    }));
    let sim: Child | null = null;
    try {
      const leader = await agreedLeader(nodes);
      o.log(`cluster up, leader ${leader.name}; registering ${workers} simulated workers`);
      let ready = false;
      sim = spawnChild("sim-workers", Deno.execPath(), [
        "run",
        "-A",
        "scripts/bench/sim_workers.ts",
        "--urls",
        [leader, ...nodes.filter((n) => n !== leader)].map((n) => n.url).join(","),
        "--workers",
        String(workers),
        ...(o.workers_on_leader ? ["--all-on-first"] : []),
      ], { onStderr: (text) => ready ||= /^ready \d+/m.test(text) });
      await waitFor(
        `${workers} ready workers on the leader`,
        async () => {
          if (!ready) return undefined;
          const m = await metrics(leader.url);
          return m.value('tickraft_workers{status="ready"}') >= workers ? true : undefined;
        },
        START_TIMEOUT_MS * 2,
        sim,
        250,
      );
      return new PlacementCluster(nodes, sim, leader);
    } catch (error) {
      await Promise.all([...nodes.map((n) => n.child.stop()), sim?.stop()]);
      throw error;
    }
  }

  /** The node pids, leader first, then the simulated workers' pid. */
  pids(): { leader: number; followers: number[]; workers: number } {
    return {
      leader: this.leader.child.pid,
      followers: this.nodes.filter((n) => n !== this.leader).map((n) => n.child.pid),
      workers: this.workers.pid,
    };
  }

  /** The current term, as the first node that answers sees it. */
  async term(): Promise<number> {
    for (const n of this.nodes) {
      const v = await tryJson<ClusterView>(`${n.url}/debug/cluster`);
      if (v !== undefined) return v.term;
    }
    throw new Error("no node answers GET /debug/cluster");
  }

  /** Stops the simulated workers, then the nodes (SIGTERM, SIGKILL after the grace). */
  async stop(): Promise<void> {
    await this.workers.stop();
    await Promise.all(this.nodes.map((n) => n.child.stop()));
  }
}

async function agreedLeader(nodes: PlacementNode[]): Promise<PlacementNode> {
  return await waitFor(
    "a leader all nodes agree on",
    async () => {
      const views = await Promise.all(
        nodes.map((n) => tryJson<ClusterView>(`${n.url}/debug/cluster`)),
      );
      const first = views[0];
      if (first === undefined || first.leader === null) return undefined;
      const agreed = views.every((v) => v?.leader === first.leader && v.term === first.term);
      return agreed ? nodes.find((n) => n.name === first.leader) : undefined;
    },
    START_TIMEOUT_MS,
    nodes[0].child,
  );
}

/** A node's `/metrics`, with `value(series)` for one sample (NaN when absent). */
async function metrics(url: string): Promise<{ value: (series: string) => number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const cut = line.lastIndexOf(" ");
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return { value: (series) => samples.get(series) ?? NaN };
}

/**
 * Allocations placed and started so far, summed over the nodes' /metrics (each counts what it
 * placed while it led, so a change of leader mid-run is counted too); a node that does not
 * answer counts nothing.
 */
async function progress(urls: string[]): Promise<{ placed: number; started: number }> {
  const all = await Promise.all(urls.map(async (url) => {
    try {
      const m = await metrics(url);
      return {
        placed: m.value('tickraft_placements_total{outcome="placed"}') || 0,
        started: m.value("tickraft_dispatch_latency_seconds_count") || 0,
      };
    } catch {
      return { placed: 0, started: 0 };
    }
  }));
  return {
    placed: all.reduce((sum, p) => sum + p.placed, 0),
    started: all.reduce((sum, p) => sum + p.started, 0),
  };
}

/** A one-off worker job due at `due_ms` with small resources, as `POST /jobs` takes it. */
function workerJob(due_ms: number, i: number) {
  return {
    type: "once",
    timestamp: new Date(due_ms).toISOString(),
    name: `place-${i}`,
    executor: {
      type: "worker",
      pool: "bench",
      resources: { cpu_millis: 10, memory_mb: 1, disk_mb: 0, slots: 1 },
    },
  };
}

/**
 * Creates jobs `0..count-1`, job `k` due at `dueOf(k)`, in batches of {@link BATCH_JOBS}, two in
 * flight, to the leader; a batch refused with 503 (no leader, or an election under load moved it)
 * is sent again to the leader found anew, at most {@link BATCH_TRIES} times. A job whose due time
 * has passed by the time its batch is built is due {@link DUE_MARGIN_MS} later instead.
 */
async function createJobs(
  cluster: PlacementCluster,
  count: number,
  dueOf: (k: number) => number,
  log: (line: string) => void,
) {
  const send = async (first: number) => {
    const size = Math.min(BATCH_JOBS, count - first);
    // The API refuses a one-off job due in the past: a batch sent late is due just after sending.
    const earliest_ms = Date.now() + DUE_MARGIN_MS;
    const late = dueOf(first) < earliest_ms;
    if (late) log(`  jobs ${first}-${first + size - 1} would be due in the past: due on arrival`);
    const jobs = Array.from(
      { length: size },
      (_, j) => workerJob(Math.max(earliest_ms, dueOf(first + j)), first + j),
    );
    const body = JSON.stringify({ jobs });
    for (let tries = 1;; tries++) {
      const res = await fetch(`${cluster.leader.url}/jobs/batch`, {
        method: "POST",
        headers: JSON_HEADERS,
        body,
      });
      if (res.status !== 503 || tries === BATCH_TRIES) {
        await expectStatus(res, "POST /jobs/batch", 201);
        return;
      }
      await res.body?.cancel();
      log(`  POST /jobs/batch: 503 from ${cluster.leader.name}; finding the leader again`);
      await sleep(RETRY_MS);
      await cluster.refreshLeader();
    }
  };
  for (let first = 0; first < count; first += BATCH_JOBS * 2) {
    await Promise.all([first, first + BATCH_JOBS].filter((f) => f < count).map(send));
  }
}

/**
 * Every allocation created at or after `since_ms`, in creation order, read page by page from
 * `GET /allocations` of the node at `url` (the cursor starts at the first id of that millisecond).
 */
async function allocationsSince(url: string, since_ms: number): Promise<AllocationRow[]> {
  const all: AllocationRow[] = [];
  let cursor: string | null = `${ulid(since_ms - 1).slice(0, 10)}${"Z".repeat(16)}`;
  while (cursor !== null) {
    const res = await fetch(`${url}/allocations?limit=1000&cursor=${cursor}`);
    if (!res.ok) throw new Error(`GET /allocations: HTTP ${res.status}: ${await res.text()}`);
    const page = await res.json() as { allocations: AllocationRow[]; next_cursor: string | null };
    all.push(...page.allocations);
    cursor = page.next_cursor;
  }
  return all;
}

/**
 * Waits until the leader has placed and workers have started `count` more allocations than
 * `base`, or `budget_ms` has passed; logs progress every second.
 */
async function waitStarted(
  urls: string[],
  base: { placed: number; started: number },
  count: number,
  budget_ms: number,
  log: (line: string) => void,
): Promise<boolean> {
  const deadline = performance.now() + budget_ms;
  let last_log = 0;
  while (performance.now() < deadline) {
    const p = await progress(urls);
    const placed = p.placed - base.placed;
    const started = p.started - base.started;
    if (placed >= count && started >= count) return true;
    if (performance.now() - last_log > 5 * PROGRESS_EVERY_MS) {
      log(`  placed ${placed}/${count}, started ${started}/${count}`);
      last_log = performance.now();
    }
    await sleep(PROGRESS_EVERY_MS);
  }
  return false;
}

const msOf = (iso: string) => Date.parse(iso);

/** What one throughput run measured. */
export interface ThroughputRun {
  jobs: number;
  placed: number;
  /** Placements over the span of their placed_at (first to last). */
  per_s: number;
  /** Placements between the 10th and the 90th percentile of placed_at over that span. */
  steady_per_s: number;
  /** Seconds the creation of the jobs took (through POST /jobs/batch). */
  create_s: number;
  /** Whether every job was placed and started within the budget. */
  complete: boolean;
  /** Whether the term changed while the backlog was placed (an election mid-run). */
  leader_changed: boolean;
  /** CPU ms per placed allocation: leader, both followers together, simulated workers. */
  cpu_ms_per_placement: { leader: number; followers: number; workers: number };
  /** Due time to start on the worker for this backlog (informative). */
  backlog_latency_ms: { p50: number; p99: number; max: number };
}

/**
 * `jobs` worker jobs all due `lead_ms` after creation starts; waits (at most `budget_ms` after
 * the due time) for their allocations to be placed and started, then reads them.
 */
export async function throughputRun(
  cluster: PlacementCluster,
  jobs: number,
  lead_ms: number,
  budget_ms: number,
  log: (line: string) => void,
): Promise<ThroughputRun> {
  const url = (await cluster.refreshLeader()).url;
  const urls = cluster.nodes.map((n) => n.url);
  const pids = cluster.pids();
  const all_pids = [pids.leader, ...pids.followers, pids.workers];
  const base = await progress(urls);
  const since_ms = Date.now();
  const due_ms = since_ms + lead_ms;
  const cpu_before = await Promise.all(all_pids.map(cpuSeconds));
  await createJobs(cluster, jobs, () => due_ms, log);
  const create_s = (Date.now() - since_ms) / 1_000;
  if (Date.now() > due_ms) log(`  creating ${jobs} jobs took ${create_s} s, past their due time`);
  const term_before = await cluster.term();
  const complete = await waitStarted(urls, base, jobs, due_ms - Date.now() + budget_ms, log);
  const cpu_after = await Promise.all(all_pids.map(cpuSeconds));
  const leader_changed = (await cluster.term()) !== term_before;
  if (leader_changed) log("  the leader changed during the run: CPU shares are by the old roles");
  const rows = await allocationsSince(url, since_ms);
  const placed = rows.map((a) => a.placed_at).filter((t) => t !== null).map(msOf)
    .sort((a, b) => a - b);
  const span_s = (placed[placed.length - 1] - placed[0]) / 1_000;
  const p10 = placed[Math.floor(placed.length * 0.1)];
  const p90 = placed[Math.floor(placed.length * 0.9)];
  const cpu_ms = cpu_after.map((a, i) => (a - cpu_before[i]) * 1_000 / placed.length);
  const latency = rows.filter((a) => a.started_at !== null)
    .map((a) => msOf(a.started_at!) - msOf(a.scheduled_at));
  return {
    jobs,
    placed: placed.length,
    per_s: (placed.length - 1) / span_s,
    steady_per_s: (Math.floor(placed.length * 0.9) - Math.floor(placed.length * 0.1)) /
      ((p90 - p10) / 1_000),
    create_s,
    complete,
    leader_changed,
    cpu_ms_per_placement: {
      leader: cpu_ms[0],
      followers: cpu_ms[1] + cpu_ms[2],
      workers: cpu_ms[3],
    },
    backlog_latency_ms: summarize(latency),
  };
}

/** What one dispatch-latency run measured. */
export interface LatencyRun {
  jobs: number;
  started: number;
  latency_ms: { p50: number; p99: number; max: number };
}

/**
 * `rate_per_s * seconds` worker jobs due one after another at `rate_per_s`, the first `lead_ms`
 * after creation starts; latency is each allocation's started_at minus its scheduled_at. Waits
 * at most `budget_ms` after the last is due; what has not started by then is left out (counted).
 */
export async function latencyRun(
  cluster: PlacementCluster,
  rate_per_s: number,
  seconds: number,
  lead_ms: number,
  budget_ms: number,
  log: (line: string) => void,
): Promise<LatencyRun> {
  const url = (await cluster.refreshLeader()).url;
  const urls = cluster.nodes.map((n) => n.url);
  const jobs = Math.round(rate_per_s * seconds);
  const base = await progress(urls);
  const since_ms = Date.now();
  const first_due_ms = since_ms + lead_ms;
  await createJobs(cluster, jobs, (k) => first_due_ms + k * 1_000 / rate_per_s, log);
  if (Date.now() > first_due_ms) log(`  creating ${jobs} jobs took longer than the lead`);
  await waitStarted(urls, base, jobs, first_due_ms - Date.now() + seconds * 1_000 + budget_ms, log);
  const rows = await allocationsSince(url, since_ms);
  const latency = rows.filter((a) => a.started_at !== null)
    .map((a) => msOf(a.started_at!) - msOf(a.scheduled_at));
  return { jobs, started: latency.length, latency_ms: summarize(latency) };
}
