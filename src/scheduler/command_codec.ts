/**
 * The command codec: how commands are written into log entries and read back.
 *
 * The text is JSON (an array of commands), as it always was, so entries written before this
 * module existed decode the same. What this module adds is validation: a decoded entry comes
 * from disk or from a peer, and applying it must not be able to throw, on any node, at any
 * restart. So {@link decodeCommands} checks every command fully — its type, every field's type
 * and range, nested records (`JobRecord`, the attempt outcome) and the depth and sizes of the
 * free-form values (`payload`, `headers`) — and throws {@link CommandCodecError} with the path
 * of the first bad field, never anything else.
 *
 * Encoding runs the same checks ({@link validateCommands}) before `JSON.stringify`, and turns a
 * failure of the stringify itself (a BigInt, a cycle or a value too deep for the stack) into the
 * same error: whatever was encoded decodes again, and what cannot be encoded is refused to its
 * proposer before anything is persisted. The logs validate each proposal when it is proposed (so
 * one bad proposal cannot fail the group it would have been committed with) and encode the group
 * with `stringifyChecked` (src/log/codec.ts).
 *
 * Unknown extra keys of a command or a record are ignored (they are carried, never applied).
 * The limits in {@link COMMAND_LIMITS} are ceilings above anything the HTTP edge lets in; they
 * exist so that a forged or corrupt entry has bounded cost, not to shape user input.
 *
 * @example
 * ```ts
 * const text = encodeCommands([{ type: "job.pause", at: 1, job_id: "01J..." }]);
 * decodeCommands(text); // the same commands, validated
 * decodeCommands("[{}]"); // throws CommandCodecError: 0.type: ...
 * ```
 *
 * @module
 */
import type { AttemptOutcome, Command } from "./commands.ts";
import { workerExecutorSchema } from "./executor.ts";
import { CommandCodecError, parseChecked, stringifyChecked } from "../log/codec.ts";

/** Ceilings of a valid command. The HTTP edge's (configurable) limits must stay below them. */
export const COMMAND_LIMITS = {
  /** Ids of jobs and executions (ULIDs are 26). */
  id_chars_max: 64,
  /** Short texts: names, aliases, cron expressions, time zones, keys, error classes. */
  short_text_chars_max: 1_024,
  /** Long texts: URLs, secrets, reasons, errors, response excerpts. */
  text_chars_max: 65_536,
  /** Headers of one job. */
  headers_max: 1_000,
  header_value_chars_max: 65_536,
  /** Nesting of a job's payload: a scalar is depth 0, `{"a": 1}` is depth 1. */
  payload_depth_max: 256,
  /** Values (scalars, arrays, objects) in one job's payload. */
  payload_values_max: 1_000_000,
  /** One string (or object key) inside a payload. */
  payload_string_chars_max: 16 << 20,
  /** Jobs in one `job.create`. */
  jobs_max: 1_000_000,
  /** Attempts of one execution. */
  attempts_max: 1_000_000,
} as const;

/** The largest time a `Date` can hold (±100,000,000 days around the epoch), in ms. */
export const TIME_MS_MAX = 8.64e15;

type Fields = Record<string, unknown>;

const JOB_TYPES = new Set(["once", "cron", "interval"]);
const JOB_STATUSES = new Set([
  "pending",
  "in_progress",
  "completed",
  "failed",
  "missed",
  "paused",
  "cancelled",
]);
const EXECUTION_STATUSES = new Set([
  "in_progress",
  "retrying",
  "completed",
  "failed",
  "skipped",
  "missed",
  "cancelled",
  "replaced",
]);
const METHODS = new Set(["POST", "PUT", "PATCH", "GET", "DELETE"]);
const OVERLAP_POLICIES = new Set(["allow", "forbid", "replace"]);
const START_TRIGGERS = new Set(["schedule", "catch_up"]);

// ------------------------------------------------------------------------------ field checks

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `a string of ${value.length} characters`;
  if (typeof value === "number") return String(value);
  return typeof value;
}

function bad(path: string, want: string, value: unknown): never {
  throw new CommandCodecError(path, `must be ${want}, got ${describe(value)}`);
}

function isRecord(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An object JSON.parse could have made (no class instance such as a Date or a Map). */
function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function record(value: unknown, path: string): Fields {
  if (!isRecord(value)) bad(path, "an object", value);
  return value;
}

function time(v: unknown, key: string): void {
  // NaN fails both comparisons.
  if (!(typeof v === "number" && v >= -TIME_MS_MAX && v <= TIME_MS_MAX)) {
    bad(key, `a time in epoch ms within ±${TIME_MS_MAX}`, v);
  }
}

function timeOrNull(v: unknown, key: string): void {
  if (v !== null) time(v, key);
}

function count(v: unknown, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): void {
  if (!(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max)) {
    bad(key, `an integer in [${min}, ${max}]`, v);
  }
}

function countOrNull(v: unknown, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): void {
  if (v !== null) count(v, key, min, max);
}

function duration(v: unknown, key: string): void {
  if (!(typeof v === "number" && v >= 0 && v <= TIME_MS_MAX)) {
    bad(key, `a duration in ms within [0, ${TIME_MS_MAX}]`, v);
  }
}

function text(v: unknown, key: string, max: number, min = 0): void {
  if (!(typeof v === "string" && v.length >= min && v.length <= max)) {
    bad(key, `a string of ${min} to ${max} characters`, v);
  }
}

function textOrNull(v: unknown, key: string, max: number, min = 0): void {
  if (v !== null) text(v, key, max, min);
}

function id(v: unknown, key: string): void {
  text(v, key, COMMAND_LIMITS.id_chars_max, 1);
}

function oneOf(v: unknown, key: string, allowed: ReadonlySet<string>): void {
  if (!(typeof v === "string" && allowed.has(v))) bad(key, `one of ${[...allowed]}`, v);
}

function bool(v: unknown, key: string): void {
  if (typeof v !== "boolean") bad(key, "true or false", v);
}

/** Ids that one command creates must differ: each becomes a row with that primary key. */
function distinct(ids: (string | undefined)[], path: string): void {
  const present = ids.filter((x) => x !== undefined);
  if (new Set(present).size !== present.length) {
    throw new CommandCodecError(path, "execution ids of one command must differ");
  }
}

// ------------------------------------------------------------------------- free-form values

/**
 * Checks that `value` is plain JSON (null, booleans, finite numbers, strings, arrays, objects
 * whose prototype is Object's or null) within the payload limits. The depth bound also stops
 * cycles. Returns the values counted so far, against {@link COMMAND_LIMITS.payload_values_max}.
 */
function jsonValue(value: unknown, path: string, depth: number, values: number): number {
  if (++values > COMMAND_LIMITS.payload_values_max) {
    throw new CommandCodecError(
      path,
      `holds more than ${COMMAND_LIMITS.payload_values_max} values`,
    );
  }
  switch (typeof value) {
    case "boolean":
      return values;
    case "number":
      if (!Number.isFinite(value)) bad(path, "a finite number", value);
      return values;
    case "string":
      if (value.length > COMMAND_LIMITS.payload_string_chars_max) {
        bad(
          path,
          `a string of at most ${COMMAND_LIMITS.payload_string_chars_max} characters`,
          value,
        );
      }
      return values;
    case "object":
      break;
    default:
      bad(path, "a JSON value", value);
  }
  if (value === null) return values;
  if (depth >= COMMAND_LIMITS.payload_depth_max) {
    throw new CommandCodecError(
      path,
      `nests deeper than ${COMMAND_LIMITS.payload_depth_max} levels`,
    );
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) values = jsonValue(value[i], path, depth + 1, values);
    return values;
  }
  if (!isPlain(value)) bad(path, "a plain JSON object", value);
  // for-in (no key array per object) sees the same keys as JSON.stringify on a plain object.
  for (const key in value) {
    if (key.length > COMMAND_LIMITS.payload_string_chars_max) {
      bad(path, `keys of at most ${COMMAND_LIMITS.payload_string_chars_max} characters`, key);
    }
    values = jsonValue((value as Fields)[key], path, depth + 1, values);
  }
  return values;
}

function headers(o: Fields): void {
  const h = o.headers;
  if (!isRecord(h) || !isPlain(h)) {
    bad("headers", "an object of strings", h);
  }
  let n = 0;
  for (const name in h) {
    if (++n > COMMAND_LIMITS.headers_max) {
      throw new CommandCodecError("headers", `more than ${COMMAND_LIMITS.headers_max} headers`);
    }
    if (name.length < 1 || name.length > COMMAND_LIMITS.short_text_chars_max) {
      bad("headers", `names of 1 to ${COMMAND_LIMITS.short_text_chars_max} characters`, name);
    }
    const value = h[name];
    if (typeof value !== "string" || value.length > COMMAND_LIMITS.header_value_chars_max) {
      throw new CommandCodecError(
        `headers.${name}`,
        `must be a string of at most ${COMMAND_LIMITS.header_value_chars_max} characters, got ${
          describe(value)
        }`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------- records

const SHORT = COMMAND_LIMITS.short_text_chars_max;
const LONG = COMMAND_LIMITS.text_chars_max;

/** Checks a `JobRecord`, including what its type needs to be scheduled. */
function job(value: unknown): void {
  const j = record(value, "");
  id(j.id, "id");
  textOrNull(j.name, "name", SHORT);
  oneOf(j.type, "type", JOB_TYPES);
  text(j.type_alias, "type_alias", SHORT, 1);
  timeOrNull(j.run_at, "run_at");
  textOrNull(j.cron_expression, "cron_expression", SHORT, 1);
  countOrNull(j.interval_ms, "interval_ms", 1);
  text(j.timezone, "timezone", SHORT, 1);
  timeOrNull(j.starts_at, "starts_at");
  timeOrNull(j.ends_at, "ends_at");
  textOrNull(j.webhook_url, "webhook_url", LONG, 1);
  oneOf(j.method, "method", METHODS);
  headers(j);
  if (!("payload" in j)) throw new CommandCodecError("payload", "is missing (use null)");
  jsonValue(j.payload, "payload", 0, 0);
  textOrNull(j.secret, "secret", LONG, 1);
  oneOf(j.overlap_policy, "overlap_policy", OVERLAP_POLICIES);
  duration(j.catchup_window_ms, "catchup_window_ms");
  count(j.max_attempts, "max_attempts", 1, COMMAND_LIMITS.attempts_max);
  duration(j.timeout_ms, "timeout_ms");
  textOrNull(j.idempotency_key, "idempotency_key", SHORT);
  oneOf(j.status, "status", JOB_STATUSES);
  timeOrNull(j.next_fire_at, "next_fire_at");
  time(j.created_at, "created_at");
  time(j.updated_at, "updated_at");
  textOrNull(j.cancel_reason, "cancel_reason", LONG);
  timeOrNull(j.last_run_at, "last_run_at");
  if (j.last_status !== null) oneOf(j.last_status, "last_status", EXECUTION_STATUSES);
  count(j.attempt_count, "attempt_count");
  count(j.run_count, "run_count");
  // Absent in entries written before jobs had an executor: a webhook job.
  if (j.executor != null) {
    const parsed = workerExecutorSchema.safeParse(j.executor);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new CommandCodecError(["executor", ...issue.path].join("."), issue.message);
    }
  }
  const needs = j.type === "once"
    ? "run_at"
    : j.type === "cron"
    ? "cron_expression"
    : "interval_ms";
  if (j[needs] === null) throw new CommandCodecError(needs, `a ${j.type} job needs it`);
}

function outcome(value: unknown): AttemptOutcome {
  const o = record(value, "outcome");
  try {
    bool(o.ok, "ok");
    countOrNull(o.status_code, "status_code", 0, 999);
    textOrNull(o.error_class, "error_class", SHORT);
    textOrNull(o.error, "error", LONG);
    duration(o.duration_ms, "duration_ms");
    textOrNull(o.response_excerpt, "response_excerpt", LONG);
    if (o.worker_id !== undefined) textOrNull(o.worker_id, "worker_id", SHORT);
  } catch (error) {
    throw CommandCodecError.within(error, "outcome");
  }
  return o as unknown as AttemptOutcome;
}

function nested(c: Fields, key: string, check: (o: Fields) => void): string | undefined {
  const v = c[key];
  if (v === null) return undefined;
  const o = record(v, key);
  try {
    check(o);
  } catch (error) {
    throw CommandCodecError.within(error, key);
  }
  return o.execution_id as string;
}

// --------------------------------------------------------------------------------- commands

function jobs(c: Fields): void {
  const list = c.jobs;
  if (!Array.isArray(list) || list.length > COMMAND_LIMITS.jobs_max) {
    bad("jobs", `an array of at most ${COMMAND_LIMITS.jobs_max} jobs`, list);
  }
  for (let i = 0; i < list.length; i++) {
    try {
      job(list[i]);
    } catch (error) {
      throw CommandCodecError.within(error, `jobs.${i}`);
    }
  }
}

/** Checks one command's fields; throws {@link CommandCodecError} with the field's path. */
function command(value: unknown): void {
  const c = record(value, "");
  time(c.at, "at");
  switch (c.type) {
    case "job.create":
      jobs(c);
      count(c.job_limit, "job_limit");
      return;
    case "job.delete":
    case "job.pause":
      id(c.job_id, "job_id");
      return;
    case "job.cancel":
      id(c.job_id, "job_id");
      text(c.reason, "reason", LONG);
      return;
    case "job.resume":
      id(c.job_id, "job_id");
      timeOrNull(c.next_fire_at, "next_fire_at");
      return;
    case "job.advance":
      id(c.job_id, "job_id");
      time(c.expected_fire_at, "expected_fire_at");
      timeOrNull(c.next_fire_at, "next_fire_at");
      distinct([
        nested(c, "missed", (m) => {
          id(m.execution_id, "execution_id");
          time(m.first_at, "first_at");
          time(m.last_at, "last_at");
          count(m.count, "count", 1);
          if ((m.first_at as number) > (m.last_at as number)) {
            throw new CommandCodecError("first_at", "must not be after last_at");
          }
        }),
        nested(c, "skipped", (s) => {
          id(s.execution_id, "execution_id");
          time(s.scheduled_at, "scheduled_at");
          text(s.reason, "reason", LONG);
        }),
        nested(c, "start", (s) => {
          id(s.execution_id, "execution_id");
          time(s.scheduled_at, "scheduled_at");
          oneOf(s.trigger, "trigger", START_TRIGGERS);
        }),
      ], "execution_id");
      return;
    case "job.trigger":
      id(c.job_id, "job_id");
      id(c.execution_id, "execution_id");
      return;
    case "exec.attempt":
      id(c.execution_id, "execution_id");
      count(c.attempt, "attempt", 1, COMMAND_LIMITS.attempts_max);
      bool(c.redelivery, "redelivery");
      return;
    case "exec.finish":
      id(c.execution_id, "execution_id");
      count(c.attempt, "attempt", 1, COMMAND_LIMITS.attempts_max);
      outcome(c.outcome);
      timeOrNull(c.retry_at, "retry_at");
      return;
    case "history.prune":
      time(c.before, "before");
      count(c.per_job_max, "per_job_max");
      return;
    default:
      bad("type", "a known command type", c.type);
  }
}

// ------------------------------------------------------------------------------- public API

/**
 * Checks that every element of `commands` is a valid command (see the module doc). Throws
 * {@link CommandCodecError} whose path starts with the command's index (`0.jobs.3.payload`).
 */
export function validateCommands(commands: readonly unknown[]): asserts commands is Command[] {
  if (!Array.isArray(commands)) bad("", "an array of commands", commands);
  for (let i = 0; i < commands.length; i++) {
    try {
      command(commands[i]);
    } catch (error) {
      throw CommandCodecError.within(error, i);
    }
  }
}

/** Validates and encodes commands as entry text; throws only {@link CommandCodecError}. */
export function encodeCommands(commands: readonly Command[]): string {
  validateCommands(commands);
  return stringifyChecked(commands, "commands");
}

/** Decodes and validates entry text; throws only {@link CommandCodecError}. */
export function decodeCommands(text: string): Command[] {
  const value = parseChecked(text, "entry");
  if (!Array.isArray(value)) bad("", "an array of commands", value);
  validateCommands(value);
  return value;
}
