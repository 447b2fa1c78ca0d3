/**
 * `tickraft worker …` as a real child process (`deno run src/main.ts worker …`) for the agent's
 * tests: its JSON log lines, signals, and its exit code. Stop it in a `finally` (or with
 * `await using`): {@link WorkerProcess.stop} kills it by pid when it still runs.
 */
const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

/** A running agent. */
export interface WorkerProcess extends AsyncDisposable {
  pid: number;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Its JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Sends `signal` without waiting. */
  signal(signal: Deno.Signal): void;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
  /** SIGKILL when it still runs, then waits for it. */
  stop(): Promise<void>;
}

/** Starts the agent with `args` (after `worker`). */
export function spawnWorker(args: string[], env: Record<string, string> = {}): WorkerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "worker", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let running = true;
  const exited = child.status.then(async (s) => {
    running = false;
    await pumps;
    return s.code;
  });
  const stop = async () => {
    if (running) {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    await exited;
  };
  return {
    pid: child.pid,
    output: () => text,
    logs: () =>
      text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line)),
    signal: (signal) => child.kill(signal),
    exited,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
