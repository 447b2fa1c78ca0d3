/**
 * A Raft cluster of real node processes on loopback for integration tests: start N nodes from
 * one `CLUSTER_NODES` list, restart or add members on their own data dirs, wait for a leader all
 * live nodes agree on, and stop everything (SIGKILL by pid) and remove the data dirs.
 *
 * @example
 * ```ts
 * const cluster = await startCluster({ env: { SNAPSHOT_ENTRIES: "20" } });
 * try {
 *   const leader = await agreedLeader(cluster, cluster.names);
 * } finally {
 *   await stopCluster(cluster);
 * }
 * ```
 *
 * @module
 */
import type { ClusterView } from "../../src/http/schemas.ts";
import { freePort, freePorts } from "./ports.ts";
import { type NodeProcess, type NodeRuntime, nodeRuntime, spawnNode } from "./process.ts";
import { eventually } from "./wait.ts";

/** The `CLUSTER_SECRET` every test node shares. */
export const CLUSTER_SECRET = "cluster-test-secret-0123456789";

/** Nodes of one test cluster. */
export interface Cluster {
  /** The nodes started by `startCluster`, in order (`node-1`, …). */
  names: string[];
  /** Running (or killed) processes by node name; `startMember` replaces an entry. */
  nodes: Map<string, NodeProcess>;
  /** Base URL of each node by name. */
  urls: Map<string, string>;
  /** Data dir of each node by name (kept across restarts, removed by `stopCluster`). */
  dirs: Map<string, string>;
  /** Environment every node of the cluster gets (secret, tick, the caller's extras). */
  env: Record<string, string>;
  /** The initial members as `CLUSTER_NODES`. */
  peers: string;
  /** The script each node runs (src/main.ts unless the options name another). */
  entry?: string;
  /** The runtime every node runs on (`TICKRAFT_RUNTIME` unless the options name one). */
  runtime: NodeRuntime;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Number of nodes (default 3). */
  size?: number;
  /** Extra environment for every node, e.g. `SNAPSHOT_ENTRIES`. */
  env?: Record<string, string>;
  /** The script each node runs instead of src/main.ts (tests/support/faulty_node.ts). */
  entry?: string;
  /** The runtime of every node (default `TICKRAFT_RUNTIME`, or deno; tests/support/process.ts). */
  runtime?: NodeRuntime;
}

/** Fetches `url` and parses the JSON answer. */
export async function json<T>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: T;
  try {
    body = JSON.parse(text) as T;
  } catch {
    throw new Error(`${init?.method ?? "GET"} ${url}: ${response.status}, not JSON: ${text}`);
  }
  return { status: response.status, body, headers: response.headers };
}

/** A JSON POST request. */
export const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

/** Starts `size` nodes (`node-1`, …) that list each other in `CLUSTER_NODES`. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const size = options.size ?? 3;
  const names = Array.from({ length: size }, (_, i) => `node-${i + 1}`);
  const ports = freePorts(size);
  const urls = new Map(names.map((name, i) => [name, `http://127.0.0.1:${ports[i]}`]));
  const peers = names.map((name) => `${name}=${urls.get(name)}`).join(",");
  const cluster: Cluster = {
    names,
    nodes: new Map(),
    urls,
    dirs: new Map(),
    env: { CLUSTER_SECRET, RAFT_TICK: "50ms", ...options.env },
    peers,
    entry: options.entry,
    runtime: options.runtime ?? nodeRuntime(),
  };
  try {
    await Promise.all(names.map((name) => startMember(cluster, name)));
  } catch (error) {
    await stopCluster(cluster);
    throw error;
  }
  return cluster;
}

/**
 * Starts (or restarts, on the same data dir and port) node `name`. A name new to the cluster
 * gets a fresh dir and port; `env` adds to (or overrides) the cluster's environment, and a node
 * started by `startCluster` gets `CLUSTER_NODES` unless `env` says otherwise.
 */
export async function startMember(
  cluster: Cluster,
  name: string,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  let dir = cluster.dirs.get(name);
  if (dir === undefined) {
    dir = await Deno.makeTempDir({ prefix: `tickraft-${name}-` });
    cluster.dirs.set(name, dir);
  }
  const port = new URL(memberUrl(cluster, name)).port;
  const initial: Record<string, string> = cluster.names.includes(name)
    ? { CLUSTER_NODES: cluster.peers }
    : {};
  const node = await spawnNode(
    ["--data-dir", dir, "--http-port", port],
    { ...cluster.env, NODE_ID: name, ...initial, ...env },
    undefined,
    cluster.entry,
    cluster.runtime,
  );
  cluster.nodes.set(name, node);
  return node;
}

/** The URL of node `name`; a name new to the cluster gets a free port (before it starts). */
export function memberUrl(cluster: Cluster, name: string): string {
  let url = cluster.urls.get(name);
  if (url === undefined) {
    url = `http://127.0.0.1:${freePort()}`;
    cluster.urls.set(name, url);
  }
  return url;
}

/** SIGKILLs every node of the cluster and removes their data dirs. */
export async function stopCluster(cluster: Cluster): Promise<void> {
  await Promise.all([...cluster.nodes.values()].map((n) => n.kill("SIGKILL")));
  for (const dir of cluster.dirs.values()) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** `GET /debug/cluster` of node `name`. */
export async function clusterView(cluster: Cluster, name: string): Promise<ClusterView> {
  const { status, body } = await json<ClusterView>(`${cluster.urls.get(name)}/debug/cluster`);
  if (status !== 200) throw new Error(`/debug/cluster on ${name}: ${status}`);
  return body;
}

/** The leader all `live` nodes agree on (same leader, same term). */
export function agreedLeader(
  cluster: Cluster,
  live: string[],
  timeout_ms = 20_000,
): Promise<string> {
  return eventually(`a leader all of ${live.join(", ")} agree on`, async () => {
    const views = await Promise.all(live.map((name) => clusterView(cluster, name)));
    const leader = views[0].leader;
    if (leader === null || !live.includes(leader)) return undefined;
    return views.every((v) => v.leader === leader && v.term === views[0].term) ? leader : undefined;
  }, timeout_ms);
}

/** The JSON log lines of `node` whose `msg` is `msg`, parsed. */
export function logLines(node: NodeProcess, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of node.output().split("\n")) {
    if (!line.includes(`"msg":${JSON.stringify(msg)}`)) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a line cut short by a kill
    }
  }
  return out;
}

/** Every job id `GET /jobs` lists on `url` (all pages); `query` e.g. `consistency=linearizable`. */
export async function listJobIds(url: string, query = ""): Promise<Set<string>> {
  const ids = new Set<string>();
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams(query);
    params.set("limit", "1000");
    if (cursor !== null) params.set("cursor", cursor);
    const { status, body } = await json<{ jobs: { id: string }[]; next_cursor: string | null }>(
      `${url}/jobs?${params}`,
    );
    if (status !== 200) throw new Error(`GET ${url}/jobs: ${status} ${JSON.stringify(body)}`);
    for (const job of body.jobs) ids.add(job.id);
    cursor = body.next_cursor ?? null;
  } while (cursor !== null);
  return ids;
}

/** Every node's `/debug/cluster` (or why it failed) and the last lines of its output. */
export async function describeCluster(cluster: Cluster, tail_lines = 15): Promise<string> {
  const parts: string[] = [];
  for (const [name, node] of cluster.nodes) {
    let view: string;
    try {
      const v = await clusterView(cluster, name);
      view = JSON.stringify({ ...v, transport: undefined });
    } catch (error) {
      view = `unavailable (${(error as Error).message})`;
    }
    const lines = node.output().trimEnd().split("\n").slice(-tail_lines).join("\n  ");
    parts.push(`--- ${name} (pid ${node.pid}): ${view}\n  ${lines}`);
  }
  return parts.join("\n");
}
