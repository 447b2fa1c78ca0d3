/**
 * The webhook way to run an attempt: a signed HTTP call to the job's URL (`delivery.ts`). A job
 * without a URL only records its executions, as in the reference scheduler: its attempt succeeds
 * at once.
 *
 * @module
 */
import type { Clock } from "../../clock.ts";
import type { Attempt, AttemptResult, Dispatcher } from "../dispatcher.ts";
import { deliver, type WebhookMethod } from "./delivery.ts";

export interface WebhookDispatcherOptions {
  clock: Clock;
  /** `WEBHOOK_SECRET`: the signing secrets, unless a job has its own. */
  secrets: string[];
  /** `WEBHOOK_DENY_PRIVATE`: refuse private and loopback targets at delivery. */
  deny_private: boolean;
  /** Substitute for the global `fetch` (tests). */
  fetch?: typeof fetch;
}

/** The outcome of an occurrence of a job without a webhook: it completes at once. */
const NO_WEBHOOK: AttemptResult = {
  ok: true,
  status_code: null,
  error_class: null,
  error: null,
  retryable: false,
  aborted: false,
  duration_ms: 0,
  response_excerpt: null,
};

export class WebhookDispatcher implements Dispatcher {
  readonly #o: WebhookDispatcherOptions;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = options;
  }

  run({ job, execution_id, scheduled_at_ms, attempt, redelivery }: Attempt, signal: AbortSignal) {
    if (job.webhook_url === null) return Promise.resolve(NO_WEBHOOK);
    return deliver({
      job_id: job.id,
      execution_id,
      scheduled_at_ms,
      attempt,
      redelivery,
      payload: job.payload,
      url: job.webhook_url,
      method: job.method as WebhookMethod,
      headers: job.headers,
      secrets: job.secret !== null ? [job.secret] : this.#o.secrets,
      timeout_ms: job.timeout_ms,
    }, {
      clock: this.#o.clock,
      signal,
      fetch: this.#o.fetch,
      deny_private: this.#o.deny_private,
    });
  }
}
