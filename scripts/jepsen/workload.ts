/**
 * The workload: concurrent clients sending creates (with idempotency keys, some replayed),
 * batch creates, linearizable and local reads, cancels and deletes to random nodes, every
 * operation recorded with its invoke and complete times and its result. When the run has worker
 * agents, a share of the jobs are worker jobs (one-offs due soon, and cron jobs every 3 s in place
 * of the interval ones) whose executor holds small resources and whose payload says how long each
 * run sleeps, drawn from the seed when the job is made.
 *
 * A definite answer is `ok` (or `fail` when it cannot have had an effect: a refused
 * connection, a 4xx on a write). A timeout, a reset, or a 5xx on a write is `info`: the write
 * may or may not have happened, and the checkers treat it so.
 *
 * @module
 */
import { sleep } from "../../tests/support/wait.ts";
import type { CreatedJob, CreateItem, HistoryOp, Outcome, WorkerItem } from "./history.ts";

/** A client gives up on a request after this long (the operation is then indeterminate). */
export const REQUEST_TIMEOUT_MS = 5_000;

/** What the workload knows of one key. */
export interface KeyInfo {
  item: CreateItem;
  /** Never cancelled or deleted: its occurrences must all be delivered. */
  keeper: boolean;
  /** Ids that creates with this key returned. */
  ids: Set<string>;
  /** A recurring job the workload has sent its retiring cancel for. */
  retired?: boolean;
}

/** A recurring job is cancelled this long after it starts, so live ones stay few. */
const RECURRING_LIFETIME_MS = 20_000;

/** The cron expression of recurring worker jobs (with seconds): every 3 s. */
export const WORKER_CRON = "*/3 * * * * *";
/** The period {@link WORKER_CRON} fires at. */
export const WORKER_CRON_PERIOD_MS = 3_000;
/** The lease of a worker job's allocation: to start, then to finish. */
export const WORKER_LEASE_S = 5;

/** The state clients share. */
export interface WorkloadContext {
  random: () => number;
  now: () => number;
  /** Unix ms of the run's time 0. */
  started_at: number;
  /** Node names and their client URLs. */
  urls: Map<string, string>;
  sink_url: string;
  ops: HistoryOp[];
  keys: Map<string, KeyInfo>;
  /** The client loop ends at this run time. */
  end_ms: number;
  /**
   * The share of new jobs that are worker jobs: 0 when the run has no workers (then nothing is
   * drawn for it, and a seed makes the same webhook workload as before workers existed).
   */
  worker_share: number;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** The body of a create for `item`. */
export function jobBody(ctx: WorkloadContext, item: CreateItem): Record<string, unknown> {
  const at = new Date(ctx.started_at + item.due_ms).toISOString();
  if (item.worker !== undefined) {
    const w = item.worker;
    const worker = {
      name: item.key,
      payload: { key: item.key, sleep_ms: w.sleep_ms },
      max_attempts: 5,
      executor: {
        type: "worker",
        resources: { cpu_millis: w.cpu_millis, memory_mb: w.memory_mb, slots: 1 },
        lease_seconds: WORKER_LEASE_S,
      },
    };
    return item.recurring
      ? { ...worker, type: "cron", cron_expression: WORKER_CRON, starts_at: at }
      : { ...worker, type: "once", timestamp: at };
  }
  const base = {
    webhook_url: `${ctx.sink_url}/hook/${encodeURIComponent(item.key)}`,
    name: item.key,
    payload: { key: item.key },
    max_attempts: 5,
    timeout_seconds: 5,
  };
  return item.recurring
    ? { ...base, type: "interval", interval_seconds: 2, starts_at: at }
    : { ...base, type: "once", timestamp: at };
}

interface Answer {
  type: Outcome;
  status?: number;
  body?: Record<string, unknown>;
  error?: string;
}

/** Sends one request and classifies its answer (`write`: whether it may change state). */
export async function send(
  url: string,
  init: RequestInit,
  write: boolean,
): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    const text = String(error);
    // Nothing was sent: the write cannot have happened.
    if (/refused|os error 111/i.test(text)) return { type: "fail", error: "connection refused" };
    return { type: write ? "info" : "fail", error: text.slice(0, 200) };
  }
  let body: Record<string, unknown> = {};
  try {
    body = await response.json();
  } catch {
    // an empty or cut body
  }
  const status = response.status;
  if (status >= 200 && status < 300) return { type: "ok", status, body };
  if (status >= 500 || status === 307) {
    return { type: write ? "info" : "fail", status, body, error: String(body.error ?? "") };
  }
  return { type: "fail", status, body, error: String(body.code ?? body.error ?? "") };
}

const json = (method: string, body: unknown, headers: Record<string, string> = {}) => ({
  method,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** Runs one operation `f` and records it. */
export async function perform(
  ctx: WorkloadContext,
  client: number,
  node: string,
  f: HistoryOp["f"],
  target: { items?: CreateItem[]; id?: string },
): Promise<HistoryOp> {
  const base = ctx.urls.get(node)!;
  const op: HistoryOp = {
    index: -1,
    client,
    node,
    f,
    ...target,
    invoke_ms: ctx.now(),
    complete_ms: 0,
    type: "info",
  };
  let answer: Answer;
  switch (f) {
    case "create": {
      const item = target.items![0];
      answer = await send(
        `${base}/jobs`,
        json("POST", jobBody(ctx, item), { "Idempotency-Key": item.key }),
        true,
      );
      if (answer.type === "ok") {
        op.jobs = [{ id: String(answer.body!.id), created: answer.status === 201 }];
      }
      break;
    }
    case "batch": {
      const jobs = target.items!.map((item) => ({
        ...jobBody(ctx, item),
        idempotency_key: item.key,
      }));
      answer = await send(`${base}/jobs/batch`, json("POST", { jobs }), true);
      if (answer.type === "ok") {
        op.jobs = (answer.body!.jobs as { id: string; created: boolean }[]).map((
          j,
        ): CreatedJob => ({ id: j.id, created: j.created }));
      }
      break;
    }
    case "get":
    case "get_local": {
      const query = f === "get" ? "?consistency=linearizable" : "";
      answer = await send(`${base}/jobs/${target.id}${query}`, { method: "GET" }, false);
      if (answer.status === 404 && answer.body?.code === "not_found") {
        answer = { ...answer, type: "ok" };
        op.job_status = null;
      } else if (answer.type === "ok") op.job_status = String(answer.body!.status);
      break;
    }
    case "cancel":
    case "delete": {
      answer = f === "cancel"
        ? await send(`${base}/jobs/${target.id}/cancel`, json("POST", { reason: "jepsen" }), true)
        : await send(`${base}/jobs/${target.id}`, { method: "DELETE" }, true);
      // 404 (no such job) and a 409 conflict (cancelled or finished already) are answers too;
      // other 409 codes are cluster refusals made before anything was proposed.
      if (
        answer.status === 404 && answer.body?.code === "not_found" ||
        answer.status === 409 && answer.body?.code === "conflict"
      ) answer = { ...answer, type: "ok" };
      break;
    }
  }
  op.complete_ms = ctx.now();
  op.type = answer.type;
  if (answer.status !== undefined) op.status = answer.status;
  if (answer.error !== undefined && answer.type !== "ok") op.error = answer.error;
  op.index = ctx.ops.length;
  ctx.ops.push(op);
  for (const [i, job] of (op.jobs ?? []).entries()) ctx.keys.get(op.items![i].key)!.ids.add(job.id);
  return op;
}

function newItem(ctx: WorkloadContext, client: number): KeyInfo {
  const recurring = ctx.random() < 0.15;
  const item: CreateItem = {
    key: `k${ctx.keys.size + 1}-c${client}`,
    recurring,
    due_ms: Math.round(ctx.now() + 1_500 + ctx.random() * (recurring ? 1_000 : 6_500)),
  };
  if (ctx.worker_share > 0 && ctx.random() < ctx.worker_share) item.worker = workerItem(ctx);
  const info: KeyInfo = { item, keeper: !recurring && ctx.random() < 0.6, ids: new Set() };
  ctx.keys.set(item.key, info);
  return info;
}

/** A worker job's run time (0.2-1.5 s) and resources (a worker fits two to five of them). */
function workerItem(ctx: WorkloadContext): WorkerItem {
  return {
    sleep_ms: Math.round(200 + ctx.random() * 1_300),
    cpu_millis: 50 * (4 + Math.floor(ctx.random() * 9)),
    memory_mb: 32 * (2 + Math.floor(ctx.random() * 5)),
  };
}

/** One client: random operations on random nodes until `ctx.end_ms`. */
export async function runClient(ctx: WorkloadContext, client: number): Promise<void> {
  const nodes = [...ctx.urls.keys()];
  while (ctx.now() < ctx.end_ms) {
    const node = pick(ctx.random, nodes);
    const known = [...ctx.keys.values()];
    const withIds = known.filter((k) => k.ids.size > 0);
    const victims = withIds.filter((k) => !k.keeper);
    const old = known.find((k) =>
      k.item.recurring && !k.retired && k.ids.size > 0 &&
      k.item.due_ms < ctx.now() - RECURRING_LIFETIME_MS
    );
    const roll = ctx.random();
    const anyId = (from: KeyInfo[]) => pick(ctx.random, [...pick(ctx.random, from).ids]);
    if (old !== undefined) {
      old.retired = true;
      await perform(ctx, client, node, "cancel", { id: [...old.ids][0] });
    } else if (roll < 0.18 || withIds.length === 0) {
      await perform(ctx, client, node, "create", { items: [newItem(ctx, client).item] });
    } else if (roll < 0.24) {
      const items = Array.from(
        { length: 2 + Math.floor(ctx.random() * 3) },
        () => newItem(ctx, client).item,
      );
      await perform(ctx, client, node, "batch", { items });
    } else if (roll < 0.32) {
      // A replay: the same key again (the job of a timed-out create shows up here).
      await perform(ctx, client, node, "create", { items: [pick(ctx.random, known).item] });
    } else if (roll < 0.40 && victims.length > 0) {
      await perform(ctx, client, node, "cancel", { id: anyId(victims) });
    } else if (roll < 0.48 && victims.length > 0) {
      await perform(ctx, client, node, "delete", { id: anyId(victims) });
    } else if (roll < 0.62) {
      await perform(ctx, client, node, "get_local", { id: anyId(withIds) });
    } else {
      await perform(ctx, client, node, "get", { id: anyId(withIds) });
    }
    await sleep(20 + ctx.random() * 60);
  }
}
