/**
 * Child processes of the benchmark: started with piped output that is always drained (a full
 * pipe would stall the child), stopped by their own pid only, with the tail of their output kept
 * for error messages.
 *
 * @module
 */
import { sleep } from "../../tests/support/wait.ts";

/** The repository root (scripts/bench/ is two levels down). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;

const TAIL_BYTES_MAX = 8_192;

/** Children still running, so an interrupted run can stop them (see {@link stopChildrenOnSignal}). */
const running = new Set<Child>();
/** Set once a signal is stopping the run; never settles, since the process exits. */
let stopping: Promise<never> | null = null;

/** A child process started by {@link spawnChild}. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number>;
  /** The last few kilobytes of stdout and stderr, for error messages. */
  tail(): string;
  /** Sends SIGTERM, waits up to `grace_ms`, then SIGKILL; resolves once it has exited. */
  stop(grace_ms?: number): Promise<void>;
}

/** Options of {@link spawnChild}. */
export interface SpawnOptions {
  /** Called with each chunk of stderr text (after it is added to the tail). */
  onStderr?: (text: string) => void;
}

async function drain(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
}

/**
 * Starts `command args` in the repository root with stdin closed and stdout/stderr drained into
 * a bounded tail.
 */
export function spawnChild(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): Child {
  if (stopping !== null) throw new Error(`not starting ${name}: the run is being interrupted`);
  const process = new Deno.Command(command, {
    args,
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const keep = (text: string) => {
    tail = (tail + text).slice(-TAIL_BYTES_MAX);
  };
  const drained = Promise.all([
    drain(process.stdout, keep),
    drain(process.stderr, (text) => {
      keep(text);
      options.onStderr?.(text);
    }),
  ]);
  const exited = process.status.then(async (status) => {
    await drained;
    return status.code;
  });
  let done = false;
  exited.then(() => done = true);
  const stop = async (grace_ms = 10_000) => {
    if (done) return;
    try {
      process.kill("SIGTERM");
    } catch (error) {
      // It exited between the check and the kill (its status is in, the pipes not yet drained).
      if (!(error instanceof TypeError)) throw error;
    }
    const timer = setTimeout(() => {
      if (!done) process.kill("SIGKILL");
    }, grace_ms);
    await exited;
    clearTimeout(timer);
  };
  const child = { name, pid: process.pid, exited, tail: () => tail, stop };
  running.add(child);
  exited.then(() => running.delete(child));
  return child;
}

/**
 * On SIGINT or SIGTERM, stops every child still running (by its pid: SIGTERM, SIGKILL after 5 s),
 * runs `cleanup` (remove temporary files, print what was measured so far), and exits with 128 +
 * the signal number (130, 143): an interrupted benchmark leaves no node, peer or sink behind. A
 * second signal while stopping changes nothing. The run itself sees its children die and fails;
 * it should `await interrupted()` before reporting that failure (see there).
 */
export function stopChildrenOnSignal(cleanup: () => Promise<void>): void {
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    stopping ??= (async () => {
      const pids = [...running].map((child) => `${child.name} ${child.pid}`).join(", ");
      console.error(`${signal}: stopping child processes (${pids || "none running"})`);
      // No child starts once `stopping` is set; one whose start was under way is in `running`.
      while (running.size > 0) await Promise.all([...running].map((child) => child.stop(5_000)));
      try {
        await cleanup();
      } catch (error) {
        console.error(`cleanup after ${signal} failed: ${(error as Error).message}`);
      }
      Deno.exit(128 + (signal === "SIGINT" ? 2 : 15));
    })();
  };
  // Once stopping, the run's pending work fails as its children die; that must not end the
  // process before the children are stopped and the report is printed.
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (stopping !== null) event.preventDefault();
  });
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
}

/**
 * Null while no signal has arrived; afterwards a promise that never settles (the signal handler
 * exits the process). The run awaits it where it would report a failure, so that the failures
 * the stopped children cause are not reported and the handler's report comes out whole.
 */
export function interrupted(): Promise<never> | null {
  return stopping;
}

/**
 * Polls `probe` every `interval_ms` until it returns a value other than undefined; throws after
 * `timeout_ms`, or at once when `child` exits first.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeout_ms: number,
  child: Child,
  interval_ms = 50,
): Promise<T> {
  const deadline = performance.now() + timeout_ms;
  let exited = false;
  child.exited.then(() => exited = true);
  while (performance.now() < deadline) {
    if (exited) throw new Error(`${child.name} exited while waiting for ${what}:\n${child.tail()}`);
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(interval_ms);
  }
  throw new Error(
    `${what}: not reached within ${timeout_ms} ms; ${child.name} said:\n${child.tail()}`,
  );
}
