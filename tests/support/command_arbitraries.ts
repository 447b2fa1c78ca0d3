/**
 * fast-check generators of valid commands (every type, edge values of every field), the number
 * of runs a property test makes (`FUZZ_RUNS` from the environment, else the CI default), and
 * mutations of JSON values for the "garbage in, typed error out" properties.
 *
 * @module
 */
import fc from "fast-check";
import type { AttemptOutcome, Command } from "../../src/scheduler/commands.ts";
import { TIME_MS_MAX } from "../../src/scheduler/command_codec.ts";
import type { JobRecord } from "../../src/scheduler/model.ts";

/** Runs of one property: `FUZZ_RUNS` when set (longer runs), else `ci_default`. */
export function fuzzRuns(ci_default: number): number {
  const runs = Number(Deno.env.get("FUZZ_RUNS") ?? "");
  return Number.isSafeInteger(runs) && runs > 0 ? runs : ci_default;
}

const ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID-shaped id (26 characters). */
export const ulidArb: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...ULID_CHARS),
  minLength: 26,
  maxLength: 26,
});

/** A time in ms: often at the edges of `Date`'s range, sometimes fractional. */
export const timeArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 4_102_444_800_000 }),
  fc.constantFrom(0, -TIME_MS_MAX, TIME_MS_MAX, 1),
  fc.double({ min: -TIME_MS_MAX, max: TIME_MS_MAX, noNaN: true }),
);

const countArb = fc.oneof(fc.nat({ max: 1_000 }), fc.constant(Number.MAX_SAFE_INTEGER));
const textArb = (maxLength: number) => fc.string({ maxLength, unit: "grapheme" });
const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });

/** A JSON payload (finite numbers, bounded depth). */
export const payloadArb: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 4 });

/** A stored job record, consistent with its type. */
export const jobArb: fc.Arbitrary<JobRecord> = fc.record({
  id: ulidArb,
  name: nullable(textArb(50)),
  type: fc.constantFrom("once", "cron", "interval"),
  type_alias: fc.constantFrom("once", "unico", "cron", "recurrente", "interval"),
  run_at: timeArb,
  cron_expression: fc.constantFrom("* * * * *", "*/5 * * * * *", "@daily"),
  interval_ms: fc.integer({ min: 1, max: 366 * 86_400_000 }),
  timezone: fc.constantFrom("UTC", "Europe/Madrid", "America/New_York"),
  starts_at: nullable(timeArb),
  ends_at: nullable(timeArb),
  webhook_url: nullable(fc.webUrl()),
  method: fc.constantFrom("POST", "PUT", "PATCH", "GET", "DELETE"),
  headers: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 20, unit: fc.constantFrom(..."abcxyz-_0") }),
    textArb(40),
    { maxKeys: 4 },
  ),
  payload: payloadArb,
  secret: nullable(fc.string({ minLength: 16, maxLength: 40 })),
  overlap_policy: fc.constantFrom("allow", "forbid", "replace"),
  catchup_window_ms: fc.nat(),
  max_attempts: fc.integer({ min: 1, max: 50 }),
  timeout_ms: fc.nat({ max: 3_600_000 }),
  idempotency_key: nullable(fc.string({ minLength: 1, maxLength: 30 })),
  status: fc.constantFrom(
    "pending",
    "in_progress",
    "completed",
    "failed",
    "missed",
    "paused",
    "cancelled",
  ),
  next_fire_at: nullable(timeArb),
  created_at: timeArb,
  updated_at: timeArb,
  cancel_reason: nullable(textArb(40)),
  last_run_at: nullable(timeArb),
  last_status: nullable(fc.constantFrom("completed", "failed", "skipped", "missed")),
  attempt_count: countArb,
  run_count: countArb,
  executor: fc.constant(null),
}).map((job): JobRecord => ({
  ...job,
  // What a job of each type needs; the others may be null.
  run_at: job.type === "once" ? job.run_at : null,
  cron_expression: job.type === "cron" ? job.cron_expression : null,
  interval_ms: job.type === "interval" ? job.interval_ms : null,
}));

const outcomeArb: fc.Arbitrary<AttemptOutcome> = fc.record({
  ok: fc.boolean(),
  status_code: nullable(fc.integer({ min: 0, max: 999 })),
  error_class: nullable(fc.constantFrom("timeout", "connection_error", "http_error")),
  error: nullable(textArb(60)),
  duration_ms: fc.oneof(fc.nat({ max: 3_600_000 }), fc.double({ min: 0, max: 1e6, noNaN: true })),
  response_excerpt: nullable(textArb(60)),
});

/** Ids from a small pool, so that generated commands often name the same job or execution. */
export const POOL_IDS: IdSources = {
  job: fc.constantFrom(
    "01J00000000000000000000001",
    "01J00000000000000000000002",
    "01J00000000000000000000003",
  ),
  execution: fc.constantFrom(
    "01JMISSED00000000000000000",
    "01JSKIPPED0000000000000000",
    "01JSTART000000000000000000",
    "01JEXEC0000000000000000001",
  ),
  fire_at: fc.constantFrom(1_700_000_000_000, 1_700_000_060_000),
};

/** Where the ids and fire times of generated commands come from. */
export interface IdSources {
  job: fc.Arbitrary<string>;
  execution: fc.Arbitrary<string>;
  /** Next and expected fire times (a small pool makes `job.advance` meet its fence). */
  fire_at: fc.Arbitrary<number>;
}

/**
 * A valid command of any type, with job and execution ids from `ids` (small pools make
 * commands meet the same jobs and executions).
 */
export function commandArb(
  ids: IdSources = { job: ulidArb, execution: ulidArb, fire_at: timeArb },
): fc.Arbitrary<Command> {
  const at = timeArb;
  const idArb = ids.job;
  return fc.oneof(
    fc.record({
      type: fc.constant("job.create" as const),
      at,
      jobs: fc.array(
        fc.tuple(jobArb, ids.job, nullable(ids.fire_at)).map((
          [job, id, next_fire_at],
        ): JobRecord => ({ ...job, id, next_fire_at })),
        { maxLength: 3 },
      ),
      job_limit: countArb,
    }),
    fc.record({ type: fc.constant("job.delete" as const), at, job_id: idArb }),
    fc.record({ type: fc.constant("job.cancel" as const), at, job_id: idArb, reason: textArb(40) }),
    fc.record({ type: fc.constant("job.pause" as const), at, job_id: idArb }),
    fc.record({
      type: fc.constant("job.resume" as const),
      at,
      job_id: idArb,
      next_fire_at: nullable(ids.fire_at),
    }),
    fc.record({
      type: fc.constant("job.advance" as const),
      at,
      job_id: idArb,
      expected_fire_at: ids.fire_at,
      next_fire_at: nullable(ids.fire_at),
      missed: nullable(
        fc.record({
          execution_id: fc.constant("01JMISSED00000000000000000"),
          first_at: fc.integer({ min: 0, max: 1e12 }),
          count: fc.integer({ min: 1, max: 1_000 }),
        }).map((m) => ({ ...m, last_at: m.first_at + m.count })),
      ),
      skipped: nullable(fc.record({
        execution_id: fc.constant("01JSKIPPED0000000000000000"),
        scheduled_at: timeArb,
        reason: textArb(40),
      })),
      start: nullable(fc.record({
        execution_id: fc.constant("01JSTART000000000000000000"),
        scheduled_at: timeArb,
        trigger: fc.constantFrom("schedule" as const, "catch_up" as const),
      })),
    }),
    fc.record({
      type: fc.constant("job.trigger" as const),
      at,
      job_id: idArb,
      execution_id: ids.execution,
    }),
    fc.record({
      type: fc.constant("exec.attempt" as const),
      at,
      execution_id: ids.execution,
      attempt: fc.integer({ min: 1, max: 60 }),
      redelivery: fc.boolean(),
    }),
    fc.record({
      type: fc.constant("exec.finish" as const),
      at,
      execution_id: ids.execution,
      attempt: fc.integer({ min: 1, max: 60 }),
      outcome: outcomeArb,
      retry_at: nullable(timeArb),
    }),
    fc.record({
      type: fc.constant("history.prune" as const),
      at,
      before: timeArb,
      per_job_max: countArb,
    }),
  );
}

/** Every path (keys and indexes) to a value inside `value`, the root included. */
export function pathsOf(value: unknown): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    out.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (typeof v === "object" && v !== null) {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    }
  };
  walk(value, []);
  return out;
}

/** A copy of JSON `value` with the value at `path` replaced by `replacement` (or deleted). */
export function mutateAt(
  value: unknown,
  path: (string | number)[],
  replacement: unknown,
  remove: boolean,
): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (remove) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = replacement;
  return copy;
}

/** A text edit: replace, insert or delete characters at a position. */
export const textEditArb = fc.record({
  at: fc.nat(),
  remove: fc.nat({ max: 8 }),
  insert: fc.string({ maxLength: 8 }),
});

/** `text` with `edit` applied (the position wraps around the length). */
export function applyTextEdit(
  text: string,
  edit: { at: number; remove: number; insert: string },
): string {
  const at = text.length === 0 ? 0 : edit.at % text.length;
  return text.slice(0, at) + edit.insert + text.slice(at + edit.remove);
}
