/**
 * The webhook sink as its own process (tests/support/sink_main.ts), shared by the Tickraft node
 * and BullMQ's worker so both are timed by the same receiver: lateness is the arrival time at the
 * sink minus the `X-Tickraft-Scheduled-At` header. Each system posts to its own path
 * (`/hook/<tag>`), and the sink's JSON-lines file is read incrementally.
 *
 * @module
 */
import { freePort } from "../../tests/support/ports.ts";
import { sleep } from "../../tests/support/wait.ts";
import { type Child, spawnChild, waitFor } from "./proc.ts";
import { summarize } from "./stats.ts";

/** Lateness as measured by the sink. */
export interface LatenessResult {
  expected: number;
  /** Distinct jobs delivered. */
  delivered: number;
  /** Deliveries beyond the first per job. */
  duplicates: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

interface SinkLine {
  path: string;
  headers: Record<string, string>;
  json?: { job_id?: string };
  arrived_at_ms: number;
}

interface Arrival {
  job_id: string;
  lateness_ms: number;
}

const LF = 0x0a;
const POLL_MS = 250;

/** A running sink process and what it has recorded so far. */
export class SinkProcess {
  readonly #arrivals = new Map<string, Arrival[]>();
  #offset = 0;

  private constructor(
    readonly url: string,
    readonly child: Child,
    private readonly out_path: string,
  ) {}

  /** Starts the sink on a free loopback port, appending to `<dir>/hooks.jsonl`. */
  static async start(dir: string): Promise<SinkProcess> {
    const port = freePort();
    const out_path = `${dir}/hooks.jsonl`;
    let listening = false;
    const child = spawnChild("sink", Deno.execPath(), [
      "run",
      "--allow-net",
      "--allow-write",
      "tests/support/sink_main.ts",
      "--port",
      String(port),
      "--out",
      out_path,
    ], { onStderr: (text) => listening ||= text.includes("listening ") });
    await waitFor("sink listening", () => Promise.resolve(listening || undefined), 30_000, child);
    return new SinkProcess(`http://127.0.0.1:${port}`, child, out_path);
  }

  /** The URL a system under test posts to. */
  hookUrl(tag: string): string {
    return `${this.url}/hook/${tag}`;
  }

  /** Waits until `expected` distinct jobs arrived at `/hook/<tag>` or `deadline_ms` (epoch). */
  async lateness(tag: string, expected: number, deadline_ms: number): Promise<LatenessResult> {
    while (this.#distinct(tag) < expected && Date.now() < deadline_ms) {
      await sleep(POLL_MS);
      await this.#read();
    }
    const arrivals = this.#arrivals.get(tag) ?? [];
    const first = new Map<string, number>();
    for (const a of arrivals) if (!first.has(a.job_id)) first.set(a.job_id, a.lateness_ms);
    const { p50, p99, max } = summarize([...first.values()]);
    return {
      expected,
      delivered: first.size,
      duplicates: arrivals.length - first.size,
      p50_ms: p50,
      p99_ms: p99,
      max_ms: max,
    };
  }

  #distinct(tag: string): number {
    return new Set((this.#arrivals.get(tag) ?? []).map((a) => a.job_id)).size;
  }

  /** Parses the complete lines appended since the last read. */
  async #read(): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.out_path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    const end = bytes.lastIndexOf(LF) + 1;
    if (end <= this.#offset) return;
    const text = new TextDecoder().decode(bytes.subarray(this.#offset, end));
    this.#offset = end;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const req = JSON.parse(line) as SinkLine;
      const tag = req.path.replace(/^\/hook\//, "");
      const scheduled_ms = Date.parse(req.headers["x-tickraft-scheduled-at"] ?? "");
      const job_id = req.json?.job_id;
      if (Number.isNaN(scheduled_ms) || job_id === undefined) {
        throw new Error(`sink got a request without a scheduled time or job id: ${line}`);
      }
      const list = this.#arrivals.get(tag) ?? [];
      list.push({ job_id, lateness_ms: req.arrived_at_ms - scheduled_ms });
      this.#arrivals.set(tag, list);
    }
  }
}
