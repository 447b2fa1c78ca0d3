/**
 * The nemesis: one fault at a time, drawn from the run's seed, held for a while and healed,
 * with a quiet gap between faults. Kinds:
 *
 * - `kill`: SIGKILL a node (the leader half of the time) and restart it on its data dir;
 * - `pause`: SIGSTOP a node (the leader half of the time), SIGCONT later;
 * - `partition`: through the proxies: majority/minority, the leader alone, one-way (a node
 *   hears but is not heard, or the reverse), bridge (two halves that only one node joins);
 * - `transfer`: POST /cluster/transfer-leader to another voter;
 * - `member`: DELETE /cluster/members/{id} of a node, kill it, wipe its data dir and restart
 *   it with JOIN_URL (it rejoins as a learner and is promoted); five nodes or more only;
 * - `crash`: SIGKILL every node at the same moment (a power cut, except that the kernel keeps the
 *   page cache: what a node wrote survives, what it only meant to write does not) and restart
 *   them all; nothing acknowledged may be lost. Not in the default set (README, "Fault testing");
 * - `worker-kill`: SIGKILL a worker agent and restart it (it registers again under its id; the
 *   command it was running lives on and finishes, as on a real host);
 * - `worker-pause`: SIGSTOP a worker agent, SIGCONT later (its commands go on running);
 * - `worker-partition`: cut a worker agent off from every node through the proxies (its requests
 *   black-holed); the worker faults are in the default set when the run has workers, and are
 *   skipped with a line in the report when it has none;
 * - `clock`: jump one node's wall clock (the leader half of the time) 5-60 s forward or back
 *   through libfaketime (see nodes.ts), hold it 3-10 s, restore it; skipped, with a line in the
 *   report, when libfaketime is not installed. Not in the default set (README, "Fault testing").
 *
 * The schedule depends on the seed (the nemesis draws from its own stream of it), and on timing
 * (the leader at that moment): a seed replays the same sequence of fault kinds, shapes and
 * durations, not the same interleaving.
 *
 * @module
 */
import { sleep } from "../../tests/support/wait.ts";
import type { NemesisEvent } from "./history.ts";
import { type NodeProcess, writeClockOffset } from "./nodes.ts";
import type { Proxies } from "./proxy.ts";
import type { WorkerAgent } from "./workers.ts";

/** A fault the nemesis injects: the kinds of the history's fault events. */
export type FaultKind = NemesisEvent["kind"];

/** The faults that act on worker agents. */
export const WORKER_FAULTS: readonly FaultKind[] = [
  "worker-kill",
  "worker-pause",
  "worker-partition",
];

/** Every kind `--faults` accepts. */
export const ALL_FAULTS: readonly FaultKind[] = [
  "kill",
  "pause",
  "partition",
  "transfer",
  "member",
  "clock",
  "crash",
  ...WORKER_FAULTS,
];

/**
 * The kinds run when `--faults` is not given: all but `clock` (it needs libfaketime) and `crash`
 * (the whole cluster down at once, run when listed), and the worker faults only when the run has
 * workers.
 */
export function defaultFaults(workers: number): FaultKind[] {
  return ALL_FAULTS.filter((f) =>
    f !== "clock" && f !== "crash" && (workers > 0 || !WORKER_FAULTS.includes(f))
  );
}

/** What the nemesis acts on. */
export interface NemesisContext {
  random: () => number;
  now: () => number;
  nodes: Map<string, NodeProcess>;
  /** The worker agents (empty when the run has none). */
  workers: Map<string, WorkerAgent>;
  proxies: Proxies;
  /** The environment every node starts with. */
  env: Record<string, string>;
  /** The leader as last seen, if any. */
  leader: () => string | null;
  events: NemesisEvent[];
  faults: readonly FaultKind[];
  /** The nemesis stops starting faults at this run time. */
  end_ms: number;
}

function shuffle<T>(random: () => number, items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The leader half of the time (when known), otherwise any node. */
function target(ctx: NemesisContext): string {
  const leader = ctx.leader();
  if (leader !== null && ctx.nodes.has(leader) && ctx.random() < 0.5) return leader;
  const names = [...ctx.nodes.keys()];
  return names[Math.floor(ctx.random() * names.length)];
}

/** Starts a stopped node and waits for it to listen. */
export async function restart(ctx: NemesisContext, name: string): Promise<void> {
  const node = ctx.nodes.get(name)!;
  await node.start(ctx.env);
  await node.ready(30_000);
}

async function post(url: string, method: string, body?: unknown): Promise<Response> {
  return await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
}

/** Blocks every pair between `a` and `b`, both ways unless `one_way`. */
function cut(ctx: NemesisContext, a: string[], b: string[], one_way = false): void {
  for (const x of a) {
    for (const y of b) {
      ctx.proxies.block(x, y);
      if (!one_way) ctx.proxies.block(y, x);
    }
  }
}

/** Applies one partition shape; returns its description. */
function partition(ctx: NemesisContext): { detail: string; nodes: string[] } {
  const names = shuffle(ctx.random, [...ctx.nodes.keys()]);
  const leader = ctx.leader();
  const shapes = ["majority-minority", "isolate-leader", "one-way-deaf", "one-way-mute", "bridge"];
  const shape = shapes[Math.floor(ctx.random() * shapes.length)];
  switch (shape) {
    case "majority-minority": {
      const size = 1 + Math.floor(ctx.random() * Math.floor((names.length - 1) / 2));
      const minority = names.slice(0, size);
      cut(ctx, minority, names.slice(size));
      return { detail: `majority/minority: {${minority}} cut off`, nodes: minority };
    }
    case "isolate-leader": {
      const alone = leader !== null && names.includes(leader) ? leader : names[0];
      cut(ctx, [alone], names.filter((n) => n !== alone));
      return { detail: `leader ${alone} isolated`, nodes: [alone] };
    }
    case "one-way-deaf": {
      const x = names[0];
      cut(ctx, names.slice(1), [x], true);
      return { detail: `one-way: ${x} hears nobody (its messages get out)`, nodes: [x] };
    }
    case "one-way-mute": {
      const x = leader !== null && ctx.random() < 0.5 ? leader : names[0];
      cut(ctx, [x], names.filter((n) => n !== x), true);
      return { detail: `one-way: nobody hears ${x} (it hears them)`, nodes: [x] };
    }
    default: {
      const half = Math.floor((names.length - 1) / 2);
      const a = names.slice(0, half);
      const bridge = names[half];
      const b = names.slice(half + 1);
      cut(ctx, a, b);
      return { detail: `bridge: {${a}} and {${b}} meet only through ${bridge}`, nodes: [bridge] };
    }
  }
}

/** Runs one fault from start to heal and records it. */
async function fault(ctx: NemesisContext, kind: FaultKind): Promise<void> {
  const hold = 1_500 + ctx.random() * 3_500;
  const start_ms = ctx.now();
  const event: NemesisEvent = {
    kind,
    detail: "",
    nodes: [],
    start_ms,
    end_ms: start_ms,
    applied: true,
  };
  try {
    switch (kind) {
      case "kill": {
        const name = target(ctx);
        event.nodes = [name];
        event.detail = `kill -9 ${name}${name === ctx.leader() ? " (leader)" : ""}`;
        await ctx.nodes.get(name)!.signal("SIGKILL");
        await sleep(hold);
        await restart(ctx, name);
        break;
      }
      case "crash": {
        const names = [...ctx.nodes.keys()];
        event.nodes = names;
        event.detail = `kill -9 all of ${names.join(", ")} at once`;
        await Promise.all(names.map((n) => ctx.nodes.get(n)!.signal("SIGKILL")));
        await sleep(hold);
        await Promise.all(names.map((n) => restart(ctx, n)));
        break;
      }
      case "pause": {
        const name = target(ctx);
        event.nodes = [name];
        event.detail = `SIGSTOP ${name}${name === ctx.leader() ? " (leader)" : ""}`;
        await ctx.nodes.get(name)!.signal("SIGSTOP");
        await sleep(hold);
        await ctx.nodes.get(name)!.signal("SIGCONT");
        break;
      }
      case "partition": {
        Object.assign(event, partition(ctx));
        await sleep(hold);
        ctx.proxies.healAll();
        break;
      }
      case "transfer": {
        const leader = ctx.leader();
        const others = [...ctx.nodes.keys()].filter((n) => n !== leader);
        const to = others[Math.floor(ctx.random() * others.length)];
        event.nodes = [to];
        event.detail = `transfer leadership ${leader ?? "?"} → ${to}`;
        const from = ctx.nodes.get(leader ?? to)!;
        const res = await post(`${from.url}/cluster/transfer-leader`, "POST", { to });
        event.applied = res.ok;
        if (!res.ok) event.note = `HTTP ${res.status}: ${(await res.text()).slice(0, 160)}`;
        else await res.body?.cancel();
        break;
      }
      case "worker-kill": {
        const name = pickWorker(ctx);
        event.nodes = [name];
        event.detail = `kill -9 worker ${name}`;
        await ctx.workers.get(name)!.signal("SIGKILL");
        await sleep(hold);
        ctx.workers.get(name)!.start();
        break;
      }
      case "worker-pause": {
        const name = pickWorker(ctx);
        event.nodes = [name];
        event.detail = `SIGSTOP worker ${name}`;
        await ctx.workers.get(name)!.signal("SIGSTOP");
        await sleep(hold);
        await ctx.workers.get(name)!.signal("SIGCONT");
        break;
      }
      case "worker-partition": {
        const name = pickWorker(ctx);
        event.nodes = [name];
        event.detail = `worker ${name} cut off from every node`;
        cut(ctx, [name], [...ctx.nodes.keys()]);
        await sleep(hold);
        ctx.proxies.healAll();
        break;
      }
      case "clock": {
        const name = target(ctx);
        const file = ctx.nodes.get(name)!.spec.clock_file;
        if (file === undefined) throw new Error(`${name} runs without libfaketime`);
        const jump = Math.round(5 + ctx.random() * 55) * (ctx.random() < 0.5 ? -1 : 1);
        const offset = `${jump > 0 ? "+" : ""}${jump}s`;
        event.nodes = [name];
        event.detail = `clock ${offset} on ${name}${name === ctx.leader() ? " (leader)" : ""}`;
        await writeClockOffset(file, offset);
        await sleep(3_000 + ctx.random() * 7_000);
        await writeClockOffset(file, "+0");
        // libfaketime rereads the file at most a second later.
        await sleep(1_100);
        break;
      }
      case "member": {
        const leader = ctx.leader();
        const others = [...ctx.nodes.keys()].filter((n) => n !== leader);
        const name = others[Math.floor(ctx.random() * others.length)];
        const through = ctx.nodes.get(leader ?? others.find((n) => n !== name)!)!;
        event.nodes = [name];
        event.detail = `remove ${name}, rejoin empty through ${through.spec.name}`;
        const res = await post(`${through.url}/cluster/members/${name}`, "DELETE");
        if (!res.ok) {
          event.applied = false;
          event.note = `removal refused: HTTP ${res.status}: ${(await res.text()).slice(0, 160)}`;
          break;
        }
        await res.body?.cancel();
        const node = ctx.nodes.get(name)!;
        await node.signal("SIGKILL");
        await node.wipe();
        await sleep(hold);
        // Kept for later restarts: a removed node must never bootstrap from CLUSTER_NODES.
        node.own_env = { JOIN_URL: through.proxy_url, ADVERTISE_URL: node.proxy_url };
        await restart(ctx, name);
        event.note = await waitForVoter(ctx, through, name);
        break;
      }
    }
  } catch (error) {
    event.applied = false;
    event.note = `${(error as Error).message}`.slice(0, 200);
  } finally {
    event.end_ms = ctx.now();
    ctx.events.push(event);
  }
}

/** A worker agent drawn from the nemesis's stream. */
function pickWorker(ctx: NemesisContext): string {
  const names = [...ctx.workers.keys()];
  if (names.length === 0) throw new Error("the run has no workers");
  return names[Math.floor(ctx.random() * names.length)];
}

/** Waits (bounded) until `name` is a voter again as `through` sees the cluster. */
async function waitForVoter(
  ctx: NemesisContext,
  through: NodeProcess,
  name: string,
): Promise<string> {
  const deadline = ctx.now() + 20_000;
  while (ctx.now() < deadline) {
    try {
      const view = await (await fetch(`${through.url}/debug/cluster`, {
        signal: AbortSignal.timeout(1_000),
      })).json() as { members: { id: string; role: string }[] };
      if (view.members.some((m) => m.id === name && m.role === "voter")) {
        return "rejoined as a voter";
      }
    } catch {
      // retry
    }
    await sleep(250);
  }
  return "not a voter again within 20 s";
}

/** Runs faults until `ctx.end_ms`, then heals everything: every node running and continued. */
export async function runNemesis(ctx: NemesisContext): Promise<void> {
  try {
    while (ctx.now() < ctx.end_ms && ctx.faults.length > 0) {
      await sleep(1_000 + ctx.random() * 2_000);
      if (ctx.now() >= ctx.end_ms) break;
      await fault(ctx, ctx.faults[Math.floor(ctx.random() * ctx.faults.length)]);
    }
  } finally {
    await healAll(ctx);
  }
}

/**
 * Lifts partitions, restores clocks, continues paused nodes and workers, restarts stopped ones.
 */
export async function healAll(ctx: NemesisContext): Promise<void> {
  ctx.proxies.healAll();
  for (const [name, node] of ctx.nodes) {
    if (node.spec.clock_file !== undefined) await writeClockOffset(node.spec.clock_file, "+0");
    if (node.paused) await node.signal("SIGCONT");
    if (!node.running) await restart(ctx, name);
  }
  for (const worker of ctx.workers.values()) {
    if (worker.paused) await worker.signal("SIGCONT");
    if (!worker.running) worker.start();
  }
}
