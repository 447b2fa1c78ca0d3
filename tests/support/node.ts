/**
 * A real node for API tests: started in-process on loopback over a libSQL file in a fresh temp
 * dir, called over real HTTP. `withNode` stops the node, closes every sink the test opened and
 * removes the temp dir in a `finally`, so a failing test leaves nothing running.
 *
 * @example
 * ```ts
 * await withNode({ queue_job_limit: 3 }, async (t) => {
 *   const sink = await t.sink();
 *   const res = await t.post("/jobs", { type: "once", timestamp, webhook_url: sink.url });
 *   assert.equal(res.status, 201);
 * });
 * ```
 *
 * @module
 */
import { type Config, defaultConfig } from "../../src/config.ts";
import { type Logger, silentLogger } from "../../src/logger.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { type Sink, type SinkOptions, startSink } from "./sink.ts";
import { sleep } from "./wait.ts";

/** A response read whole: status, headers and the body parsed as JSON (or the text). */
export interface ApiResponse {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  text: string;
}

/** What a test gets from {@link withNode}. */
export interface TestNode {
  node: RunningNode;
  url: string;
  config: Config;
  /** Sends a request; `body` is JSON-encoded unless it is a string (sent as is). */
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResponse>;
  get(path: string): Promise<ApiResponse>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** Starts a sink that is closed when the test ends. */
  sink(opts?: SinkOptions): Promise<Sink>;
  /** Polls `GET path` until `predicate` holds; throws with the last body after `timeout_ms`. */
  // deno-lint-ignore no-explicit-any
  poll(path: string, predicate: (body: any) => boolean, timeout_ms?: number): Promise<any>;
}

/** Grace given to in-flight deliveries when a test's node stops. */
const STOP_GRACE_MS = 200;
const POLL_EVERY_MS = 20;

/** Runs `fn` against a fresh node configured with `overrides`; always cleans up. */
export async function withNode(
  overrides: Partial<Config>,
  fn: (t: TestNode) => Promise<void>,
  opts: { logger?: Logger } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-api-" });
  const sinks: Sink[] = [];
  let node: RunningNode | undefined;
  try {
    const config = defaultConfig({
      host: "127.0.0.1",
      http_port: 0,
      data_dir: dir,
      ...overrides,
    });
    node = await startNode(config, { logger: opts.logger ?? silentLogger });
    const url = node.url;
    const request = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<ApiResponse> => {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)["Content-Type"] ??= "application/json";
      }
      const response = await fetch(url + path, init);
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (e.g. /metrics): keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    };
    const running = node;
    await fn({
      node: running,
      url,
      config,
      request,
      get: (path) => request("GET", path),
      post: (path, body, headers) => request("POST", path, body, headers),
      sink: async (opts) => {
        const sink = await startSink(opts);
        sinks.push(sink);
        return sink;
      },
      poll: async (path, predicate, timeout_ms = 5_000) => {
        const deadline = Date.now() + timeout_ms;
        let last: ApiResponse = await request("GET", path);
        while (!predicate(last.body)) {
          if (Date.now() > deadline) {
            throw new Error(
              `GET ${path}: condition not met within ${timeout_ms} ms; last (${last.status}): ${last.text}`,
            );
          }
          await sleep(POLL_EVERY_MS);
          last = await request("GET", path);
        }
        return last.body;
      },
    });
  } finally {
    await Promise.allSettled(sinks.map((s) => s.close()));
    await node?.stop(STOP_GRACE_MS);
    await Deno.remove(dir, { recursive: true });
  }
}

/** ISO time `ms` from now. */
export function inMs(ms: number): string {
  return new Date(Date.now() + ms).toISOString();
}
