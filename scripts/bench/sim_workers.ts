/**
 * One process that speaks the worker protocol (docs/workers.md) for many simulated workers, so a
 * cluster sees a fleet of 1,000 without 1,000 agents: each worker registers with a node of its
 * own (worker `i` with node `i mod n`; all with the first with `--all-on-first`), heartbeats every `heartbeat_ms` the node tells it (within
 * `WORKER_TTL`), long-polls that node for its allocations, starts each one and finishes it at once
 * (`ok`, no work done), so the cluster's own costs are what the placement benchmark measures.
 *
 *   deno run -A scripts/bench/sim_workers.ts --urls http://127.0.0.1:8001,… --workers 1000
 *
 * It writes "ready <n>" to stderr once every worker is registered, and on SIGTERM a JSON line
 * of its counts to stdout before it exits.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { JSON_HEADERS } from "./http.ts";

const { values } = parseArgs({
  options: {
    urls: { type: "string" },
    workers: { type: "string", default: "1000" },
    pool: { type: "string", default: "bench" },
    "poll-wait": { type: "string", default: "20s" },
    /** Every worker talks to the first URL (the leader, when the caller puts it first). */
    "all-on-first": { type: "boolean", default: false },
  },
});
if (values.urls === undefined) throw new Error("pass --urls with the nodes' URLs, comma-separated");
const URLS = values.urls.split(",");
const WORKERS = Number(values.workers);
const REGIONS = ["fra", "ams", "iad", "sin"];
/** Pause after a failed call (refused, 5xx) before the worker tries again. */
const RETRY_MS = 200;
/** Allocation ids handled, kept so a poll answered from a lagging state does not start one twice. */
const HANDLED_MAX = 500_000;

/** The fields of an allocation the simulated worker reads. */
interface PolledAllocation {
  id: string;
}

const counts = { registered: 0, heartbeats: 0, polls: 0, started: 0, finished: 0, conflicts: 0 };
const errors = new Map<string, number>();
const handled = new Set<string>();
let running = true;

function noteError(what: string): void {
  errors.set(what, (errors.get(what) ?? 0) + 1);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** POSTs JSON; returns the status (0 when the request failed) and consumes the body. */
async function post(url: string, body: unknown): Promise<number> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify(body),
    });
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

/** A simulated worker: its spec, the node it talks to, and its heartbeat and poll loops. */
class SimWorker {
  readonly id: string;
  readonly #url: string;
  readonly #spec: Record<string, unknown>;
  #heartbeat_ms = 5_000;

  constructor(i: number) {
    this.id = `sim-${String(i).padStart(4, "0")}`;
    this.#url = values["all-on-first"] ? URLS[0] : URLS[i % URLS.length];
    const region = REGIONS[i % REGIONS.length];
    this.#spec = {
      id: this.id,
      pool: values.pool,
      region,
      zone: `${region}-${(i >> 2) % 3 + 1}`,
      labels: { rack: `r${i % 40}`, disk: i % 3 === 0 ? "hdd" : "ssd" },
      // Room for far more than the benchmark holds at once: what is measured is the cluster.
      capacity: { cpu_millis: 1_000_000, memory_mb: 1_000_000, disk_mb: 1_000_000, slots: 10_000 },
    };
  }

  /** Registers (any node: a follower forwards), trying the nodes in turn until one accepts. */
  async register(): Promise<void> {
    for (let turn = 0; running; turn++) {
      const url = URLS[(URLS.indexOf(this.#url) + turn) % URLS.length];
      try {
        const res = await fetch(`${url}/workers`, {
          method: "POST",
          headers: JSON_HEADERS,
          body: JSON.stringify(this.#spec),
        });
        if (res.status === 200 || res.status === 201) {
          const worker = await res.json() as { heartbeat_ms: number };
          this.#heartbeat_ms = worker.heartbeat_ms;
          counts.registered++;
          return;
        }
        await res.body?.cancel();
        noteError(`register ${res.status}`);
      } catch {
        noteError("register refused");
      }
      await sleep(RETRY_MS);
    }
  }

  /** Heartbeats every `heartbeat_ms`, first after a random part of it (spread over the fleet). */
  async heartbeats(): Promise<void> {
    await sleep(Math.random() * this.#heartbeat_ms);
    while (running) {
      const status = await this.#heartbeatOnce();
      if (status === 404) await this.register();
      await sleep(status === 200 ? this.#heartbeat_ms : RETRY_MS);
    }
  }

  /** One heartbeat to its node, then to the others while they refuse (only the leader keeps it). */
  async #heartbeatOnce(): Promise<number> {
    const body = { usage: { cpu_percent: 1, memory_percent: 1, rps: 0, running: [] } };
    let status = 0;
    for (let turn = 0; turn < URLS.length; turn++) {
      const url = URLS[(URLS.indexOf(this.#url) + turn) % URLS.length];
      status = await post(`${url}/workers/${this.id}/heartbeat`, body);
      if (status === 200 || status === 404) break;
    }
    if (status === 200) counts.heartbeats++;
    else noteError(`heartbeat ${status}`);
    return status;
  }

  /** Long-polls its node; starts and finishes every allocation it is given. */
  async polls(): Promise<void> {
    while (running) {
      let found: PolledAllocation[];
      try {
        const res = await fetch(
          `${this.#url}/workers/${this.id}/allocations?wait=${values["poll-wait"]}`,
        );
        if (res.status !== 200) {
          await res.body?.cancel();
          noteError(`poll ${res.status}`);
          await sleep(RETRY_MS);
          continue;
        }
        found = (await res.json() as { allocations: PolledAllocation[] }).allocations;
        counts.polls++;
      } catch {
        noteError("poll refused");
        await sleep(RETRY_MS);
        continue;
      }
      const fresh = found.filter((a) => !handled.has(a.id));
      if (handled.size + fresh.length > HANDLED_MAX) handled.clear();
      for (const a of fresh) handled.add(a.id);
      await Promise.all(fresh.map((a) => this.#run(a.id)));
    }
  }

  async #run(alloc_id: string): Promise<void> {
    const started = performance.now();
    const start = await post(`${this.#url}/allocations/${alloc_id}/start`, { worker_id: this.id });
    if (start === 409) {
      counts.conflicts++;
      return;
    }
    if (start !== 200) {
      noteError(`start ${start}`);
      handled.delete(alloc_id);
      return;
    }
    counts.started++;
    const finish = await post(`${this.#url}/allocations/${alloc_id}/finish`, {
      worker_id: this.id,
      ok: true,
      duration_ms: performance.now() - started,
    });
    if (finish === 200) counts.finished++;
    else if (finish === 409) counts.conflicts++;
    else noteError(`finish ${finish}`);
  }
}

const workers = Array.from({ length: WORKERS }, (_, i) => new SimWorker(i));
const loops: Promise<void>[] = [];
Deno.addSignalListener("SIGTERM", () => {
  running = false;
  console.log(JSON.stringify({ ...counts, errors: Object.fromEntries(errors) }));
  Deno.exit(0);
});

// Register in waves so the cluster's first seconds are not 1,000 requests at once.
const WAVE = 100;
for (let first = 0; first < WORKERS; first += WAVE) {
  await Promise.all(workers.slice(first, first + WAVE).map((w) => w.register()));
}
console.error(`ready ${counts.registered}`);
for (const w of workers) loops.push(w.heartbeats(), w.polls());
await Promise.all(loops);
