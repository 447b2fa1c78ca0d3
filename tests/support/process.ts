/**
 * A scheduler node as a real child process (`deno run src/main.ts`), for crash and restart
 * tests: start it on a data dir, wait until it listens, kill it with any signal.
 */

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

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
 * Starts `src/main.ts` (or another `entry` script that runs a node) with `args` and `env`;
 * resolves once its "node started" line appears.
 */
export async function spawnNode(
  args: string[],
  env: Record<string, string> = {},
  start_timeout_ms = 30_000,
  entry = MAIN,
): Promise<NodeProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", entry, "--host", "127.0.0.1", "--http-port", "0", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  let announce: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => announce = resolve);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const match = /"msg":"node started".*?"url":"([^"]+)"/.exec(text);
      if (match !== null) announce(match[1]);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`node did not start within ${start_timeout_ms} ms:\n${text}`)),
      start_timeout_ms,
    );
  });
  const exited = child.status.then((s) => {
    throw new Error(`node exited with code ${s.code} before listening:\n${text}`);
  });
  let url: string;
  try {
    url = await Promise.race([listening, timeout, exited]);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await pumps;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  exited.catch(() => {});
  let done: Promise<number> | null = null;
  const exitCode = child.status.then(async (s) => {
    await pumps;
    return s.code;
  });
  return {
    url,
    pid: child.pid,
    output: () => text,
    exited: exitCode,
    kill(signal: Deno.Signal): Promise<number> {
      if (done === null) {
        try {
          child.kill(signal);
        } catch {
          // already exited; its status still resolves
        }
        done = exitCode;
      }
      return done;
    },
  };
}
