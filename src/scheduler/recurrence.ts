/**
 * Schedule computation: when does a job fire next?
 *
 * Pure and deterministic (no clock, no I/O): the same schedule and the same `after_ms` give the
 * same answer on every node. croner is used only as a calculator over *wall-clock* time (it runs
 * with a UTC offset of 0, so it never sees a DST transition); the mapping from wall-clock time to
 * real instants, and with it all DST behaviour, is done here from the zone's offsets as reported by
 * `Intl`. The rules are documented in docs/scheduling.md ("Daylight saving time"):
 *
 * - Every real instant whose local wall-clock reading matches the expression is an occurrence.
 * - A *fixed-time* expression (none of its second, minute and hour fields starts with `*` or `?`,
 *   e.g. `30 2 * * *`, `0 9,17 * * 1-5`, `@daily`) additionally:
 *   - fires once, at the end of a spring-forward gap, for matching wall times the gap skipped;
 *   - fires only in the first pass of a repeated (fall-back) hour.
 * - A *wildcard* expression (`*` in the second, minute or hour field, e.g. `*\/30 * * * *`,
 *   `@hourly`, `*\/15 2 * * *`) follows real time: nothing for skipped wall times, both passes of a
 *   repeated hour.
 *
 * @module
 */
import { Cron } from "croner";

/** When a job fires: once, on a cron expression in a time zone, or every `every_ms`. */
export type Schedule =
  | { kind: "once"; at_ms: number }
  /** 5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or an alias. */
  | { kind: "cron"; expression: string; timezone: string }
  /** Occurrences at `anchor_ms + k * every_ms` for every integer k >= 0. */
  | { kind: "interval"; every_ms: number; anchor_ms: number };

/** Inclusive bounds on occurrences; a missing or null bound is open. */
export interface Window {
  starts_at_ms?: number | null;
  ends_at_ms?: number | null;
}

/** Parsed cron expressions kept by (expression, timezone); least recently used are evicted. */
export const CRON_CACHE_CAPACITY = 1_000;

const SECOND_MS = 1_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Zone offsets are sampled this often when looking for transitions (two never fall closer). */
const SAMPLE_MS = 12 * HOUR_MS;
/** Transitions are computed and cached per chunk of this length, aligned on the epoch. */
const CHUNK_MS = 32 * DAY_MS;
/** Per zone, at most this many chunks (about 44 years) stay cached. */
const MAX_CHUNKS_PER_ZONE = 500;
const ZONE_CACHE_CAPACITY = 1_000;
/** Upper bound on the DST segments one search walks (two a year: centuries). */
const MAX_SEGMENTS = 2_000;
/** Validation requires a first match after this instant (2000-01-01T00:00:00Z). */
const VALIDATION_FROM_MS = 946_684_800_000;

const FIELDS_5 = "minute hour day-of-month month day-of-week";
const FIELDS_6 = "second minute hour day-of-month month day-of-week";
const ALIASES: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};
const ALIAS_LIST = Object.keys(ALIASES).join(", ");

// ---------------------------------------------------------------------------------------------
// Time zones: offsets and transitions from Intl, cached in chunks.

/** A change of a zone's UTC offset at instant `at_ms` (offsets in ms, local = UTC + offset). */
interface Transition {
  at_ms: number;
  before_ms: number;
  after_ms: number;
}

interface Chunk {
  offset_at_start_ms: number;
  /** Transitions in (chunk start, chunk end], ascending. */
  transitions: Transition[];
}

class Zone {
  readonly #format: Intl.DateTimeFormat | null;
  readonly #chunks = new Map<number, Chunk>();

  /** `format` null means UTC: offset 0, no transitions, no Intl calls. */
  constructor(format: Intl.DateTimeFormat | null) {
    this.#format = format;
  }

  offsetAt(at_ms: number): number {
    if (this.#format === null) return 0;
    const chunk = this.#chunk(Math.floor(at_ms / CHUNK_MS));
    let offset_ms = chunk.offset_at_start_ms;
    for (const t of chunk.transitions) {
      if (t.at_ms > at_ms) break;
      offset_ms = t.after_ms;
    }
    return offset_ms;
  }

  /** The first transition T with `after_ms < T <= until_ms`, or null. */
  firstTransitionIn(after_ms: number, until_ms: number): Transition | null {
    if (this.#format === null) return null;
    const last = Math.floor(until_ms / CHUNK_MS);
    for (let k = Math.floor(after_ms / CHUNK_MS); k <= last; k++) {
      for (const t of this.#chunk(k).transitions) {
        if (t.at_ms > until_ms) return null;
        if (t.at_ms > after_ms) return t;
      }
    }
    return null;
  }

  /** The last transition T with `at_ms - lookback_ms <= T <= at_ms`, or null. */
  lastTransitionAtOrBefore(at_ms: number, lookback_ms: number): Transition | null {
    if (this.#format === null) return null;
    const first = Math.floor((at_ms - lookback_ms) / CHUNK_MS) - 1;
    for (let k = Math.floor(at_ms / CHUNK_MS); k >= first; k--) {
      const transitions = this.#chunk(k).transitions;
      for (let i = transitions.length - 1; i >= 0; i--) {
        const t = transitions[i];
        if (t.at_ms < at_ms - lookback_ms) return null;
        if (t.at_ms <= at_ms) return t;
      }
    }
    return null;
  }

  #chunk(k: number): Chunk {
    const cached = this.#chunks.get(k);
    if (cached !== undefined) return cached;
    const start_ms = k * CHUNK_MS;
    const transitions: Transition[] = [];
    let prev_ms = start_ms;
    let prev_offset_ms = this.#rawOffset(start_ms);
    const offset_at_start_ms = prev_offset_ms;
    for (let t_ms = start_ms + SAMPLE_MS; t_ms <= start_ms + CHUNK_MS; t_ms += SAMPLE_MS) {
      const offset_ms = this.#rawOffset(t_ms);
      if (offset_ms !== prev_offset_ms) {
        // Binary search, to the second, for the first instant in (prev_ms, t_ms] with a new offset.
        let lo_ms = prev_ms;
        let hi_ms = t_ms;
        while (hi_ms - lo_ms > SECOND_MS) {
          const mid_ms = lo_ms + Math.floor((hi_ms - lo_ms) / (2 * SECOND_MS)) * SECOND_MS;
          if (this.#rawOffset(mid_ms) === prev_offset_ms) lo_ms = mid_ms;
          else hi_ms = mid_ms;
        }
        transitions.push({
          at_ms: hi_ms,
          before_ms: prev_offset_ms,
          after_ms: this.#rawOffset(hi_ms),
        });
      }
      prev_ms = t_ms;
      prev_offset_ms = offset_ms;
    }
    if (this.#chunks.size >= MAX_CHUNKS_PER_ZONE) this.#chunks.clear();
    const chunk = { offset_at_start_ms, transitions };
    this.#chunks.set(k, chunk);
    return chunk;
  }

  /** The zone's offset at `at_ms` (whole second), straight from Intl. */
  #rawOffset(at_ms: number): number {
    const second_ms = at_ms - (((at_ms % SECOND_MS) + SECOND_MS) % SECOND_MS);
    const f = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
    for (const part of (this.#format as Intl.DateTimeFormat).formatToParts(second_ms)) {
      if (part.type in f) f[part.type as keyof typeof f] = Number(part.value);
    }
    const wall_ms = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second);
    return wall_ms - second_ms;
  }
}

const zones = new Map<string, Zone>();

/** The zone for an IANA name; throws a RangeError for an unknown name. */
function zoneFor(timezone: string): Zone {
  const cached = zones.get(timezone);
  if (cached !== undefined) return cached;
  const message = validateTimezone(timezone);
  if (message !== null) throw new RangeError(message);
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: timezone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  });
  const zone = new Zone(format.resolvedOptions().timeZone === "UTC" ? null : format);
  if (zones.size >= ZONE_CACHE_CAPACITY) zones.delete(zones.keys().next().value as string);
  zones.set(timezone, zone);
  return zone;
}

// ---------------------------------------------------------------------------------------------
// Cron expressions.

interface CompiledCron {
  /** Matches wall-clock times, encoded as if they were UTC instants. */
  wall: Cron;
  fixed_time: boolean;
  zone: Zone;
}

/** Result of parsing an expression: the croner object and the DST class, or what is wrong. */
type Parsed = { ok: true; wall: Cron; fixed_time: boolean } | { ok: false; message: string };

const compiled = new Map<string, CompiledCron>();

function parseCron(expression: string): Parsed {
  const trimmed = expression.trim();
  if (trimmed === "") {
    return {
      ok: false,
      message: `cron expression is empty; use 5 fields (${FIELDS_5}), e.g. "*/15 * * * *", ` +
        `6 with leading seconds (${FIELDS_6}), or an alias (${ALIAS_LIST})`,
    };
  }
  let source = trimmed;
  if (trimmed.startsWith("@")) {
    const expanded = ALIASES[trimmed.toLowerCase()];
    if (expanded === undefined) {
      return {
        ok: false,
        message: `unknown cron alias "${trimmed}"; supported aliases are ${ALIAS_LIST}`,
      };
    }
    source = expanded;
  }
  const fields = source.split(/\s+/);
  if (fields.length === 7) {
    return {
      ok: false,
      message: `cron expression "${trimmed}" has 7 fields; a year field is not supported: ` +
        `use 5 fields (${FIELDS_5}) or 6 with leading seconds (${FIELDS_6})`,
    };
  }
  if (fields.length !== 5 && fields.length !== 6) {
    return {
      ok: false,
      message: `cron expression "${trimmed}" has ${fields.length} field(s); use 5 fields ` +
        `(${FIELDS_5}), 6 with leading seconds (${FIELDS_6}), or an alias (${ALIAS_LIST})`,
    };
  }
  let wall: Cron;
  try {
    wall = new Cron(source, { utcOffset: 0, paused: true, mode: "5-or-6-parts" });
  } catch (err) {
    const detail = (err instanceof Error ? err.message : String(err)).replace(
      /^CronPattern:\s*/,
      "",
    );
    const names = fields.length === 5
      ? FIELDS_5
      : `${FIELDS_6}; with 6 fields the first is seconds, a trailing year is not supported`;
    return {
      ok: false,
      message: `invalid cron expression "${trimmed}": ${detail} (fields are: ${names})`,
    };
  }
  if (wall.nextRun(new Date(VALIDATION_FROM_MS)) === null) {
    return {
      ok: false,
      message: `cron expression "${trimmed}" never matches a date (e.g. day 30 of February); ` +
        `check the day-of-month, month and day-of-week fields`,
    };
  }
  const time_fields = fields.length === 5 ? fields.slice(0, 2) : fields.slice(0, 3);
  const fixed_time = time_fields.every((f) => !f.startsWith("*") && !f.startsWith("?"));
  return { ok: true, wall, fixed_time };
}

function compileCron(expression: string, timezone: string): CompiledCron {
  const key = `${timezone}\n${expression}`;
  const hit = compiled.get(key);
  if (hit !== undefined) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  const zone = zoneFor(timezone);
  const parsed = parseCron(expression);
  if (!parsed.ok) throw new RangeError(parsed.message);
  const entry = { wall: parsed.wall, fixed_time: parsed.fixed_time, zone };
  if (compiled.size >= CRON_CACHE_CAPACITY) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, entry);
  return entry;
}

/** First matching wall-clock time at or after `wall_ms` (wall time encoded as UTC), or null. */
function nextWall(c: CompiledCron, wall_ms: number): number | null {
  const next = c.wall.nextRun(new Date(wall_ms - 1));
  return next === null ? null : next.getTime();
}

/** Whether a wall-clock time skipped by the forward transition `t` matches the expression. */
function gapMatches(c: CompiledCron, t: Transition): boolean {
  const wall_ms = nextWall(c, t.at_ms + t.before_ms);
  return wall_ms !== null && wall_ms < t.at_ms + t.after_ms;
}

/**
 * First cron occurrence strictly after `after_ms`. Walks the zone's constant-offset segments: in a
 * segment, wall time is real time plus a fixed offset, so croner's first matching wall time gives
 * the first occurrence unless it lies beyond the segment's end.
 */
function nextCron(c: CompiledCron, after_ms: number): number | null {
  let from_ms = after_ms + 1;
  for (let i = 0; i < MAX_SEGMENTS; i++) {
    if (c.fixed_time) {
      const prev = c.zone.lastTransitionAtOrBefore(from_ms, DAY_MS);
      if (prev !== null) {
        if (prev.after_ms > prev.before_ms) {
          if (prev.at_ms === from_ms && gapMatches(c, prev)) return from_ms;
        } else {
          // Skip the second pass of a repeated hour: its wall times already fired in the first.
          from_ms = Math.max(from_ms, prev.at_ms + prev.before_ms - prev.after_ms);
        }
      }
    }
    const offset_ms = c.zone.offsetAt(from_ms);
    const wall_ms = nextWall(c, from_ms + offset_ms);
    if (wall_ms === null) return null;
    const at_ms = wall_ms - offset_ms;
    const t = c.zone.firstTransitionIn(from_ms, at_ms);
    if (t === null) return at_ms;
    from_ms = t.at_ms;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Public API.

/**
 * Checks a cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with a
 * leading seconds field, or an alias (@yearly, @annually, @monthly, @weekly, @daily, @midnight,
 * @hourly). Rejects 7 fields (croner's year field) and expressions that never match.
 *
 * @returns null when valid, else a message saying what is wrong and how to fix it (for a 400).
 */
export function validateCron(expression: string): string | null {
  return cronProblems.get(expression, () => {
    const parsed = parseCron(expression);
    return parsed.ok ? null : parsed.message;
  });
}

/**
 * A bounded memo of validation answers. Parsing a cron expression or building an Intl formatter
 * costs ~60 µs, and a batch of 10,000 jobs usually names the same few expressions and zones.
 */
class AnswerMemo {
  readonly #answers = new Map<string, string | null>();

  get(key: string, compute: () => string | null): string | null {
    const hit = this.#answers.get(key);
    if (hit !== undefined || this.#answers.has(key)) return hit ?? null;
    const answer = compute();
    if (this.#answers.size >= CRON_CACHE_CAPACITY) {
      this.#answers.delete(this.#answers.keys().next().value as string);
    }
    this.#answers.set(key, answer);
    return answer;
  }
}

const cronProblems = new AnswerMemo();
const timezoneProblems = new AnswerMemo();

/**
 * Checks an IANA time zone name ("Europe/Berlin", "UTC", links such as "US/Eastern"), as known
 * to this runtime's Intl data. Fixed offsets such as "+01:00" are rejected.
 *
 * @returns null when valid, else a message saying what is wrong and how to fix it.
 */
export function validateTimezone(tz: string): string | null {
  return timezoneProblems.get(tz, () => timezoneProblem(tz));
}

function timezoneProblem(tz: string): string | null {
  const hint = `use an IANA time zone name such as "Europe/Berlin", "America/New_York" or "UTC"`;
  if (tz.trim() === "") return `time zone is empty; ${hint}`;
  if (/^[+-]/.test(tz.trim())) {
    return `"${tz}" is a fixed UTC offset, not a time zone; ${hint}`;
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return null;
  } catch {
    return `unknown time zone "${tz}"; ${hint}`;
  }
}

/**
 * Checks a whole schedule: integer milliseconds, a positive `every_ms`, a valid cron expression and
 * time zone.
 *
 * @returns null when valid, else a message saying what is wrong and how to fix it.
 */
export function validateSchedule(s: Schedule): string | null {
  switch (s.kind) {
    case "once":
      return Number.isSafeInteger(s.at_ms)
        ? null
        : `at_ms must be an integer number of milliseconds since the epoch, got ${s.at_ms}`;
    case "interval":
      if (!Number.isSafeInteger(s.every_ms) || s.every_ms <= 0) {
        return `every_ms must be a positive integer number of milliseconds, got ${s.every_ms}`;
      }
      return Number.isSafeInteger(s.anchor_ms)
        ? null
        : `anchor_ms must be an integer number of milliseconds since the epoch, got ${s.anchor_ms}`;
    case "cron":
      return validateCron(s.expression) ?? validateTimezone(s.timezone);
  }
}

/**
 * Checks a window: integer bounds, and `starts_at_ms <= ends_at_ms` when both are given.
 *
 * @returns null when valid, else a message saying what is wrong.
 */
export function validateWindow(w: Window): string | null {
  for (const [name, v] of [["starts_at_ms", w.starts_at_ms], ["ends_at_ms", w.ends_at_ms]]) {
    if (v !== undefined && v !== null && !Number.isSafeInteger(v)) {
      return `${name} must be an integer number of milliseconds since the epoch, got ${v}`;
    }
  }
  const starts_at_ms = w.starts_at_ms ?? null;
  const ends_at_ms = w.ends_at_ms ?? null;
  if (starts_at_ms !== null && ends_at_ms !== null && starts_at_ms > ends_at_ms) {
    return `starts_at_ms (${starts_at_ms}) is after ends_at_ms (${ends_at_ms})`;
  }
  return null;
}

/**
 * First occurrence strictly after `after_ms` within the window (bounds inclusive), or null when
 * there is none. Throws a RangeError for an invalid cron expression or time zone (check with
 * `validateSchedule` first). Cron expressions are parsed once and cached (see
 * `CRON_CACHE_CAPACITY`).
 */
export function nextOccurrence(s: Schedule, after_ms: number, w?: Window): number | null {
  const starts_at_ms = w?.starts_at_ms ?? null;
  const ends_at_ms = w?.ends_at_ms ?? null;
  const from_ms = starts_at_ms === null ? after_ms : Math.max(after_ms, starts_at_ms - 1);
  let at_ms: number | null;
  switch (s.kind) {
    case "once":
      at_ms = s.at_ms > from_ms ? s.at_ms : null;
      break;
    case "interval":
      if (!(s.every_ms > 0)) throw new RangeError(`every_ms must be positive, got ${s.every_ms}`);
      at_ms = from_ms < s.anchor_ms
        ? s.anchor_ms
        : s.anchor_ms + (Math.floor((from_ms - s.anchor_ms) / s.every_ms) + 1) * s.every_ms;
      break;
    case "cron":
      at_ms = nextCron(compileCron(s.expression, s.timezone), from_ms);
      break;
  }
  return at_ms !== null && (ends_at_ms === null || at_ms <= ends_at_ms) ? at_ms : null;
}

/**
 * Occurrences in (from_ms, to_ms] within the window, earliest first, at most `limit`;
 * `truncated` is true when more occurrences in that range were left out.
 */
export function occurrencesBetween(
  s: Schedule,
  from_ms: number,
  to_ms: number,
  limit: number,
  w?: Window,
): { times_ms: number[]; truncated: boolean } {
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  }
  const times_ms: number[] = [];
  let cursor_ms = from_ms;
  for (;;) {
    const at_ms = nextOccurrence(s, cursor_ms, w);
    if (at_ms === null || at_ms > to_ms) return { times_ms, truncated: false };
    if (times_ms.length === limit) return { times_ms, truncated: true };
    times_ms.push(at_ms);
    cursor_ms = at_ms;
  }
}

/** Number of parsed cron expressions currently cached (for metrics and tests). */
export function cronCacheSize(): number {
  return compiled.size;
}
