/**
 * A 3-node Tickraft cluster on loopback as real child processes (`deno run -A src/main.ts`),
 * each node on a free port and a data directory of its own, with default Raft timeouts and fsync
 * on: what `deno task cluster` starts, driven over HTTP by the cluster benchmark.
 *
 * @module
 */
import { freePort } from "../../tests/support/ports.ts";
import { sleep } from "../../tests/support/wait.ts";
import { expectStatus, JSON_HEADERS, postEach, tryJson } from "./http.ts";
import { batchedLoop, type LoadResult } from "./load.ts";
import { type Child, spawnChild, waitFor } from "./proc.ts";

/** Size of one job's JSON body, bytes (the etcd peer puts values of the same size). */
export const JOB_BODY_BYTES = 200;
/** Longest wait for a node to answer or for the nodes to agree on a leader. */
const START_TIMEOUT_MS = 60_000;

/** One node of the cluster; `child` is replaced when the node is restarted. */
export interface ClusterNode {
  name: string;
  url: string;
  port: number;
  data_dir: string;
  child: Child;
}

/** What `GET /debug/cluster` answers (the fields the benchmark reads). */
interface ClusterView {
  role: string;
  leader: string | null;
  term: number;
  commit_index: number;
  applied_index: number;
}

/** A running cluster of three nodes. */
export class TickraftCluster {
  private constructor(
    readonly nodes: ClusterNode[],
    private readonly args: (node: ClusterNode) => string[],
  ) {}

  /** Starts node-1..3 with data under `dir` and waits until they agree on a leader. */
  static async start(dir: string): Promise<TickraftCluster> {
    const secret = crypto.randomUUID();
    const nodes = ["node-1", "node-2", "node-3"].map((name) => {
      const port = freePort();
      return { name, port, url: `http://127.0.0.1:${port}`, data_dir: `${dir}/${name}` };
    });
    const peers = nodes.map((n) => `${n.name}=${n.url}`).join(",");
    const args = (node: Omit<ClusterNode, "child">) => [
      "run",
      "-A",
      "src/main.ts",
      "--node-id",
      node.name,
      "--host",
      "127.0.0.1",
      "--http-port",
      String(node.port),
      "--data-dir",
      node.data_dir,
      "--peers",
      peers,
      "--cluster-secret",
      secret,
      "--log-level",
      "error",
      "--queue-job-limit",
      "2000000",
    ];
    const started = nodes.map((n) => ({
      ...n,
      child: spawnChild(n.name, Deno.execPath(), args(n)),
    }));
    const cluster = new TickraftCluster(started, args);
    try {
      await cluster.agreedLeader(started);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The leader every node of `live` names, in one term; polls until they agree. */
  agreedLeader(live: ClusterNode[], interval_ms = 50): Promise<ClusterNode> {
    return waitFor(
      "a leader all live nodes agree on",
      async () => {
        const views = await Promise.all(live.map((n) => tryView(n.url)));
        const first = views[0];
        if (first === undefined || first.leader === null) return undefined;
        const agreed = views.every((v) => v?.leader === first.leader && v.term === first.term);
        const leader = live.find((n) => n.name === first.leader);
        return agreed ? leader : undefined;
      },
      START_TIMEOUT_MS,
      live[0].child,
      interval_ms,
    );
  }

  /** `kill -9` of a node; resolves once it has exited. */
  async kill(node: ClusterNode): Promise<void> {
    Deno.kill(node.child.pid, "SIGKILL");
    await node.child.exited;
  }

  /**
   * Starts a killed node again on its data dir and port, and waits until it has applied what
   * the leader had committed when it came back (it has caught up).
   */
  async restart(node: ClusterNode, leader: ClusterNode): Promise<void> {
    node.child = spawnChild(node.name, Deno.execPath(), this.args(node));
    await waitFor(
      "the restarted node to answer",
      () => tryView(node.url),
      START_TIMEOUT_MS,
      node.child,
    );
    const target = (await view(leader.url)).commit_index;
    await waitFor(
      "the restarted node to catch up",
      async () => {
        const v = await tryView(node.url);
        return v !== undefined && v.applied_index >= target ? true : undefined;
      },
      START_TIMEOUT_MS,
      node.child,
    );
  }

  /** Stops every node that still runs (SIGTERM, then SIGKILL after the grace period). */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.child.stop()));
  }
}

function tryView(url: string): Promise<ClusterView | undefined> {
  return tryJson<ClusterView>(`${url}/debug/cluster`);
}

async function view(url: string): Promise<ClusterView> {
  const v = await tryView(url);
  if (v === undefined) throw new Error(`${url}/debug/cluster did not answer`);
  return v;
}

/** The JSON of `build(pad)` with `pad` a run of "x" that makes it exactly `bytes` long. */
export function paddedJson(bytes: number, build: (pad: string) => unknown): string {
  const bare = JSON.stringify(build(""));
  if (bare.length > bytes) throw new Error(`${bare} is longer than ${bytes} bytes`);
  return JSON.stringify(build("x".repeat(bytes - bare.length)));
}

/**
 * Job `i`'s JSON as the API takes it: a yearly cron job whose window starts in 2099 (it never
 * fires during the benchmark), without a webhook, {@link JOB_BODY_BYTES} bytes.
 */
export function farCronJob(i: number): string {
  return paddedJson(JOB_BODY_BYTES, (pad) => ({
    type: "cron",
    cron_expression: "0 0 1 1 *",
    starts_at: "2099-01-01T00:00:00Z",
    name: `bench-${String(i).padStart(9, "0")}`,
    payload: { pad },
  }));
}

/** `total` creates (`POST /jobs` of {@link farCronJob}) to `url` with `clients` in flight. */
export function clusterCreates(url: string, clients: number, total: number): Promise<LoadResult> {
  const bodies = Array.from({ length: total }, (_, i) => farCronJob(i));
  return postEach(url, "/jobs", clients, bodies, 201);
}

/** `jobs` creates through `POST /jobs/batch` of `batch_size`, `clients` requests in flight. */
export function clusterBatchCreates(
  url: string,
  clients: number,
  jobs: number,
  batch_size: number,
): Promise<LoadResult> {
  return batchedLoop(clients, jobs, batch_size, async (first, size) => {
    const bodies = Array.from({ length: size }, (_, j) => farCronJob(first + j));
    const body = `{"jobs":[${bodies.join(",")}]}`;
    const res = await fetch(`${url}/jobs/batch`, { method: "POST", headers: JSON_HEADERS, body });
    await expectStatus(res, "POST /jobs/batch", 201);
    return size;
  });
}

/** Counters of a node's /metrics the benchmark reports per run. */
export interface RaftCounts {
  /** Apply rounds (each: one fsync of the Raft log, one transaction of the state). */
  rounds: number;
  /** Log entries committed in those rounds (an entry holds every proposal of a group commit). */
  entries: number;
  jobs_created: number;
}

/** Reads {@link RaftCounts} from `GET /metrics` of the node at `url`. */
export async function raftCounts(url: string): Promise<RaftCounts> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    rounds: value("tickraft_log_commit_commands_count"),
    entries: value("tickraft_log_commit_commands_sum"),
    jobs_created: value("tickraft_jobs_created_total"),
  };
}

/** One acknowledged write of the {@link Writer}: when it was sent and answered, epoch ms. */
export interface Ack {
  sent_ms: number;
  acked_ms: number;
}

/**
 * The light load of the failover measurement: one client creating jobs in a loop, one request
 * at a time, to the nodes in turn; after any error (refused connection, 503, timeout) it moves
 * to the next node after `retry_ms`.
 */
export class Writer {
  readonly acks: Ack[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(urls: string[], retry_ms = 10, timeout_ms = 2_000) {
    this.#done = this.#loop(urls, retry_ms, timeout_ms);
  }

  async #loop(urls: string[], retry_ms: number, timeout_ms: number): Promise<void> {
    let turn = 0;
    for (let i = 0; this.#running; i++) {
      const url = urls[turn % urls.length];
      const sent_ms = Date.now();
      try {
        const res = await fetch(`${url}/jobs`, {
          method: "POST",
          headers: JSON_HEADERS,
          body: farCronJob(i),
          signal: AbortSignal.timeout(timeout_ms),
        });
        await res.body?.cancel();
        if (res.status === 201) {
          this.acks.push({ sent_ms, acked_ms: Date.now() });
          continue;
        }
      } catch {
        // a dead node or a timeout: try the next one
      }
      turn++;
      await sleep(retry_ms);
    }
  }

  /** The first write sent at or after `since_ms` that was acknowledged. */
  firstAckSince(since_ms: number): Ack | undefined {
    return this.acks.find((a) => a.sent_ms >= since_ms);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}
