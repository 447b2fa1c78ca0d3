/** Decoding of table rows into domain records. */
import type { Row } from "@libsql/client/node";
import type {
  ExecutionRecord,
  ExecutionStatus,
  HttpMethod,
  JobRecord,
  JobStatus,
  JobType,
  OverlapPolicy,
  Trigger,
} from "./model.ts";

const num = (value: unknown): number | null => value === null ? null : Number(value);
const str = (value: unknown): string | null => value === null ? null : String(value);

/** A `jobs` row as a record. */
export function rowToJob(row: Row): JobRecord {
  return {
    id: String(row.id),
    name: str(row.name),
    type: row.type as JobType,
    type_alias: String(row.type_alias),
    run_at: num(row.run_at),
    cron_expression: str(row.cron_expression),
    interval_ms: num(row.interval_ms),
    timezone: String(row.timezone),
    starts_at: num(row.starts_at),
    ends_at: num(row.ends_at),
    webhook_url: str(row.webhook_url),
    method: row.method as HttpMethod,
    headers: JSON.parse(String(row.headers)),
    payload: JSON.parse(String(row.payload)),
    secret: str(row.secret),
    overlap_policy: row.overlap_policy as OverlapPolicy,
    catchup_window_ms: Number(row.catchup_window_ms),
    max_attempts: Number(row.max_attempts),
    timeout_ms: Number(row.timeout_ms),
    idempotency_key: str(row.idempotency_key),
    status: row.status as JobStatus,
    next_fire_at: num(row.next_fire_at),
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
    cancel_reason: str(row.cancel_reason),
    last_run_at: num(row.last_run_at),
    last_status: str(row.last_status) as ExecutionStatus | null,
    attempt_count: Number(row.attempt_count),
    run_count: Number(row.run_count),
    executor: row.executor == null ? null : JSON.parse(String(row.executor)),
  };
}

/** An `executions` row as a record. */
export function rowToExecution(row: Row): ExecutionRecord {
  return {
    id: String(row.id),
    job_id: String(row.job_id),
    scheduled_at: Number(row.scheduled_at),
    trigger: row.trigger as Trigger,
    status: row.status as ExecutionStatus,
    attempt: Number(row.attempt),
    started_at: Number(row.started_at),
    finished_at: num(row.finished_at),
    status_code: num(row.status_code),
    error_class: str(row.error_class),
    error: str(row.error),
    duration_ms: num(row.duration_ms),
    next_attempt_at: num(row.next_attempt_at),
    redeliveries: Number(row.redeliveries),
    missed_count: Number(row.missed_count),
    response_excerpt: str(row.response_excerpt),
    worker_id: str(row.worker_id ?? null),
  };
}
