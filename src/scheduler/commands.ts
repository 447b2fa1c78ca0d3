/**
 * Commands: every change to the scheduler's state is one of these, appended to the log and
 * applied in order by the state machine. Everything that could differ between nodes or between
 * replays (ids, times, random jitter, next fire times computed by croner) is fixed here by the
 * proposer, so applying is a deterministic function of the state and the command.
 */
import type { JobRecord, Trigger } from "./model.ts";

/** Result of one delivery attempt, as recorded. */
export interface AttemptOutcome {
  ok: boolean;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
  duration_ms: number;
  response_excerpt: string | null;
  /** The worker the attempt ran on (a worker job); absent or null for a webhook call. */
  worker_id?: string | null;
}

export type Command =
  /** Creates jobs, all or none. `job_limit` is the capacity the proposer enforces. */
  | { type: "job.create"; at: number; jobs: JobRecord[]; job_limit: number }
  | { type: "job.delete"; at: number; job_id: string }
  | { type: "job.cancel"; at: number; job_id: string; reason: string }
  | { type: "job.pause"; at: number; job_id: string }
  | { type: "job.resume"; at: number; job_id: string; next_fire_at: number | null }
  /**
   * A job's due occurrence(s) are settled: the occurrence at `expected_fire_at` (the fence:
   * applied only while the job's next fire time still equals it, so an occurrence is claimed
   * once) and any later ones up to now are started, skipped or recorded missed, and the job
   * moves to `next_fire_at`.
   */
  | {
    type: "job.advance";
    at: number;
    job_id: string;
    expected_fire_at: number;
    next_fire_at: number | null;
    missed: { execution_id: string; first_at: number; last_at: number; count: number } | null;
    skipped: { execution_id: string; scheduled_at: number; reason: string } | null;
    start: {
      execution_id: string;
      scheduled_at: number;
      trigger: Exclude<Trigger, "manual">;
    } | null;
  }
  /** Run now, outside the schedule. */
  | { type: "job.trigger"; at: number; job_id: string; execution_id: string }
  /** A retry (or, with `redelivery`, a resend of the same attempt after a crash) begins. */
  | {
    type: "exec.attempt";
    at: number;
    execution_id: string;
    attempt: number;
    redelivery: boolean;
  }
  /** An attempt ended; `retry_at` (with jitter fixed by the proposer) when another follows. */
  | {
    type: "exec.finish";
    at: number;
    execution_id: string;
    attempt: number;
    outcome: AttemptOutcome;
    retry_at: number | null;
  }
  /** Drops finished executions older than `before` and beyond `per_job_max` per job. */
  | { type: "history.prune"; at: number; before: number; per_job_max: number };

export type CommandType = Command["type"];

/** The command types the jobs state machine applies. */
export const JOB_COMMAND_TYPES: readonly CommandType[] = [
  "job.create",
  "job.delete",
  "job.cancel",
  "job.pause",
  "job.resume",
  "job.advance",
  "job.trigger",
  "exec.attempt",
  "exec.finish",
  "history.prune",
];
