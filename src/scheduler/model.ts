/**
 * The scheduler's domain records as the state machine stores them. Times are epoch milliseconds.
 */

import type { WorkerExecutor } from "./executor.ts";

/** How a job recurs. The seed's Spanish names map onto these: unico → once, recurrente → cron. */
export type JobType = "once" | "cron" | "interval";

/**
 * Job lifecycle (the seed's, extended):
 * - `pending`: waiting for its next occurrence;
 * - `in_progress`: a delivery is in flight or waiting for a retry;
 * - `completed`: a one-off delivered, or a recurring job past its `ends_at`;
 * - `failed`: a one-off whose last attempt failed;
 * - `missed`: a one-off whose time passed, while the node was down, beyond its catch-up window;
 * - `paused`: fires nothing until resumed; `cancelled`: stopped for good, with a reason.
 */
export type JobStatus =
  | "pending"
  | "in_progress"
  | "completed"
  | "failed"
  | "missed"
  | "paused"
  | "cancelled";

export const JOB_STATUSES: readonly JobStatus[] = [
  "pending",
  "in_progress",
  "completed",
  "failed",
  "missed",
  "paused",
  "cancelled",
];

/** What happens when a recurring job comes due while an earlier occurrence is still running. */
export type OverlapPolicy = "allow" | "forbid" | "replace";

export type HttpMethod = "POST" | "PUT" | "PATCH" | "GET" | "DELETE";

/** A job as stored. */
export interface JobRecord {
  id: string;
  name: string | null;
  type: JobType;
  /** The type name the client used (`unico`, `recurrente`, `once`, …), echoed back. */
  type_alias: string;
  run_at: number | null;
  cron_expression: string | null;
  interval_ms: number | null;
  timezone: string;
  starts_at: number | null;
  ends_at: number | null;
  /** Null: the job records its executions without calling anything (as in the seed). */
  webhook_url: string | null;
  method: HttpMethod;
  headers: Record<string, string>;
  payload: unknown;
  secret: string | null;
  overlap_policy: OverlapPolicy;
  catchup_window_ms: number;
  max_attempts: number;
  timeout_ms: number;
  idempotency_key: string | null;
  status: JobStatus;
  next_fire_at: number | null;
  created_at: number;
  updated_at: number;
  cancel_reason: string | null;
  last_run_at: number | null;
  last_status: ExecutionStatus | null;
  /** Webhook attempts made for this job, retries and redeliveries included. */
  attempt_count: number;
  /** Occurrences started (deliveries begun, not counting retries). */
  run_count: number;
  /** Null: each occurrence is a webhook call; else it runs on workers (src/workers/). */
  executor: WorkerExecutor | null;
}

/** Why an execution exists. */
export type Trigger = "schedule" | "catch_up" | "manual";

/**
 * Execution lifecycle: `in_progress` → `completed` | `retrying` → … | `failed`; an occurrence
 * that did not run is `skipped` (overlap forbid) or `missed` (outside the catch-up window); a
 * delivery stopped by cancel or delete is `cancelled`, one superseded by overlap replace is
 * `replaced`.
 */
export type ExecutionStatus =
  | "in_progress"
  | "retrying"
  | "completed"
  | "failed"
  | "skipped"
  | "missed"
  | "cancelled"
  | "replaced";

/** One occurrence of a job and what became of it. */
export interface ExecutionRecord {
  id: string;
  job_id: string;
  scheduled_at: number;
  trigger: Trigger;
  status: ExecutionStatus;
  attempt: number;
  started_at: number;
  finished_at: number | null;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
  duration_ms: number | null;
  next_attempt_at: number | null;
  redeliveries: number;
  missed_count: number;
  response_excerpt: string | null;
  /** The worker a worker job's attempt last ran on. */
  worker_id: string | null;
}
