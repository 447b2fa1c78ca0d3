/**
 * Between the firing loop and how an occurrence runs. The scheduler claims an occurrence through
 * the log, hands each attempt to a `Dispatcher`, records the outcome through the log and decides
 * on a retry with the one retry policy (`src/scheduler/retry.ts`); a dispatcher only runs the
 * attempt: a webhook call (`src/scheduler/webhook/dispatcher.ts`) now, an allocation on a
 * worker next.
 *
 * @module
 */
import type { JobRecord } from "./model.ts";

/** One attempt of one occurrence of a job. */
export interface Attempt {
  job: JobRecord;
  execution_id: string;
  scheduled_at_ms: number;
  /** 1 for the first attempt; a redelivery repeats the attempt number it resends. */
  attempt: number;
  /** The attempt was in flight when the node (or the leader) stopped, and is sent again. */
  redelivery: boolean;
}

/**
 * Why an attempt failed: the classes of the reference scheduler, and `denied` for a target that
 * `WEBHOOK_DENY_PRIVATE` refuses (never retried), `worker_error` for an allocation a worker
 * reported failed (a non-zero exit code, a handler that did not answer 2xx).
 */
export type ErrorClass =
  | "timeout"
  | "connection_error"
  | "dns_error"
  | "http_error"
  | "denied"
  | "worker_error";

/** What became of an attempt. */
export interface AttemptResult {
  ok: boolean;
  /** The HTTP status of the receiver's answer, when there was one. */
  status_code: number | null;
  error_class: ErrorClass | null;
  error: string | null;
  /** Whether another attempt may succeed (the retry policy still bounds it). */
  retryable: boolean;
  /** Stopped by its signal (cancel, replace, shutdown): nothing is recorded for it. */
  aborted: boolean;
  duration_ms: number;
  /** The start of the answer's body, bounded. */
  response_excerpt: string | null;
  /** The worker it ran on, for a worker job. */
  worker_id?: string | null;
}

/** Runs attempts. */
export interface Dispatcher {
  /** Runs `attempt`; aborting `signal` stops it, and it resolves with `aborted: true`. */
  run(attempt: Attempt, signal: AbortSignal): Promise<AttemptResult>;
}
