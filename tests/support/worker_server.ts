/**
 * The cluster side of docs/workers.md, small and in one process, for tests of the worker agent:
 * one shared state served by one or more real HTTP "nodes" on 127.0.0.1 (stop one to make the
 * agent fail over). It implements what the agent relies on (registration, heartbeats with a
 * TTL after which a worker is lost and its allocations with it, long-polled allocations, leases
 * from placement to start and from start to finish, 409 for an allocation that is not the
 * worker's, 404 for a worker the cluster does not know, drain and removal) and records every
 * call so a test can check what the agent did.
 *
 * @example
 * ```ts
 * await using cluster = await startWorkerCluster({ nodes: 2 });
 * const allocation = cluster.place("w-1", { payload: { n: 1 } });
 * await cluster.waitFor("finished", () => allocation.finish !== undefined, 10_000);
 * ```
 *
 * @module
 */
import { z } from "zod";

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const WAIT_MAX_MS = 60_000;
const OUTPUT_EXCERPT_MAX_CHARS = 512;
/** How often leases and TTLs are checked. */
const SWEEP_MS = 25;

const integer = z.number().int().min(0);
const registerSchema = z.object({
  id: z.string().regex(ID_PATTERN),
  pool: z.string().default("default"),
  region: z.string().default(""),
  zone: z.string().default(""),
  labels: z.record(z.string(), z.string()).default({}),
  taints: z.array(z.object({
    key: z.string().min(1),
    value: z.string(),
    effect: z.enum(["NoSchedule", "PreferNoSchedule"]),
  })).default([]),
  capacity: z.object({
    cpu_millis: integer,
    memory_mb: integer,
    disk_mb: integer,
    slots: z.number().int().min(1),
  }),
}).strict();

const heartbeatSchema = z.object({
  usage: z.object({
    cpu_percent: z.number().min(0).max(100),
    memory_percent: z.number().min(0).max(100),
    rps: z.number().min(0),
    running: z.array(z.string()),
  }).strict(),
}).strict();

const startSchema = z.object({ worker_id: z.string() }).strict();

const finishSchema = z.object({
  worker_id: z.string(),
  ok: z.boolean(),
  exit_code: z.number().int().nullable(),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  output_excerpt: z.string().max(OUTPUT_EXCERPT_MAX_CHARS),
  duration_ms: integer,
}).strict();

/** A registration as the agent sent it. */
export type Registration = z.infer<typeof registerSchema>;
/** A heartbeat as the agent sent it. */
export type Heartbeat = z.infer<typeof heartbeatSchema> & { worker_id: string; at_ms: number };
/** A finish as the agent sent it. */
export type Finish = z.infer<typeof finishSchema>;

/** One worker as the cluster sees it. */
export interface WorkerRecord {
  spec: Registration;
  status: "ready" | "draining" | "lost";
  last_heard_ms: number;
  /** The most allocations it ran at once. */
  running_max: number;
}

/** One allocation: its wire fields plus what the agent did with it. */
export interface AllocationRecord {
  id: string;
  job_id: string;
  execution_id: string;
  attempt: number;
  scheduled_at: string;
  worker_id: string;
  status: "placed" | "running" | "completed" | "failed" | "lost";
  resources: { cpu_millis: number; memory_mb: number; disk_mb: number; slots: number };
  lease_seconds: number;
  lease_expires_at: string;
  idempotency_key: string;
  payload: unknown;
  /** Shown to its worker's polls, but taken by another worker already: start answers 409. */
  stale: boolean;
  started_at_ms?: number;
  finish?: Finish;
}

/** Every request a node served. */
export interface RecordedCall {
  node: number;
  method: string;
  path: string;
  status: number;
  at_ms: number;
}

/** What a test asks to place. */
export interface PlaceSpec {
  payload?: unknown;
  lease_seconds?: number;
  job_id?: string;
  attempt?: number;
  /** See {@link AllocationRecord.stale}. */
  stale?: boolean;
}

/** One HTTP node of the cluster. */
export interface WorkerNode {
  url: string;
  /** Stops listening: new connections are refused, polls in flight answer 503. */
  stop(): Promise<void>;
  /** From now on every call is answered `status` (e.g. 503: no leader), or served again (null). */
  answerAll(status: number | null): void;
}

/** Options of {@link startWorkerCluster}. */
export interface WorkerClusterOptions {
  nodes?: number;
  /** A worker not heard from this long is lost (default 3 s). */
  ttl_ms?: number;
  /** The period heartbeat answers ask for (default 200 ms). */
  heartbeat_ms?: number;
  /** When set, every call needs `Authorization: Bearer <token>`. */
  token?: string;
}

/** The running cluster. */
export interface WorkerCluster extends AsyncDisposable {
  nodes: WorkerNode[];
  workers: Map<string, WorkerRecord>;
  allocations: Map<string, AllocationRecord>;
  registrations: Registration[];
  heartbeats: Heartbeat[];
  calls: RecordedCall[];
  /** Places a new allocation on `worker_id` (registered or not yet). */
  place(worker_id: string, spec?: PlaceSpec): AllocationRecord;
  /** Long polls of `worker_id` waiting now. */
  polling(worker_id: string): number;
  /** Forgets a worker, as after a TTL the agent missed: its next heartbeat gets 404. */
  forget(worker_id: string): void;
  /** Resolves once `check()` holds; rejects after `timeout_ms` naming `what`. */
  waitFor(what: string, check: () => boolean, timeout_ms: number): Promise<void>;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Starts the cluster's nodes on 127.0.0.1. */
export async function startWorkerCluster(opts: WorkerClusterOptions = {}): Promise<WorkerCluster> {
  const ttl_ms = opts.ttl_ms ?? 3_000;
  const heartbeat_ms = opts.heartbeat_ms ?? 200;
  const workers = new Map<string, WorkerRecord>();
  const allocations = new Map<string, AllocationRecord>();
  const registrations: Registration[] = [];
  const heartbeats: Heartbeat[] = [];
  const calls: RecordedCall[] = [];
  const pollers = new Map<string, Set<() => void>>();
  let next_id = 1;

  const wake = (worker_id: string) => {
    for (const notify of pollers.get(worker_id) ?? []) notify();
  };

  const lose = (allocation: AllocationRecord) => {
    allocation.status = "lost";
  };

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [, worker] of workers) {
      if (worker.status !== "lost" && now - worker.last_heard_ms > ttl_ms) worker.status = "lost";
    }
    for (const allocation of allocations.values()) {
      const active = allocation.status === "placed" || allocation.status === "running";
      if (!active) continue;
      const worker = workers.get(allocation.worker_id);
      const expired = Date.parse(allocation.lease_expires_at) <= now;
      if (expired || worker?.status === "lost") lose(allocation);
    }
  }, SWEEP_MS);

  const known = (id: string): WorkerRecord => {
    const worker = workers.get(id);
    if (worker === undefined || worker.status === "lost") {
      throw new HttpError(404, `worker ${id} is not registered: register it again`);
    }
    worker.last_heard_ms = Date.now();
    return worker;
  };

  const allocationOf = (id: string): AllocationRecord => {
    const allocation = allocations.get(id);
    if (allocation === undefined) throw new HttpError(404, `no allocation ${id}`);
    return allocation;
  };

  const wire = (a: AllocationRecord) => {
    const { stale: _stale, started_at_ms: _started, finish: _finish, ...fields } = a;
    return fields;
  };

  const parse = <T>(schema: z.ZodType<T>, body: unknown): T => {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new HttpError(400, z.prettifyError(parsed.error));
    return parsed.data;
  };

  const waitMs = (text: string | null): number => {
    if (text === null) return 0;
    const match = /^(\d+)(ms|s)?$/.exec(text);
    if (match === null) throw new HttpError(400, `wait "${text}" is not a duration like 30s`);
    const ms = Number(match[1]) * (match[2] === "ms" ? 1 : 1000);
    if (ms > WAIT_MAX_MS) throw new HttpError(400, `wait ${text} is above 60s`);
    return ms;
  };

  const placedFor = (worker_id: string) =>
    [...allocations.values()].filter((a) => a.worker_id === worker_id && a.status === "placed")
      .map(wire);

  const routes = async (
    request: Request,
    url: URL,
    stopping: AbortSignal,
  ): Promise<{ status: number; body: unknown }> => {
    const method = request.method;
    const parts = url.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
    const text = await request.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw new HttpError(400, "the body is not JSON");
    }
    if (method === "POST" && parts.length === 1 && parts[0] === "workers") {
      const spec = parse(registerSchema, body);
      registrations.push(spec);
      const existing = workers.get(spec.id);
      workers.set(spec.id, {
        spec,
        status: "ready",
        last_heard_ms: Date.now(),
        running_max: existing?.running_max ?? 0,
      });
      return { status: existing === undefined ? 201 : 200, body: { ...spec, status: "ready" } };
    }
    if (parts[0] === "workers" && parts.length >= 2) {
      const id = parts[1];
      if (method === "POST" && parts[2] === "heartbeat") {
        const beat = parse(heartbeatSchema, body);
        const worker = known(id);
        heartbeats.push({ ...beat, worker_id: id, at_ms: Date.now() });
        return { status: 200, body: { status: worker.status, ttl_ms, heartbeat_ms } };
      }
      if (method === "GET" && parts[2] === "allocations") {
        const wait_ms = waitMs(url.searchParams.get("wait"));
        known(id);
        let found = placedFor(id);
        if (found.length === 0 && wait_ms > 0) {
          await new Promise<void>((resolve) => {
            const set = pollers.get(id) ?? new Set();
            pollers.set(id, set);
            const done = () => {
              clearTimeout(timer);
              set.delete(done);
              stopping.removeEventListener("abort", done);
              resolve();
            };
            const timer = setTimeout(done, wait_ms);
            set.add(done);
            stopping.addEventListener("abort", done, { once: true });
          });
          if (stopping.aborted) throw new HttpError(503, "node stopping");
          found = placedFor(id);
        }
        return { status: 200, body: { allocations: found } };
      }
      if (method === "POST" && parts[2] === "drain") {
        const worker = known(id);
        worker.status = "draining";
        return { status: 200, body: { ...worker.spec, status: worker.status } };
      }
      if (method === "DELETE" && parts.length === 2) {
        const worker = workers.get(id);
        if (worker === undefined) throw new HttpError(404, `no worker ${id}`);
        workers.delete(id);
        for (const a of allocations.values()) {
          if (a.worker_id === id && (a.status === "placed" || a.status === "running")) lose(a);
        }
        return { status: 200, body: { ...worker.spec, status: "removed" } };
      }
    }
    if (method === "POST" && parts[0] === "allocations" && parts.length === 3) {
      const allocation = allocationOf(parts[1]);
      if (parts[2] === "start") {
        const { worker_id } = parse(startSchema, body);
        if (allocation.stale) {
          allocation.stale = false;
          allocation.worker_id = "another-worker";
        }
        if (allocation.worker_id !== worker_id || allocation.status !== "placed") {
          throw new HttpError(409, `allocation ${allocation.id} is not ${worker_id}'s to start`);
        }
        allocation.status = "running";
        allocation.started_at_ms = Date.now();
        allocation.lease_expires_at = new Date(Date.now() + allocation.lease_seconds * 1000)
          .toISOString();
        const worker = workers.get(worker_id);
        if (worker !== undefined) {
          const running = [...allocations.values()].filter((a) =>
            a.worker_id === worker_id && a.status === "running"
          ).length;
          worker.running_max = Math.max(worker.running_max, running);
        }
        return { status: 200, body: wire(allocation) };
      }
      if (parts[2] === "finish") {
        const finish = parse(finishSchema, body);
        if (allocation.worker_id !== finish.worker_id || allocation.status !== "running") {
          throw new HttpError(409, `allocation ${allocation.id} was lost meanwhile`);
        }
        allocation.finish = finish;
        allocation.status = finish.ok ? "completed" : "failed";
        return { status: 200, body: wire(allocation) };
      }
    }
    throw new HttpError(404, `no route ${method} ${url.pathname}`);
  };

  const startNode = (index: number): Promise<WorkerNode> => {
    const stopping = new AbortController();
    let answer_all: number | null = null;
    return new Promise((resolve) => {
      const server = Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        onListen: ({ port }) => {
          let stopped: Promise<void> | undefined;
          resolve({
            url: `http://127.0.0.1:${port}`,
            stop: () => {
              stopping.abort();
              stopped ??= server.shutdown();
              return stopped;
            },
            answerAll: (status) => answer_all = status,
          });
        },
      }, async (request) => {
        const url = new URL(request.url);
        let status: number;
        let body: unknown;
        if (answer_all !== null) {
          status = answer_all;
          body = { error: "no leader", code: "unavailable" };
        } else if (
          opts.token !== undefined &&
          request.headers.get("authorization") !== `Bearer ${opts.token}`
        ) {
          status = 401;
          body = { error: "missing or wrong API token", code: "unauthorized" };
        } else {
          try {
            ({ status, body } = await routes(request, url, stopping.signal));
          } catch (error) {
            if (!(error instanceof HttpError)) throw error;
            status = error.status;
            body = { error: error.message, code: `http_${error.status}` };
          }
        }
        calls.push({
          node: index,
          method: request.method,
          path: url.pathname + url.search,
          status,
          at_ms: Date.now(),
        });
        return Response.json(body, { status });
      });
    });
  };

  const nodes: WorkerNode[] = [];
  for (let i = 0; i < (opts.nodes ?? 1); i++) nodes.push(await startNode(i));

  const close = async () => {
    clearInterval(sweep);
    await Promise.all(nodes.map((n) => n.stop()));
  };

  return {
    nodes,
    workers,
    allocations,
    registrations,
    heartbeats,
    calls,
    place(worker_id, spec = {}) {
      const n = next_id++;
      const lease_seconds = spec.lease_seconds ?? 60;
      const scheduled_at_ms = Date.UTC(2026, 11, 1, 10, 0, 0) + n * 60_000;
      const job_id = spec.job_id ?? `job-${n}`;
      const allocation: AllocationRecord = {
        id: `alloc-${n}`,
        job_id,
        execution_id: `exec-${n}`,
        attempt: spec.attempt ?? 1,
        scheduled_at: new Date(scheduled_at_ms).toISOString(),
        worker_id,
        status: "placed",
        resources: { cpu_millis: 100, memory_mb: 64, disk_mb: 0, slots: 1 },
        lease_seconds,
        lease_expires_at: new Date(Date.now() + lease_seconds * 1000).toISOString(),
        idempotency_key: `${job_id}:${scheduled_at_ms}`,
        payload: spec.payload ?? null,
        stale: spec.stale ?? false,
      };
      allocations.set(allocation.id, allocation);
      wake(worker_id);
      return allocation;
    },
    polling: (worker_id) => pollers.get(worker_id)?.size ?? 0,
    forget(worker_id) {
      workers.delete(worker_id);
    },
    waitFor: (what, check, timeout_ms) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + timeout_ms;
        const tick = () => {
          if (check()) return resolve();
          if (Date.now() > deadline) {
            return reject(new Error(`timed out after ${timeout_ms} ms waiting for ${what}`));
          }
          setTimeout(tick, 20);
        };
        tick();
      }),
    close,
    [Symbol.asyncDispose]: close,
  };
}
