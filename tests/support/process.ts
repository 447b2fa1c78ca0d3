/**
 * A scheduler node as a real child process (`deno run src/main.ts`, or `./bun run src/main.ts`),
 * for crash and restart tests: start it on a data dir, wait until it listens, kill it with any
 * signal. Launched by the shared {@link spawnChild} (tests/support/child.ts), which keeps all of
 * its output. The runtime is a parameter, by default `TICKRAFT_RUNTIME` (deno or bun): the test
 * runner stays Deno either way.
 *
 * @module
 */
import { type Child, spawnChild } from "./child.ts";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
const BUN = new URL("../../bun", import.meta.url).pathname;

/** The runtimes a node process can run on. */
export type NodeRuntime = "deno" | "bun";

/** The runtime of node processes: `TICKRAFT_RUNTIME` (`deno` or `bun`), `deno` when unset. */
export function nodeRuntime(): NodeRuntime {
  const wanted = Deno.env.get("TICKRAFT_RUNTIME") ?? "deno";
  if (wanted === "deno" || wanted === "bun") return wanted;
  throw new Error(`TICKRAFT_RUNTIME=${wanted}: use deno or bun`);
}

/** The program and arguments that run the script `entry` on `runtime` with every permission. */
export function runtimeCommand(runtime: NodeRuntime, entry: string): [string, string[]] {
  return runtime === "bun"
    ? [BUN, ["run", entry]]
    : [Deno.execPath(), ["run", "--allow-all", entry]];
}

/** A node running as a child process. */
export interface NodeProcess {
  url: string;
  pid: number;
  /** Sends `signal` and waits for the process to exit; returns its exit code. */
  kill(signal: Deno.Signal): Promise<number>;
  /** Everything the node printed so far (JSON log lines). */
  output(): string;
  /** Resolves with the exit code when the process exits by itself or is killed. */
  readonly exited: Promise<number>;
}

/**
 * Starts `src/main.ts` (or another `entry` script that runs a node) on `runtime` with `args` and
 * `env`; resolves once its "node started" line appears.
 */
export async function spawnNode(
  args: string[],
  env: Record<string, string> = {},
  start_timeout_ms = 30_000,
  entry = MAIN,
  runtime: NodeRuntime = nodeRuntime(),
): Promise<NodeProcess> {
  let announce: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => announce = resolve);
  const [program, run_args] = runtimeCommand(runtime, entry);
  const child: Child = spawnChild("node", program, [
    ...run_args,
    "--host",
    "127.0.0.1",
    "--http-port",
    "0",
    ...args,
  ], {
    env,
    onOutput: () => {
      const match = /"msg":"node started".*?"url":"([^"]+)"/.exec(child.output());
      if (match !== null) announce(match[1]);
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`node did not start within ${start_timeout_ms} ms:\n${child.output()}`)),
      start_timeout_ms,
    );
  });
  const exited = child.exited.then((code) => {
    throw new Error(`node exited with code ${code} before listening:\n${child.output()}`);
  });
  let url: string;
  try {
    url = await Promise.race([listening, timeout, exited]);
  } catch (error) {
    child.signal("SIGKILL");
    await child.exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  exited.catch(() => {});
  const runs_on = /"msg":"node started".*?"runtime":"(\w+)/.exec(child.output())?.[1];
  if (runs_on !== undefined && runs_on !== runtime) {
    child.signal("SIGKILL");
    await child.exited;
    throw new Error(`asked for a node on ${runtime}, it runs on ${runs_on}:\n${child.output()}`);
  }
  let done: Promise<number> | null = null;
  return {
    url,
    pid: child.pid,
    output: child.output,
    exited: child.exited,
    kill(signal: Deno.Signal): Promise<number> {
      if (done === null) {
        child.signal(signal);
        done = child.exited;
      }
      return done;
    },
  };
}
