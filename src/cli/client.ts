/**
 * A small typed client of a node's HTTP API over `fetch`. It shares only the wire types with the
 * server (type imports, erased at run time), so it talks to any node, local or remote.
 *
 * @example
 * ```ts
 * const client = new TickraftClient("http://127.0.0.1:8080", null);
 * const job = await client.createJob({ type: "interval", interval_seconds: 30 });
 * await client.pauseJob(job.id);
 * ```
 *
 * @module
 */
import type { ClusterView, executionJson, HealthView, jobJson } from "../http/schemas.ts";
import type { allocationJson, WorkerJson } from "../http/workers.ts";

export type JobJson = ReturnType<typeof jobJson>;
export type ExecutionJson = ReturnType<typeof executionJson>;
export type AllocationJson = ReturnType<typeof allocationJson>;
export type JsonObject = Record<string, unknown>;

/**
 * A worker as `GET /workers` answers (the `Worker` schema of `/openapi.json`; src/http/workers.ts
 * does not export its type, so it is written out here).
 */

export interface AllocationPage {
  allocations: AllocationJson[];
  next_cursor: string | null;
}

/** Query of `GET /allocations`. */
export interface AllocationQuery {
  job?: string;
  worker?: string;
  status?: string;
  limit?: string;
  cursor?: string;
}

export interface JobPage {
  jobs: JobJson[];
  next_cursor: string | null;
}

export interface ExecutionPage {
  job_id: string;
  executions: ExecutionJson[];
  next_cursor: string | null;
}

export interface TriggerResult {
  job_id: string;
  execution_id: string;
}

export interface DeleteResult {
  id: string;
  deleted: boolean;
}

/** Query of `GET /jobs` (and, with `cursor` and `limit` only, of the executions). */
export interface ListQuery {
  status?: string;
  type?: string;
  q?: string;
  limit?: string;
  cursor?: string;
}

/** The node answered with an error status; `message` is the server's own. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }

  /**
   * The node has no such route (as opposed to a route answering "no such job"): a 404 that is
   * not Tickraft's JSON error, or the app's not-found handler, whose message starts "no route".
   */
  get routeMissing(): boolean {
    return this.status === 404 && (this.code === null || this.message.startsWith("no route"));
  }
}

/** The node could not be reached, or did not answer like a Tickraft node. */
export class ConnectionError extends Error {}

/** Longest wait for one response. */
const REQUEST_TIMEOUT_MS = 30_000;

export class TickraftClient {
  readonly base_url: string;

  /** `token`, when set, is sent as `Authorization: Bearer`; it is never part of an error. */
  constructor(base_url: string, private readonly token: string | null) {
    this.base_url = base_url.replace(/\/+$/, "");
  }

  createJob(body: unknown, idempotency_key?: string): Promise<JobJson> {
    const headers: Record<string, string> = idempotency_key === undefined
      ? {}
      : { "Idempotency-Key": idempotency_key };
    return this.request("POST", "/jobs", body, headers);
  }

  getJob(id: string): Promise<JobJson> {
    return this.request("GET", `/jobs/${encodeURIComponent(id)}`);
  }

  listJobs(query: ListQuery): Promise<JobPage> {
    return this.request("GET", `/jobs${queryString(query)}`);
  }

  executions(id: string, query: ListQuery): Promise<ExecutionPage> {
    return this.request("GET", `/jobs/${encodeURIComponent(id)}/executions${queryString(query)}`);
  }

  cancelJob(id: string, reason?: string): Promise<JobJson> {
    return this.request(
      "POST",
      `/jobs/${encodeURIComponent(id)}/cancel`,
      reason === undefined ? {} : { reason },
    );
  }

  deleteJob(id: string): Promise<DeleteResult> {
    return this.request("DELETE", `/jobs/${encodeURIComponent(id)}`);
  }

  triggerJob(id: string): Promise<TriggerResult> {
    return this.request("POST", `/jobs/${encodeURIComponent(id)}/trigger`);
  }

  pauseJob(id: string): Promise<JobJson> {
    return this.request("POST", `/jobs/${encodeURIComponent(id)}/pause`);
  }

  resumeJob(id: string): Promise<JobJson> {
    return this.request("POST", `/jobs/${encodeURIComponent(id)}/resume`);
  }

  listWorkers(): Promise<{ workers: WorkerJson[] }> {
    return this.request("GET", "/workers");
  }

  getWorker(id: string): Promise<WorkerJson> {
    return this.request("GET", `/workers/${encodeURIComponent(id)}`);
  }

  drainWorker(id: string): Promise<WorkerJson> {
    return this.request("POST", `/workers/${encodeURIComponent(id)}/drain`);
  }

  removeWorker(id: string): Promise<{ removed: string }> {
    return this.request("DELETE", `/workers/${encodeURIComponent(id)}`);
  }

  listAllocations(query: AllocationQuery): Promise<AllocationPage> {
    return this.request("GET", `/allocations${queryString(query)}`);
  }

  getAllocation(id: string): Promise<AllocationJson> {
    return this.request("GET", `/allocations/${encodeURIComponent(id)}`);
  }

  health(): Promise<HealthView> {
    return this.request("GET", "/health");
  }

  cluster(): Promise<ClusterView> {
    return this.request("GET", "/debug/cluster");
  }

  join(node_id: string, address: string): Promise<unknown> {
    return this.request("POST", "/join", { node_id, address });
  }

  leave(node_id: string): Promise<unknown> {
    return this.request("DELETE", `/cluster/members/${encodeURIComponent(node_id)}`);
  }

  transferLeader(to: string | undefined): Promise<unknown> {
    return this.request("POST", "/cluster/transfer-leader", to === undefined ? {} : { to });
  }

  /** Sends one request; resolves with the JSON answer of a 2xx, throws otherwise. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    extra_headers: Record<string, string> = {},
  ): Promise<T> {
    const headers = new Headers({ Accept: "application/json", ...extra_headers });
    if (this.token !== null) headers.set("Authorization", `Bearer ${this.token}`);
    if (body !== undefined) headers.set("Content-Type", "application/json");
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.base_url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      const reason = (error as Error).name === "TimeoutError"
        ? `no answer within ${REQUEST_TIMEOUT_MS / 1_000} s`
        : (error as Error).message;
      throw new ConnectionError(
        `cannot reach ${this.base_url} (${method} ${path}): ${reason}; ` +
          "is the node running? Point --url or TICKRAFT_URL at it",
      );
    }
    const parsed = parseJson(text);
    if (!response.ok) throw toApiError(method, path, response, parsed, text);
    if (parsed === undefined) {
      throw new ConnectionError(
        `${method} ${path} on ${this.base_url} answered ${response.status} without JSON; ` +
          "is --url a Tickraft node?",
      );
    }
    return parsed as T;
  }
}

function queryString(query: ListQuery | AllocationQuery): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, value);
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The server's `{"error", "code"}` when it sent one, the status text and body otherwise. */
function toApiError(
  method: string,
  path: string,
  response: Response,
  parsed: unknown,
  text: string,
): ApiError {
  const body = typeof parsed === "object" && parsed !== null ? parsed as JsonObject : {};
  if (typeof body.error === "string") {
    const code = typeof body.code === "string" ? body.code : null;
    return new ApiError(method, path, response.status, code, body.error);
  }
  const excerpt = text.trim().slice(0, 200);
  const message = excerpt === "" ? response.statusText : excerpt;
  return new ApiError(method, path, response.status, null, message);
}
