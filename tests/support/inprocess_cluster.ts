/**
 * Three cluster nodes in this process: real libSQL files in temp dirs, real HTTP and Raft
 * traffic on loopback. Faster to start than child processes; for crash tests use
 * `tests/support/process_cluster.ts`, which runs each node as its own process.
 */
import assert from "node:assert/strict";
import { type Config, defaultConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { freePorts } from "./ports.ts";
import { sleep } from "./wait.ts";

/** The cluster secret the in-process nodes share. */
export const INPROCESS_SECRET = "inprocess-test-secret-0123456789";

/**
 * Starts nodes `<prefix>-1..3`, waits until they agree on a leader, runs `fn`, and stops the
 * nodes and removes their dirs however `fn` ends.
 */
export async function withInProcessCluster(
  prefix: string,
  fn: (nodes: Map<string, RunningNode>, leader: string) => Promise<void>,
  overrides: Partial<Config> = {},
): Promise<void> {
  const names = [1, 2, 3].map((i) => `${prefix}-${i}`);
  const ports = freePorts(names.length);
  const peers = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]}`).join(",");
  const dirs: string[] = [];
  const nodes = new Map<string, RunningNode>();
  try {
    for (const [i, name] of names.entries()) {
      const dir = await Deno.makeTempDir({ prefix: `tickraft-${name}-` });
      dirs.push(dir);
      nodes.set(
        name,
        await startNode(
          defaultConfig({
            node_id: name,
            host: "127.0.0.1",
            http_port: ports[i],
            data_dir: dir,
            peers,
            cluster_secret: INPROCESS_SECRET,
            raft_tick_ms: 50,
            ...overrides,
          }),
          { logger: silentLogger },
        ),
      );
    }
    const deadline = Date.now() + 15_000;
    let leader: string | null = null;
    while (leader === null && Date.now() < deadline) {
      const views = await Promise.all(
        [...nodes.values()].map(async (n) =>
          (await (await fetch(`${n.url}/health`)).json()).leader
        ),
      );
      if (views[0] !== null && views.every((v) => v === views[0])) leader = views[0];
      else await sleep(50);
    }
    assert.ok(leader !== null, "a leader is elected");
    await fn(nodes, leader);
  } finally {
    for (const node of nodes.values()) await node.stop(0);
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
}
