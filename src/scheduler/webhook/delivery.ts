/**
 * Webhook delivery: sends one attempt of one execution and reports what happened. It holds no
 * scheduling state: retries (src/scheduler/retry.ts), backoff timing and recording outcomes
 * belong to the caller, which passes the results through the replicated log. Which targets are
 * allowed is `target_policy.ts`; the body and its signature are `signing.ts`. The wire contract
 * is documented in `docs/webhooks.md`.
 *
 * @example
 * ```ts
 * const result = await deliver({
 *   job_id: "job-1", execution_id: "exec-1", scheduled_at_ms: Date.UTC(2026, 0, 1), attempt: 1,
 *   redelivery: false, payload: { hello: "world" }, url: "http://127.0.0.1:8080/hook",
 *   method: "POST", headers: {}, secrets: ["s3cret"], timeout_ms: 10_000,
 * }, { clock: systemClock });
 * if (!result.ok && result.retryable) console.log(`attempt 1 failed: ${result.error}`);
 * ```
 *
 * @module
 */
import type { Clock } from "../../clock.ts";
import type { PinnedRequest } from "../../runtime.ts";
import type { AttemptResult } from "../dispatcher.ts";
import { isRetryableStatus } from "../retry.ts";
import { idempotencyKey, signatureHeader, webhookBody } from "./signing.ts";
import {
  checkedTarget,
  DeniedTargetError,
  isReservedHeader,
  systemResolve,
  webhookUrlProblem,
} from "./target_policy.ts";

/** HTTP methods a job may use. GET and DELETE carry no body. */
export type WebhookMethod = "POST" | "PUT" | "PATCH" | "GET" | "DELETE";

/** One attempt to deliver one execution of a job. */
export interface DeliveryRequest {
  job_id: string;
  execution_id: string;
  /** The occurrence this execution belongs to, in Unix milliseconds. */
  scheduled_at_ms: number;
  /** 1 for the first attempt of an execution, 2 for its first retry, and so on. */
  attempt: number;
  /** True when re-sent after a crash or failover for the same attempt. */
  redelivery: boolean;
  /** The job's JSON payload; `undefined` is sent as `null`. */
  payload: unknown;
  url: string;
  method: WebhookMethod;
  /** Extra headers from the job; reserved names (see {@link isReservedHeader}) are dropped. */
  headers: Record<string, string>;
  /** HMAC secrets; the request is signed with each (rotation). Empty: unsigned. */
  secrets: string[];
  /** Limit for the whole attempt: connect, send, response headers and the body excerpt. */
  timeout_ms: number;
}

/** Options of {@link deliver}. */
export interface DeliverOptions {
  /** Source of the signature timestamp, the duration and the timeout timer. */
  clock: Clock;
  /** Aborting it stops the attempt; the result then has `aborted: true`. */
  signal?: AbortSignal;
  /** Substitute for the global `fetch` (tests). */
  fetch?: typeof fetch;
  /**
   * `WEBHOOK_DENY_PRIVATE`: refuse targets whose address (a literal, or every address the name
   * resolves to now) is in a range {@link deniedAddressRange} names; an http target is then
   * connected to the address that was checked. Off by default.
   */
  deny_private?: boolean;
  /** Resolves a host name to its addresses when `deny_private` is on; the system resolver by default. */
  resolve?: (hostname: string) => Promise<string[]>;
}

/** Version reported in the `User-Agent` header. */
export const TICKRAFT_VERSION = "0.1.0";

/** Characters of the response body kept in {@link AttemptResult.response_excerpt}. */
export const RESPONSE_EXCERPT_MAX_CHARS = 512;

/** Bytes of a response body read (and mostly discarded) before the rest is cancelled. */
export const RESPONSE_DRAIN_MAX_BYTES = 64 * 1024;

/** Bytes that always hold at least {@link RESPONSE_EXCERPT_MAX_CHARS} complete UTF-8 characters. */
const EXCERPT_MAX_BYTES = RESPONSE_EXCERPT_MAX_CHARS * 4;

const ERROR_MAX_CHARS = 512;

/** Methods sent without a body. */
const BODYLESS_METHODS: ReadonlySet<WebhookMethod> = new Set(["GET", "DELETE"]);

/** Failure texts of Deno's fetch (hyper / getaddrinfo) that mean name resolution failed. */
const DNS_FAILURE =
  /dns error|getaddrinfo|failed to lookup address|name or service not known|nodename nor servname|temporary failure in name resolution|no address associated with hostname/i;

function clip(text: string, max_chars: number): string {
  return text.length <= max_chars ? text : `${text.slice(0, max_chars - 1)}…`;
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}

function abortReasonText(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? "no reason" : String(reason);
}

/** Reads at most RESPONSE_DRAIN_MAX_BYTES of the body, keeps an excerpt, cancels the rest. */
async function readExcerpt(res: Response): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const head = new Uint8Array(EXCERPT_MAX_BYTES);
  let head_bytes = 0;
  let read_bytes = 0;
  try {
    while (read_bytes < RESPONSE_DRAIN_MAX_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, EXCERPT_MAX_BYTES - head_bytes);
      head.set(value.subarray(0, take), head_bytes);
      head_bytes += take;
      read_bytes += value.byteLength;
    }
  } catch {
    // A body cut short (timeout, reset) still leaves the status as the outcome.
  } finally {
    await reader.cancel().catch(() => {});
  }
  const text = new TextDecoder().decode(head.subarray(0, head_bytes));
  return Array.from(text).slice(0, RESPONSE_EXCERPT_MAX_CHARS).join("");
}

/** Outgoing headers: the job's (minus reserved ones) and Tickraft's own. */
async function buildHeaders(
  req: DeliveryRequest,
  body: string,
  now_ms: number,
  has_body: boolean,
): Promise<Headers> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (!isReservedHeader(name)) headers.set(name, value);
  }
  const timestamp_s = Math.floor(now_ms / 1000);
  if (has_body) headers.set("Content-Type", "application/json");
  headers.set("User-Agent", `tickraft/${TICKRAFT_VERSION}`);
  headers.set("Idempotency-Key", idempotencyKey(req.job_id, req.scheduled_at_ms));
  headers.set("X-Tickraft-Timestamp", String(timestamp_s));
  if (req.secrets.length > 0) {
    headers.set("X-Tickraft-Signature", await signatureHeader(req.secrets, timestamp_s, body));
  }
  headers.set("X-Tickraft-Job-Id", req.job_id);
  headers.set("X-Tickraft-Execution-Id", req.execution_id);
  headers.set("X-Tickraft-Attempt", String(req.attempt));
  headers.set("X-Tickraft-Scheduled-At", new Date(req.scheduled_at_ms).toISOString());
  if (req.redelivery) headers.set("X-Tickraft-Redelivery", "true");
  return headers;
}

/**
 * Sends one attempt and classifies the outcome; never throws for network or HTTP failures.
 * Success is a 2xx. Redirects are not followed (a 3xx is a non-retryable `http_error`). Only
 * the first {@link RESPONSE_DRAIN_MAX_BYTES} of a response body are read. A request that
 * cannot be sent at all (bad URL, blocked port, invalid job header) is a non-retryable
 * `connection_error`. With `opts.deny_private`, a target in a refused range (checked after
 * resolving the name, see {@link deniedAddressRange}) is a non-retryable `denied`, and nothing
 * is sent. Aborting `opts.signal` ends the attempt with `aborted: true`, `error_class: null` and
 * `retryable: false`.
 */
export async function deliver(req: DeliveryRequest, opts: DeliverOptions): Promise<AttemptResult> {
  const { clock, signal } = opts;
  const fetchFn = opts.fetch ?? fetch;
  const started_ms = clock.now();
  const result = (
    fields: Omit<AttemptResult, "duration_ms" | "aborted"> & { aborted?: boolean },
  ): AttemptResult => ({
    aborted: false,
    ...fields,
    error: fields.error === null ? null : clip(fields.error, ERROR_MAX_CHARS),
    duration_ms: Math.max(0, clock.now() - started_ms),
  });
  const abortedResult = (reason: unknown): AttemptResult =>
    result({
      ok: false,
      status_code: null,
      error_class: null,
      error: `aborted: ${abortReasonText(reason)}`,
      retryable: false,
      aborted: true,
      response_excerpt: null,
    });
  const rejected = (reason: string): AttemptResult =>
    result({
      ok: false,
      status_code: null,
      error_class: "connection_error",
      error: `request not sent: ${reason}`,
      retryable: false,
      response_excerpt: null,
    });

  if (signal?.aborted) return abortedResult(signal.reason);
  const url_problem = webhookUrlProblem(req.url);
  if (url_problem !== null) return rejected(url_problem);

  const has_body = !BODYLESS_METHODS.has(req.method);
  const body = has_body ? webhookBody(req) : "";
  let headers: Headers;
  try {
    headers = await buildHeaders(req, body, started_ms, has_body);
  } catch (err) {
    return rejected(errorText(err));
  }

  let ended_by: "timeout" | "caller" | null = null;
  const controller = new AbortController();
  const timer = clock.setTimeout(() => {
    ended_by ??= "timeout";
    controller.abort(new DOMException(`timed out after ${req.timeout_ms} ms`, "TimeoutError"));
  }, req.timeout_ms);
  const onCallerAbort = () => {
    ended_by ??= "caller";
    controller.abort(signal?.reason);
  };
  signal?.addEventListener("abort", onCallerAbort, { once: true });

  let pinned: PinnedRequest | undefined;
  try {
    let res: Response;
    try {
      if (opts.deny_private) {
        pinned = await checkedTarget(
          new URL(req.url),
          opts.resolve ?? systemResolve,
          controller.signal,
        );
      }
      for (const [name, value] of Object.entries(pinned?.headers ?? {})) headers.set(name, value);
      res = await fetchFn(pinned?.url ?? req.url, {
        method: req.method,
        headers,
        body: has_body ? body : undefined,
        redirect: "manual",
        signal: controller.signal,
        ...pinned?.init,
      });
    } catch (err) {
      if (err instanceof DeniedTargetError) {
        return result({
          ok: false,
          status_code: null,
          error_class: "denied",
          error: err.message,
          retryable: false,
          response_excerpt: null,
        });
      }
      if (ended_by === "caller") return abortedResult(signal?.reason);
      if (ended_by === "timeout") {
        return result({
          ok: false,
          status_code: null,
          error_class: "timeout",
          error: `timeout: no response within ${req.timeout_ms} ms`,
          retryable: true,
          response_excerpt: null,
        });
      }
      const text = errorText(err);
      return result({
        ok: false,
        status_code: null,
        error_class: DNS_FAILURE.test(text) ? "dns_error" : "connection_error",
        error: text,
        retryable: true,
        response_excerpt: null,
      });
    }
    const excerpt = await readExcerpt(res);
    const status = res.status;
    if (status >= 200 && status < 300) {
      return result({
        ok: true,
        status_code: status,
        error_class: null,
        error: null,
        retryable: false,
        response_excerpt: excerpt,
      });
    }
    const location = res.headers.get("location");
    const error = status >= 300 && status < 400
      ? `HTTP ${status}: redirect not followed${location === null ? "" : ` (to ${location})`}`
      : `HTTP ${status}`;
    return result({
      ok: false,
      status_code: status,
      error_class: "http_error",
      error,
      retryable: isRetryableStatus(status),
      response_excerpt: excerpt,
    });
  } finally {
    pinned?.close();
    clock.clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}
