/**
 * The retry policy of every way an occurrence runs (a webhook call, a worker allocation): which
 * outcomes are worth another attempt, and how long to wait before it (exponential backoff with
 * equal jitter, the random share fixed by the proposer in the replicated command).
 *
 * @module
 */
import type { AttemptResult } from "./dispatcher.ts";

/**
 * Delay before the next attempt after attempt `attempt` failed, with "equal jitter": the
 * exponential ceiling `min(max_ms, base_ms * 2^(attempt-1))` halved, plus a random share of the
 * other half. The delay stays within [ceiling/2, ceiling], so a failing receiver always gets a
 * pause, while retries from many jobs still spread. `random01` in [0, 1] is injected so the
 * caller can fix it in a replicated command. Throws RangeError for invalid arguments.
 */
export function backoffDelayMs(
  attempt: number,
  policy: { base_ms: number; max_ms: number },
  random01: number,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
  if (!(policy.base_ms >= 0) || !(policy.max_ms >= 0) || !Number.isFinite(policy.max_ms)) {
    throw new RangeError(`invalid backoff policy ${JSON.stringify(policy)}`);
  }
  if (!(random01 >= 0 && random01 <= 1)) {
    throw new RangeError(`random01 must be in [0, 1], got ${random01}`);
  }
  const exponent = Math.min(attempt - 1, 1023);
  const ceiling_ms = Math.min(policy.max_ms, policy.base_ms * 2 ** exponent);
  const half_ms = ceiling_ms / 2;
  return Math.round(half_ms + random01 * half_ms);
}

/**
 * Whether a response status is worth another attempt: 5xx, 408 (request timeout), 425 (too
 * early) and 429 (too many requests). Other 4xx and 3xx (redirects are not followed) are not.
 */
export function isRetryableStatus(status_code: number): boolean {
  return status_code >= 500 || status_code === 408 || status_code === 425 ||
    status_code === 429;
}

/**
 * When the attempt after `attempt` runs, or null when none follows: a failure worth another
 * attempt (`retryable`) while the job has attempts left, after the backoff.
 */
export function nextAttemptAt(
  result: Pick<AttemptResult, "ok" | "retryable">,
  attempt: number,
  max_attempts: number,
  policy: { base_ms: number; max_ms: number },
  random01: number,
  now_ms: number,
): number | null {
  if (result.ok || !result.retryable || attempt >= max_attempts) return null;
  return now_ms + backoffDelayMs(attempt, policy, random01);
}
