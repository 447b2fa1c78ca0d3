/**
 * The peer users would otherwise pick: BullMQ on a private redis-server (Debian's package) with
 * `appendonly yes` and `appendfsync always`, so an acknowledged add is on disk as it is with
 * Tickraft. The BullMQ clients (producers and the worker) run in the benchmark process, as they
 * would in a user's application.
 *
 * @module
 */
import { type Job, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { freePort } from "../../tests/support/ports.ts";
import { sleep } from "../../tests/support/wait.ts";
import { procMemory } from "./host.ts";
import { type DebianTool, ensureDebianPackage, toolVersion } from "./install.ts";
import { batchedLoop, closedLoop, type LoadResult } from "./load.ts";
import { type Child, spawnChild, waitFor } from "./proc.ts";
import type { LatenessResult, SinkProcess } from "./sink.ts";
import { summarize } from "./stats.ts";

const REDIS_SERVER: DebianTool = {
  command: "redis-server",
  package_name: "redis-server",
  version_pattern: /v=(\S+)/,
  install_hint: "install it with `apt-get install -y redis-server` (as root), or pass --skip-peer",
};

/** redis-server's version, or undefined when it is not installed. */
export function redisVersion(): Promise<string | undefined> {
  return toolVersion(REDIS_SERVER.command, REDIS_SERVER.version_pattern);
}

/** Makes sure `redis-server` is on PATH (installs Debian's package as root); returns its version. */
export function ensureRedisServer(log: (line: string) => void): Promise<string> {
  return ensureDebianPackage(REDIS_SERVER, log);
}

/** Sends PING over a fresh connection: "PONG" when serving, "LOADING" while reading the AOF. */
async function ping(port: number): Promise<string | undefined> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    return n === null ? undefined : new TextDecoder().decode(buf.subarray(0, n)).trim();
  } catch {
    return undefined;
  } finally {
    conn?.close();
  }
}

/** A private redis-server on a free loopback port, data (AOF) in `dir`. */
export interface RedisServer {
  port: number;
  child: Child;
}

/** Starts redis-server on `dir` (fsync per write) and waits until it answers PONG. */
export async function startRedis(dir: string, port = freePort()): Promise<RedisServer> {
  const child = spawnChild("redis-server", "redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--save",
    "",
    "--dir",
    dir,
    "--daemonize",
    "no",
  ]);
  await waitFor(
    "redis-server PONG",
    async () => (await ping(port)) === "+PONG" ? true : undefined,
    120_000,
    child,
  );
  return { port, child };
}

const DELAYED_FAR_MS = 3_600_000;
const DELAYED_DAY_MS = 86_400_000;

/** BullMQ clients on one redis-server. */
export class BullPeer {
  readonly #conn: Redis;
  readonly #port: number;
  #queues = 0;
  #lastError: Error | null = null;

  constructor(redis: RedisServer) {
    this.#port = redis.port;
    this.#conn = this.#connect();
  }

  /** An ioredis connection as BullMQ asks for (no per-request retry limit). */
  #connect(): Redis {
    const conn = new Redis({ host: "127.0.0.1", port: this.#port, maxRetriesPerRequest: null });
    conn.on("error", (error: Error) => this.#lastError = error);
    return conn;
  }

  /** A fresh queue name for one run. */
  #fresh(prefix: string): string {
    return `${prefix}-${++this.#queues}`;
  }

  async #withQueue<T>(name: string, use: (queue: Queue) => Promise<T>): Promise<T> {
    const queue = new Queue(name, { connection: this.#conn });
    try {
      return await use(queue);
    } catch (error) {
      const cause = this.#lastError === null ? "" : ` (redis: ${this.#lastError.message})`;
      throw new Error(`BullMQ queue ${name}: ${(error as Error).message}${cause}`);
    } finally {
      await queue.close();
    }
  }

  /** `total` single `Queue.add` calls with `delay`, `concurrency` in flight. */
  adds(concurrency: number, total: number): Promise<LoadResult> {
    return this.#withQueue(
      this.#fresh("adds"),
      (queue) =>
        closedLoop(concurrency, total, async (i) => {
          await queue.add("job", { i }, { delay: DELAYED_FAR_MS });
          return 1;
        }),
    );
  }

  /**
   * `jobs` delayed jobs (due a day ahead) through `Queue.addBulk` on queue `name` (default: a
   * fresh one), `batch_size` a call, `concurrency` calls in flight.
   */
  addBulk(
    name: string | null,
    concurrency: number,
    jobs: number,
    batch_size: number,
  ): Promise<LoadResult> {
    return this.#withQueue(name ?? this.#fresh("bulk"), (queue) => {
      return batchedLoop(concurrency, jobs, batch_size, async (first, size) => {
        await queue.addBulk(Array.from({ length: size }, (_, j) => ({
          name: "job",
          data: { i: first + j },
          opts: { delay: DELAYED_DAY_MS },
        })));
        return size;
      });
    });
  }

  /** Delayed jobs waiting in queue `name`. */
  delayedCount(name: string): Promise<number> {
    return this.#withQueue(name, (queue) => queue.getDelayedCount());
  }

  /**
   * Lateness of `count` delayed jobs due uniformly over `window_ms`, starting `lead_ms` from now,
   * processed by one Worker with `concurrency`. Without `sink`, lateness is the processor's start
   * minus (job.timestamp + delay); with it, the processor makes the same webhook call Tickraft
   * makes and the sink measures.
   */
  lateness(
    opts: { count: number; window_ms: number; lead_ms: number; concurrency: number },
    sink: SinkProcess | null,
  ): Promise<LatenessResult> {
    return this.#withQueue(this.#fresh("late"), async (queue) => {
      const start_ms = Date.now() + opts.lead_ms;
      const spacing_ms = opts.window_ms / opts.count;
      const batch = 10_000;
      for (let first = 0; first < opts.count; first += batch) {
        const now = Date.now();
        await queue.addBulk(
          Array.from({ length: Math.min(batch, opts.count - first) }, (_, j) => ({
            name: "job",
            data: { i: first + j },
            // timestamp + delay is the due time BullMQ works to; fixing the timestamp keeps it
            // equal to ours (left to BullMQ it is read per job, later than `now`).
            opts: { timestamp: now, delay: Math.max(0, start_ms + (first + j) * spacing_ms - now) },
          })),
        );
      }
      if (Date.now() > start_ms) {
        throw new Error("adding the lateness jobs took longer than lead_ms");
      }
      const lateness_ms: number[] = [];
      const process = sink === null
        ? (job: Job) => {
          lateness_ms.push(Date.now() - (job.timestamp + (job.opts.delay ?? 0)));
          return Promise.resolve();
        }
        : (job: Job) => this.#webhook(job, sink.hookUrl("bullmq"));
      let done = 0;
      const worker = new Worker(queue.name, process, {
        connection: this.#connect(),
        concurrency: opts.concurrency,
      });
      worker.on("completed", () => done++);
      worker.on("failed", (_job, error) => this.#lastError = error);
      try {
        const deadline_ms = start_ms + opts.window_ms + 30_000;
        if (sink !== null) return await sink.lateness("bullmq", opts.count, deadline_ms);
        while (done < opts.count && Date.now() < deadline_ms) {
          await sleep(250);
        }
        const { p50, p99, max } = summarize(lateness_ms);
        return {
          expected: opts.count,
          delivered: done,
          duplicates: lateness_ms.length - done,
          p50_ms: p50,
          p99_ms: p99,
          max_ms: max,
        };
      } finally {
        await worker.close();
        await worker.disconnect();
      }
    });
  }

  /** The call Tickraft makes for a due job: POST with the scheduled time header and body. */
  async #webhook(job: Job, url: string): Promise<void> {
    const scheduled_at = new Date(job.timestamp + (job.opts.delay ?? 0)).toISOString();
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-tickraft-scheduled-at": scheduled_at },
      body: JSON.stringify({ job_id: job.id, scheduled_at, attempt: 1, payload: job.data }),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
  }

  /** Deletes every key (between sections, so each starts on an empty store). */
  async flush(): Promise<void> {
    await this.#conn.flushall();
  }

  async close(): Promise<void> {
    await this.#conn.quit();
  }
}

/** What {@link storeAndRestartRedis} measured. */
export interface RedisStoreResult {
  jobs: number;
  insert: LoadResult;
  rss_bytes: number;
  hwm_bytes: number;
  /** SIGTERM to exit. */
  stop_ms: number;
  /** Process start to PONG with every delayed job counted. */
  restart_ms: number;
  rss_after_restart_bytes: number;
}

/**
 * Fills the (empty) redis-server with `jobs` delayed BullMQ jobs through `addBulk`, reads
 * redis-server's memory, stops it with SIGTERM and times a restart from the AOF. Returns the
 * restarted server with the result; the caller stops it.
 */
export async function storeAndRestartRedis(
  redis: RedisServer,
  dir: string,
  jobs: number,
  batch_size: number,
): Promise<{ result: RedisStoreResult; redis: RedisServer }> {
  const queue = "million";
  const before = new BullPeer(redis);
  let insert: LoadResult;
  try {
    insert = await before.addBulk(queue, 2, jobs, batch_size);
  } finally {
    await before.close();
  }
  const mem = await procMemory(redis.child.pid);
  const stop_started = performance.now();
  await redis.child.stop(60_000);
  const stop_ms = performance.now() - stop_started;
  const restart_started = performance.now();
  const restarted = await startRedis(dir, redis.port);
  const after = new BullPeer(restarted);
  try {
    const counted = await after.delayedCount(queue);
    const restart_ms = performance.now() - restart_started;
    if (counted !== jobs) {
      throw new Error(`expected ${jobs} delayed jobs after restart, got ${counted}`);
    }
    const mem_after = await procMemory(restarted.child.pid);
    return {
      redis: restarted,
      result: {
        jobs,
        insert,
        rss_bytes: mem.rss_bytes,
        hwm_bytes: mem.hwm_bytes,
        stop_ms,
        restart_ms,
        rss_after_restart_bytes: mem_after.rss_bytes,
      },
    };
  } finally {
    await after.close();
  }
}
