/**
 * Child processes of the benchmark: started in the repository root on the shared launcher
 * (tests/support/child.ts) with the tail of their output kept for error messages, and all of
 * them stopped by their own pid when Ctrl-C or SIGTERM ends the run.
 *
 * @module
 */
import { type Child, spawnChild as spawnProcess } from "../../tests/support/child.ts";
import { sleep } from "../../tests/support/wait.ts";

export type { Child };

/** The repository root (scripts/bench/ is two levels down). */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname;

const TAIL_CHARS_MAX = 8_192;

/** Children still running, so an interrupted run can stop them (see {@link stopChildrenOnSignal}). */
const running = new Set<Child>();
/** Set once a signal is stopping the run; never settles, since the process exits. */
let stopping: Promise<never> | null = null;

/** Options of {@link spawnChild}. */
export interface SpawnOptions {
  /** Called with each chunk of stderr text (after it is added to the tail). */
  onStderr?: (text: string) => void;
}

/**
 * Starts `command args` in the repository root with stdin closed and stdout/stderr drained into
 * a bounded tail (`output()`); refused once a signal is stopping the run.
 */
export function spawnChild(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): Child {
  if (stopping !== null) throw new Error(`not starting ${name}: the run is being interrupted`);
  const child = spawnProcess(name, command, args, {
    cwd: REPO_ROOT,
    output_chars_max: TAIL_CHARS_MAX,
    onOutput: (text, stream) => {
      if (stream === "stderr") options.onStderr?.(text);
    },
  });
  running.add(child);
  child.exited.then(() => running.delete(child));
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
    if (exited) {
      throw new Error(`${child.name} exited while waiting for ${what}:\n${child.output()}`);
    }
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(interval_ms);
  }
  throw new Error(
    `${what}: not reached within ${timeout_ms} ms; ${child.name} said:\n${child.output()}`,
  );
}
