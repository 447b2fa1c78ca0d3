/**
 * The worker agents of a run: `deno run src/main.ts worker` per worker from the run's snapshot
 * of src/ (like the nodes), with `--server` listing every node's proxy address, so that the
 * nemesis's partitions cut workers off too (the proxy tells a worker's requests by the worker id
 * in their path or body, see proxy.ts). Output is appended to a log file in the run folder; every
 * process is ended by its pid.
 *
 * Each agent runs its allocations with `--exec` of a tiny shell script ({@link EXEC_SCRIPT})
 * that appends a start line to the worker's own runs file, sleeps for the time the job's payload
 * names (drawn from the run's seed when the job was made), and appends an end line:
 * `start|end <allocation id> <idempotency key> <unix ms> <worker>`. The two lines (rather than
 * one at the end) keep the runs that never ended: those the agent stopped when the lease ran out.
 * A `kill -9` of an agent leaves its running command alive (as on a real host, where the work
 * outlives a crashed agent): it finishes and writes its end line.
 *
 * @module
 */
import { sleep } from "../../tests/support/wait.ts";
import type { NodeExit, WorkerRun } from "./history.ts";

/** Capacity every worker agent of a run offers. */
export const WORKER_CAPACITY = { cpu_millis: 1_000, memory_mb: 512, slots: 3 } as const;

/**
 * The command each allocation runs: `sh <script> <runs file> <worker>`, the payload (JSON, with
 * `sleep_ms`) on stdin, `TICKRAFT_ALLOCATION_ID` and `TICKRAFT_IDEMPOTENCY_KEY` in the
 * environment (docs/workers.md).
 */
export const EXEC_SCRIPT = `payload=$(cat)
ms=$(printf '%s' "$payload" | sed -n 's/.*"sleep_ms":\\([0-9]*\\).*/\\1/p')
echo "start $TICKRAFT_ALLOCATION_ID $TICKRAFT_IDEMPOTENCY_KEY $(date +%s%3N) $2" >>"$1"
sleep "$(awk "BEGIN { print \${ms:-500} / 1000 }")"
echo "end $TICKRAFT_ALLOCATION_ID $TICKRAFT_IDEMPOTENCY_KEY $(date +%s%3N) $2" >>"$1"
`;

export interface WorkerSpec {
  /** The worker id it registers with (`--id`). */
  name: string;
  /** The nodes' proxy addresses, in the order this worker tries them. */
  servers: string[];
  /** The entry point to run (the snapshot's src/main.ts). */
  main: string;
  log_file: string;
  /** The file {@link EXEC_SCRIPT} appends this worker's runs to. */
  runs_file: string;
  /** Where {@link EXEC_SCRIPT} is written. */
  script_file: string;
}

/** One worker agent and its current process, if any. */
export class WorkerAgent {
  readonly spec: WorkerSpec;
  #child: Deno.ChildProcess | null = null;
  #paused = false;
  #stopping = false;
  #done: Promise<void> = Promise.resolve();
  /** Called when the agent ends without the harness having signalled it. */
  onUnexpectedExit: ((status: Deno.CommandStatus) => void) | null = null;

  constructor(spec: WorkerSpec) {
    this.spec = spec;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Starts the agent (it registers again under the same id after a kill). */
  start(): void {
    if (this.#child !== null) throw new Error(`${this.spec.name} is running already`);
    const s = this.spec;
    // As with the nodes: the shell execs the agent with its output appended to the log file, so
    // the pid is the agent's own and a busy harness never stalls it on a full pipe.
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'log="$1"; shift; exec "$0" run --allow-all "$@" >>"$log" 2>&1',
        Deno.execPath(),
        s.log_file,
        s.main,
        "worker",
        "--server",
        s.servers.join(","),
        "--id",
        s.name,
        "--cpu",
        String(WORKER_CAPACITY.cpu_millis),
        "--memory",
        String(WORKER_CAPACITY.memory_mb),
        "--slots",
        String(WORKER_CAPACITY.slots),
        "--exec",
        `sh ${s.script_file} ${s.runs_file} ${s.name}`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#stopping = false;
    this.#done = child.status.then((status) => {
      if (this.#stopping || this.#child !== child) return;
      this.#child = null;
      this.#paused = false;
      this.onUnexpectedExit?.(status);
    });
  }

  /** Sends `signal` (continuing a paused agent first unless pausing) and, for a kill, waits. */
  async signal(signal: "SIGKILL" | "SIGSTOP" | "SIGCONT"): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    if (signal === "SIGSTOP") {
      child.kill("SIGSTOP");
      this.#paused = true;
      return;
    }
    if (this.#paused) {
      child.kill("SIGCONT");
      this.#paused = false;
    }
    if (signal === "SIGCONT") return;
    this.#stopping = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await this.#done;
    this.#child = null;
  }

  /**
   * At the end of the run: SIGKILL the agent and the commands it runs (their pids from /proc),
   * so that nothing the run started outlives it.
   */
  async stopAll(): Promise<void> {
    const pid = this.pid;
    const tree = pid === null ? [] : await descendants(pid);
    await this.signal("SIGKILL");
    for (const p of tree) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch {
        // ended meanwhile
      }
    }
  }
}

/** The pids below `pid` (children first), read from /proc; empty where /proc is not there. */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  for (let i = 0; i < queue.length && i < 1_000; i++) {
    let children: number[] = [];
    try {
      const text = await Deno.readTextFile(`/proc/${queue[i]}/task/${queue[i]}/children`);
      children = text.trim().split(/\s+/).filter((t) => t !== "").map(Number);
    } catch {
      // gone, or no /proc
    }
    out.push(...children);
    queue.push(...children);
  }
  return out;
}

/** Writes the exec script and starts every agent. */
export async function startWorkers(agents: Iterable<WorkerAgent>): Promise<void> {
  for (const agent of agents) {
    await Deno.writeTextFile(agent.spec.script_file, EXEC_SCRIPT);
    agent.start();
  }
}

/** Waits until `url`'s `GET /workers` shows every one of `names` ready (bounded). */
export async function workersReady(
  url: string,
  names: string[],
  timeout_ms: number,
): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  let seen = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/workers`, { signal: AbortSignal.timeout(2_000) });
      const body = await res.json() as { workers: { id: string; status: string }[] };
      const ready = new Set(body.workers.filter((w) => w.status === "ready").map((w) => w.id));
      seen = [...ready].join(", ");
      if (names.every((n) => ready.has(n))) return;
    } catch {
      // no answer yet
    }
    await sleep(250);
  }
  throw new Error(
    `the worker agents ${names.join(", ")} were not all ready within ${timeout_ms} ms (ready: ${
      seen || "none"
    }); see the w*.log files`,
  );
}

/**
 * Reads a worker's runs file: each start line with its end line (matched by allocation id), in
 * run time (ms since `started_at`). Lines that do not parse are skipped.
 */
export async function readRuns(
  file: string,
  worker: string,
  started_at: number,
): Promise<WorkerRun[]> {
  const text = await Deno.readTextFile(file).catch(() => "");
  const runs: WorkerRun[] = [];
  // An allocation started twice on one worker (an agent restarted before its start was applied)
  // is two runs: an end line closes the latest open one.
  const open = new Map<string, WorkerRun>();
  for (const line of text.split("\n")) {
    const [what, allocation_id, idempotency_key, unix_ms] = line.trim().split(" ");
    const at = Number(unix_ms) - started_at;
    if (allocation_id === undefined || unix_ms === undefined || !Number.isFinite(at)) continue;
    if (what === "start") {
      const run = { worker, allocation_id, idempotency_key, start_ms: at, end_ms: null };
      runs.push(run);
      open.set(allocation_id, run);
    } else if (what === "end") {
      const run = open.get(allocation_id);
      if (run !== undefined) run.end_ms = at;
      open.delete(allocation_id);
    }
  }
  return runs;
}

/** A handler that records an agent's own exit in `exits`, at `now()`. */
export function recordExit(exits: NodeExit[], name: string, now: () => number) {
  return (status: Deno.CommandStatus) =>
    exits.push({
      node: name,
      at_ms: now(),
      code: status.signal === null ? status.code : null,
      signal: status.signal,
    });
}
