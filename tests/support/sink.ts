/**
 * A real HTTP webhook receiver on loopback for tests and benchmarks: it records every request
 * and answers as the test tells it to.
 *
 * @example
 * ```ts
 * const sink = await startSink({ respond: (_req, n) => ({ status: n === 1 ? 500 : 200 }) });
 * try {
 *   // point a job at `${sink.url}/hook` ...
 *   await sink.waitFor((reqs) => reqs.length >= 2, 5_000);
 * } finally {
 *   await sink.close();
 * }
 * ```
 *
 * @module
 */
import { type Clock, systemClock } from "../../src/clock.ts";

/** One request as the sink received it. */
export interface RecordedRequest {
  method: string;
  /** Path and query string, e.g. `/hook?x=1`. */
  path: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: unknown;
  /** When the request head arrived, Unix milliseconds. */
  arrived_at_ms: number;
  /** The `Idempotency-Key` header, or null. */
  idempotency_key: string | null;
}

/** How the sink answers one request. */
export interface SinkResponse {
  status: number;
  /** Wait this long before answering (cut short when the sink closes). */
  delay_ms?: number;
  body?: string;
}

/** Options of {@link startSink}. */
export interface SinkOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Chooses the answer; `n` is the 1-based ordinal of the request. Default: 200, empty body. */
  respond?: (req: RecordedRequest, n: number) => SinkResponse;
  /** Called for each request as it arrives (before answering). */
  onRequest?: (req: RecordedRequest) => void;
  /** Keep requests in `requests` (default true); long benchmarks turn it off to bound memory. */
  record?: boolean;
  /** Source of `arrived_at_ms`; defaults to the system clock. */
  clock?: Clock;
}

/** A running sink. */
export interface Sink extends AsyncDisposable {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:43210`. */
  url: string;
  port: number;
  /** Every request so far, in arrival order (empty when `record` is false). */
  requests: RecordedRequest[];
  /** Resolves once `predicate(requests)` holds; rejects after `timeout_ms`. */
  waitFor(predicate: (reqs: RecordedRequest[]) => boolean, timeout_ms: number): Promise<void>;
  /** Stops the server, cutting short any delayed answers; safe to call more than once. */
  close(): Promise<void>;
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Resolves after `delay_ms`, or early when `signal` aborts; leaves no timer behind. */
function sleep(delay_ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, delay_ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Starts a sink on 127.0.0.1. Close it with `close()` (or `await using`). */
export function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const clock = opts.clock ?? systemClock;
  const respond: (req: RecordedRequest, n: number) => SinkResponse = opts.respond ??
    (() => ({ status: 200 }));
  const record = opts.record ?? true;
  const requests: RecordedRequest[] = [];
  const listeners = new Set<() => void>();
  const closing = new AbortController();
  let count = 0;

  const handler = async (request: Request): Promise<Response> => {
    const arrived_at_ms = clock.now();
    const body = await request.text();
    const url = new URL(request.url);
    const recorded: RecordedRequest = {
      method: request.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(request.headers),
      body,
      json: parseJson(body),
      arrived_at_ms,
      idempotency_key: request.headers.get("idempotency-key"),
    };
    count++;
    if (record) requests.push(recorded);
    opts.onRequest?.(recorded);
    for (const notify of listeners) notify();
    const answer = respond(recorded, count);
    if (answer.delay_ms !== undefined && answer.delay_ms > 0) {
      await sleep(answer.delay_ms, closing.signal);
    }
    return new Response(answer.body ?? null, { status: answer.status });
  };

  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: opts.port ?? 0,
      onListen: ({ port }) => {
        let closed: Promise<void> | undefined;
        const close = () => {
          closing.abort();
          closed ??= server.shutdown();
          return closed;
        };
        resolve({
          url: `http://127.0.0.1:${port}`,
          port,
          requests,
          waitFor: (predicate, timeout_ms) =>
            new Promise<void>((resolveWait, rejectWait) => {
              const check = () => {
                if (!predicate(requests)) return;
                finish();
                resolveWait();
              };
              const finish = () => {
                clearTimeout(timer);
                listeners.delete(check);
              };
              const timer = setTimeout(() => {
                finish();
                rejectWait(
                  new Error(`sink: condition not met within ${timeout_ms} ms (${count} requests)`),
                );
              }, timeout_ms);
              listeners.add(check);
              check();
            }),
          close,
          [Symbol.asyncDispose]: close,
        });
      },
    }, handler);
  });
}
