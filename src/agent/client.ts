/**
 * The agent's HTTP client of the nodes in `--server`. One node is current for every call; a node
 * that does not answer (connection refused or reset, a timeout, a 5xx such as 503 without a
 * leader) is left for the next one in the list, after a backoff that grows while nothing answers
 * and is reset by the first answer. Answers below 500 are the caller's to read: 404 and 409 mean
 * something in docs/workers.md.
 *
 * @example
 * ```ts
 * const client = new ServerClient(["http://127.0.0.1:8080", "http://127.0.0.1:8081"], null, logger);
 * const answer = await client.request("POST", "/workers", body, { timeout_ms: 10_000 });
 * if (answer.status === 201) console.log(answer.json);
 * ```
 *
 * @module
 */
import type { Logger } from "../logger.ts";

/** An answer below 500: its status, its text and the text parsed as JSON (undefined if not). */
export interface Answer {
  status: number;
  text: string;
  json: unknown;
}

/** Backoff between tries of the next node. */
export interface Backoff {
  first_ms: number;
  max_ms: number;
}

/** The default: 100 ms after the first failure, doubling to 5 s. */
export const DEFAULT_BACKOFF: Backoff = { first_ms: 100, max_ms: 5_000 };

/** The call was aborted by its caller (the agent is stopping). */
export class AbortedError extends Error {}

/** Options of one call. */
export interface RequestOptions {
  /** Limit for one try at one node, answer body included. */
  timeout_ms: number;
  /** Stops the call, including its retries; it then rejects with {@link AbortedError}. */
  signal?: AbortSignal;
  /**
   * Tries before giving up with the last failure (default: until an answer or `signal`).
   * A drain on the way out uses it, so that an unreachable cluster does not hold the exit.
   */
  tries_max?: number;
}

/** Every node failed `tries_max` times in a row. */
export class UnreachableError extends Error {}

/** Client of the nodes, failing over between them. */
export class ServerClient {
  #servers: readonly string[];
  #current = 0;
  #failures = 0;
  #token: string | null;
  #logger: Logger;
  #backoff: Backoff;

  constructor(
    servers: readonly string[],
    token: string | null,
    logger: Logger,
    backoff: Backoff = DEFAULT_BACKOFF,
  ) {
    if (servers.length === 0) throw new Error("ServerClient needs at least one server");
    this.#servers = servers;
    this.#token = token;
    this.#logger = logger;
    this.#backoff = backoff;
  }

  /** The node calls go to now. */
  get server(): string {
    return this.#servers[this.#current];
  }

  /**
   * Sends `method path` with `body` as JSON to the current node and resolves with its answer once
   * one is below 500; fails over to the next node otherwise (see the module's doc).
   */
  async request(
    method: string,
    path: string,
    body: unknown,
    opts: RequestOptions,
  ): Promise<Answer> {
    for (let tries = 1;; tries++) {
      if (opts.signal?.aborted) throw new AbortedError(`${method} ${path} aborted`);
      const at = this.#current;
      const failure = await this.#try(this.#servers[at], method, path, body, opts);
      if (typeof failure !== "string") {
        this.#failures = 0;
        return failure;
      }
      if (opts.signal?.aborted) throw new AbortedError(`${method} ${path} aborted`);
      const retry_in_ms = this.#failed(at, failure, `${method} ${path}`);
      if (opts.tries_max !== undefined && tries >= opts.tries_max) {
        throw new UnreachableError(`${method} ${path}: ${failure}`);
      }
      await sleep(retry_in_ms, opts.signal);
    }
  }

  /** One try at one node: its answer, or why it counts as not answering. */
  async #try(
    server: string,
    method: string,
    path: string,
    body: unknown,
    opts: RequestOptions,
  ): Promise<Answer | string> {
    const timeout = AbortSignal.timeout(opts.timeout_ms);
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout]);
    const headers = new Headers();
    if (body !== undefined) headers.set("Content-Type", "application/json");
    if (this.#token !== null) headers.set("Authorization", `Bearer ${this.#token}`);
    try {
      const response = await fetch(server + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      const text = await response.text();
      if (response.status >= 500) return `HTTP ${response.status} ${excerpt(text)}`.trim();
      return { status: response.status, text, json: parseJson(text) };
    } catch (error) {
      if (timeout.aborted) return `no answer within ${opts.timeout_ms} ms`;
      return (error as Error).message;
    }
  }

  /**
   * Moves to the next node when `at` is still the current one (two calls failing on one node
   * move once) and says how long to wait before the next try.
   */
  #failed(at: number, reason: string, call: string): number {
    this.#failures++;
    const retry_in_ms = Math.min(
      this.#backoff.max_ms,
      this.#backoff.first_ms * 2 ** Math.min(this.#failures - 1, 30),
    );
    if (at === this.#current) {
      const from = this.#servers[at];
      this.#current = (at + 1) % this.#servers.length;
      this.#logger.warn("reconnecting", {
        from,
        to: this.#servers[this.#current],
        call,
        reason,
        retry_in_ms,
      });
    }
    return retry_in_ms;
  }
}

/** The server's `error` message of a JSON error body, else the start of the text. */
export function serverMessage(answer: Answer): string {
  const json = answer.json;
  if (typeof json === "object" && json !== null && "error" in json) {
    const error = (json as { error: unknown }).error;
    if (typeof error === "string") return error;
  }
  return excerpt(answer.text);
}

const excerpt = (text: string) => text.length > 200 ? `${text.slice(0, 200)}…` : text;

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Resolves after `delay_ms`, or at once when `signal` aborts. */
export function sleep(delay_ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, delay_ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
