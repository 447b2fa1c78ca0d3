/**
 * A CPU profile of one node while a measurement runs. Deno 2.9 has no `--cpu-prof`, so the node is
 * started with `--inspect=127.0.0.1:<port>` and profiled through the V8 inspector protocol
 * (`Profiler.start` / `Profiler.stop` over its WebSocket); the profile is written as a
 * `.cpuprofile` (open it in Chrome DevTools) and its top self-time functions are printed.
 *
 * @module
 */

/** The part of a V8 `Profiler.Profile` read here. */
interface CpuProfile {
  nodes: {
    id: number;
    hitCount?: number;
    children?: number[];
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  samples?: number[];
}

/** Functions listed in the summary. */
const TOP_FUNCTIONS = 25;
/** Sampling interval, µs (V8's default). */
const SAMPLING_US = 1_000;

/** A minimal inspector client: sends one method at a time and awaits its answer. */
class Inspector {
  readonly #ws: WebSocket;
  #next_id = 1;
  readonly #waiting = new Map<number, (result: unknown) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.#waiting.get(message.id)?.(message.result);
    };
  }

  static async connect(port: number): Promise<Inspector> {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
      webSocketDebuggerUrl: string;
    }[];
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`the inspector on port ${port} refused the WebSocket`));
    });
    return new Inspector(ws);
  }

  call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next_id++;
    return new Promise<T>((resolve) => {
      this.#waiting.set(id, (result) => resolve(result as T));
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

/**
 * Runs `measure` while profiling the node (started with `--inspect` on `inspector_port`), writes
 * `<dir>/../<name>.cpuprofile` beside the run's temp dir (kept after the run), prints the top
 * self-time functions, and returns what `measure` returned.
 */
export async function leaderProfile<T>(
  node: { name: string; inspector_port: number },
  dir: string,
  measure: () => Promise<T>,
  log: (line: string) => void,
): Promise<T> {
  const inspector = await Inspector.connect(node.inspector_port);
  await inspector.call("Profiler.enable");
  await inspector.call("Profiler.setSamplingInterval", { interval: SAMPLING_US });
  await inspector.call("Profiler.start");
  log(`profiling ${node.name} (the leader) through its inspector`);
  let value: T;
  try {
    value = await measure();
  } finally {
    const { profile } = await inspector.call<{ profile: CpuProfile }>("Profiler.stop");
    inspector.close();
    const path = `${dir}.${node.name}.cpuprofile`;
    await Deno.writeTextFile(path, JSON.stringify(profile));
    console.log(`CPU profile of the leader (${node.name}): ${path}`);
    console.log(topSelf(profile));
    console.log(bySourceCaller(profile));
  }
  return value;
}

function frameKey(f: CpuProfile["nodes"][number]["callFrame"]): string {
  const where = f.url === ""
    ? ""
    : ` ${f.url.replace(/^.*\/(src|node_modules|npm)\//, "$1/")}:${f.lineNumber + 1}`;
  return `${f.functionName || "(anonymous)"}${where}`;
}

/**
 * Samples attributed to the nearest project function (a frame under `src/`) on their stack, so
 * time spent inside libSQL, zod or Hono is charged to the code that called it; samples with no
 * project frame (idle, GC, the runtime) are left out of the table but counted in the total.
 */
export function bySourceCaller(profile: CpuProfile): string {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const charged = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    total += hits;
    if (hits === 0) continue;
    let at: number | undefined = n.id;
    while (at !== undefined && !/\/src\//.test(byId.get(at)!.callFrame.url)) at = parent.get(at);
    if (at === undefined) continue;
    const key = frameKey(byId.get(at)!.callFrame);
    charged.set(key, (charged.get(key) ?? 0) + hits);
  }
  const rows = [...charged.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP_FUNCTIONS);
  return [
    `| nearest src/ function on the stack | share of ${total} samples |`,
    "| --- | --- |",
    ...rows.map(([key, hits]) => `| ${key} | ${(hits / total * 100).toFixed(1)}% |`),
  ].join("\n");
}

/** The top functions by self time, with their share of all samples, as a Markdown table. */
export function topSelf(profile: CpuProfile): string {
  const self = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    total += hits;
    const f = n.callFrame;
    const where = f.url === ""
      ? ""
      : ` ${f.url.replace(/^.*\/(src|node_modules|npm)\//, "$1/")}:${f.lineNumber + 1}`;
    const key = `${f.functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP_FUNCTIONS);
  return [
    `| function (self time) | share of ${total} samples |`,
    "| --- | --- |",
    ...rows.map(([key, hits]) => `| ${key} | ${(hits / total * 100).toFixed(1)}% |`),
  ].join("\n");
}
