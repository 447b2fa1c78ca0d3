/**
 * Child processes that tests, benchmarks and their harnesses start: stdin closed, stdout and
 * stderr always drained (a full pipe would stall the child) into the output kept for error
 * messages and log checks, signalled and stopped by their own pid only. The one home of process
 * launching for `tests/` and `scripts/`: `tests/support/process.ts` builds a node on it, and the
 * benchmarks' `scripts/bench/proc.ts` adds stopping every child on Ctrl-C.
 *
 * @example
 * ```ts
 * const child = spawnChild("sink", Deno.execPath(), ["run", "-A", "tests/support/sink_main.ts"]);
 * try {
 *   // ...
 * } finally {
 *   await child.stop();
 * }
 * ```
 *
 * @module
 */

/** A child process started by {@link spawnChild}. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code once the process has exited and its output is drained. */
  readonly exited: Promise<number>;
  /** What it printed on stdout and stderr so far (the last part, when the options bound it). */
  output(): string;
  /** Sends `signal`, unless the process has exited already. */
  signal(signal: Deno.Signal): void;
  /** Sends SIGTERM, waits up to `grace_ms`, then SIGKILL; resolves once it has exited. */
  stop(grace_ms?: number): Promise<void>;
}

/** Options of {@link spawnChild}. */
export interface ChildOptions {
  /** Working directory (default: this process's). */
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Keep only the last this many characters of output (default: all of it). */
  output_chars_max?: number;
  /** Called with each chunk of output text, after it is added to `output()`. */
  onOutput?: (text: string, stream: "stdout" | "stderr") => void;
}

/** Grace between SIGTERM and SIGKILL in {@link Child.stop}. */
const STOP_GRACE_MS = 10_000;

async function drain(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
}

/** Starts `command args` with stdin closed and its output drained into `output()`. */
export function spawnChild(
  name: string,
  command: string,
  args: string[],
  options: ChildOptions = {},
): Child {
  const process = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chars_max = options.output_chars_max ?? Infinity;
  let output = "";
  const keep = (stream: "stdout" | "stderr") => (text: string) => {
    output = output + text;
    if (output.length > chars_max) output = output.slice(-chars_max);
    options.onOutput?.(text, stream);
  };
  const drained = Promise.all([
    drain(process.stdout, keep("stdout")),
    drain(process.stderr, keep("stderr")),
  ]);
  const exited = process.status.then(async (status) => {
    await drained;
    return status.code;
  });
  let done = false;
  exited.then(() => done = true);
  const signal = (sig: Deno.Signal) => {
    if (done) return;
    try {
      process.kill(sig);
    } catch (error) {
      // It exited between the check and the kill (its status is in, the pipes not yet drained).
      if (!(error instanceof TypeError)) throw error;
    }
  };
  const stop = async (grace_ms = STOP_GRACE_MS) => {
    if (done) return;
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), grace_ms);
    await exited;
    clearTimeout(timer);
  };
  return { name, pid: process.pid, exited, output: () => output, signal, stop };
}
