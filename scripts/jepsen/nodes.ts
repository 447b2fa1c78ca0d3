/**
 * The node processes of a run: `deno run src/main.ts` per node on its own data dir and real
 * port, advertised to the others at its proxy port; stdout and stderr appended to a log file in
 * the run folder. Every process is ended by its pid; a paused one is continued first.
 *
 * With the `clock` fault, every node runs under Debian's libfaketime (LD_PRELOAD) in file mode:
 * the node's offset is read from its own file in the run folder (at most a second old), so the
 * nemesis jumps a running node's wall clock by writing "+30s" or "-20s" there and restores it
 * with "+0". The monotonic clock is left alone (as with an NTP step): timers keep firing.
 *
 * @module
 */

import { sleep } from "../../tests/support/wait.ts";

const SRC = new URL("../../src/", import.meta.url).pathname;

/** A change made to the copied source: the first `from` in `file` becomes `to`. */
export interface SourceEdit {
  file: string;
  from: string;
  to: string;
}

/**
 * Copies this checkout's src/ to `dir`/src (so edits made to the checkout during a run do not
 * reach the nodes it restarts), applies `edit` if given, and returns the copy's main.ts. The copy
 * sits inside the repository, so it resolves imports through the repository's deno.json.
 */
export async function snapshotSource(
  dir: string,
  edit?: SourceEdit | readonly SourceEdit[],
): Promise<string> {
  const copy = async (rel: string) => {
    await Deno.mkdir(`${dir}/src/${rel}`, { recursive: true });
    for await (const entry of Deno.readDir(`${SRC}${rel}`)) {
      if (entry.isDirectory) await copy(`${rel}${entry.name}/`);
      else await Deno.copyFile(`${SRC}${rel}${entry.name}`, `${dir}/src/${rel}${entry.name}`);
    }
  };
  await copy("");
  const edits = edit === undefined ? [] : Array.isArray(edit) ? edit : [edit as SourceEdit];
  for (const e of edits) {
    const path = `${dir}/src/${e.file}`;
    const text = await Deno.readTextFile(path);
    if (!text.includes(e.from)) {
      throw new Error(`${e.file} no longer contains the text the edit changes: ${e.from}`);
    }
    await Deno.writeTextFile(path, text.replace(e.from, () => e.to));
  }
  return `${dir}/src/main.ts`;
}

/** Debian's libfaketime (package `faketime`). */
export const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/** Whether libfaketime is installed (the `clock` fault is skipped otherwise). */
export function faketimeAvailable(): boolean {
  try {
    return Deno.statSync(FAKETIME_LIB).isFile;
  } catch {
    return false;
  }
}

/** Sets a node's wall-clock offset ("+0", "+30s", "-20s"): written aside and renamed in. */
export async function writeClockOffset(file: string, offset: string): Promise<void> {
  await Deno.writeTextFile(`${file}.tmp`, `${offset}\n`);
  await Deno.rename(`${file}.tmp`, file);
}

/** The shared secret of a run's cluster. */
export const RUN_SECRET = "jepsen-run-secret-0123456789";

export interface NodeSpec {
  name: string;
  /** The port the node listens on (clients and the proxy use it). */
  port: number;
  /** The port its proxy listens on (the address other nodes know). */
  proxy_port: number;
  data_dir: string;
  log_file: string;
  /** The entry point to run (a snapshot of src/main.ts). */
  main: string;
  /** The libfaketime offset file, when the node runs with a movable wall clock. */
  clock_file?: string;
}

/** One node and its current process, if any. */
export class NodeProcess {
  readonly spec: NodeSpec;
  #child: Deno.ChildProcess | null = null;
  #paused = false;
  /** Environment this node keeps across restarts (JOIN_URL once it rejoined). */
  own_env: Record<string, string> = {};
  /** Called when the process ends without the harness having signalled it. */
  onUnexpectedExit: ((status: Deno.CommandStatus) => void) | null = null;
  #done: Promise<void> = Promise.resolve();
  /** The harness sent the signal that ends the current process. */
  #stopping = false;

  constructor(spec: NodeSpec) {
    this.spec = spec;
  }

  get url(): string {
    return `http://127.0.0.1:${this.spec.port}`;
  }

  get proxy_url(): string {
    return `http://127.0.0.1:${this.spec.proxy_port}`;
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

  /** Starts the process with `env` (plus its own env, NODE_ID, port, data dir). */
  start(env: Record<string, string>): Promise<void> {
    if (this.#child !== null) throw new Error(`${this.spec.name} is running already`);
    // The shell execs the node with its output appended to the log file: a busy harness never
    // stalls a node on a full stdout pipe, and the pid is the node's own.
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'exec "$0" run --allow-all "$1" >>"$2" 2>&1',
        Deno.execPath(),
        this.spec.main,
        this.spec.log_file,
      ],
      env: {
        ...env,
        ...this.own_env,
        NODE_ID: this.spec.name,
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: String(this.spec.port),
        DATA_DIR: this.spec.data_dir,
        ...(this.spec.clock_file === undefined ? {} : {
          LD_PRELOAD: FAKETIME_LIB,
          FAKETIME_TIMESTAMP_FILE: this.spec.clock_file,
          FAKETIME_CACHE_DURATION: "1",
          FAKETIME_DONT_FAKE_MONOTONIC: "1",
          NO_FAKE_STAT: "1",
        }),
      },
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#stopping = false;
    this.#done = child.status.then((status) => {
      if (this.#stopping || this.#child !== child) return;
      // It died on its own: not running any more (the nemesis's heal restarts it).
      this.#child = null;
      this.#paused = false;
      this.onUnexpectedExit?.(status);
    });
    return Promise.resolve();
  }

  /** Waits until the node answers /health (or throws after `timeout_ms`). */
  async ready(timeout_ms: number): Promise<void> {
    const deadline = Date.now() + timeout_ms;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1_000) });
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${this.spec.name} did not answer /health within ${timeout_ms} ms`);
  }

  /** Sends `signal` (continuing a paused process first unless pausing) and, for a kill, waits. */
  async signal(signal: "SIGKILL" | "SIGTERM" | "SIGSTOP" | "SIGCONT"): Promise<void> {
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
      child.kill(signal);
    } catch {
      // exited already
    }
    await this.#done;
    this.#child = null;
  }

  /** Removes the data dir (for a member that rejoins empty). */
  async wipe(): Promise<void> {
    await Deno.remove(this.spec.data_dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(this.spec.data_dir, { recursive: true });
  }
}
