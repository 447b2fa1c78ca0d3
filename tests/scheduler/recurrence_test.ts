import assert from "node:assert/strict";
import { Cron } from "croner";
import { ManualClock } from "../../src/clock.ts";
import {
  CRON_CACHE_CAPACITY,
  cronCacheSize,
  nextOccurrence,
  occurrencesBetween,
  type Schedule,
  validateCron,
  validateSchedule,
  validateTimezone,
  validateWindow,
  type Window,
} from "../../src/scheduler/recurrence.ts";
import { TimerQueue } from "../../src/scheduler/timer.ts";

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const cron = (expression: string, timezone = "UTC"): Schedule => ({
  kind: "cron",
  expression,
  timezone,
});

Deno.test("validateCron accepts 5 and 6 fields, names, L, #, W and aliases", () => {
  for (
    const e of [
      "*/15 * * * *",
      "0 9 * * 1-5",
      "0 9 * * MON-FRI",
      "0 0 1 JAN,JUL *",
      "*/20 * * * * *",
      "0 30 2 * * *",
      "0 0 L * *",
      "0 12 * * 5#2",
      "0 0 1W * *",
      "0 0 ? * *",
      "  0 0 * * *  ",
      "@daily",
      "@HOURLY",
      "@yearly",
      "@annually",
      "@monthly",
      "@weekly",
      "@midnight",
    ]
  ) {
    assert.equal(validateCron(e), null, e);
  }
});

Deno.test("validateCron explains what is wrong and how to fix it", () => {
  const seven = validateCron("0 0 0 * * * 2026") ?? "";
  assert.match(seven, /7 fields; a year field is not supported/);
  assert.match(seven, /use 5 fields \(minute hour day-of-month month day-of-week\)/);
  assert.match(validateCron("garbage") ?? "", /has 1 field\(s\); use 5 fields/);
  assert.match(validateCron("") ?? "", /empty; use 5 fields/);
  const minute = validateCron("61 * * * *") ?? "";
  assert.match(minute, /^invalid cron expression "61 \* \* \* \*": Invalid value for minute: 61/);
  assert.doesNotMatch(minute, /CronPattern/);
  assert.match(validateCron("0 0 * * * 2026") ?? "", /the first is seconds, a trailing year/);
  assert.match(validateCron("* * * * 1-99") ?? "", /^invalid cron expression/);
  assert.match(validateCron("@reboot") ?? "", /unknown cron alias "@reboot"; supported aliases/);
  assert.match(validateCron("0 0 30 2 *") ?? "", /never matches a date/);
});

Deno.test("validateTimezone accepts IANA names and rejects offsets and unknown names", () => {
  for (const tz of ["UTC", "Etc/UTC", "Europe/Berlin", "America/New_York", "US/Eastern"]) {
    assert.equal(validateTimezone(tz), null, tz);
  }
  assert.match(validateTimezone("") ?? "", /time zone is empty; use an IANA time zone name/);
  assert.match(validateTimezone("+01:00") ?? "", /fixed UTC offset, not a time zone/);
  assert.match(validateTimezone("Mars/Olympus") ?? "", /unknown time zone "Mars\/Olympus"/);
});

Deno.test("validateSchedule and validateWindow", () => {
  assert.equal(validateSchedule({ kind: "once", at_ms: 1 }), null);
  assert.match(validateSchedule({ kind: "once", at_ms: 1.5 }) ?? "", /at_ms must be an integer/);
  assert.equal(validateSchedule({ kind: "interval", every_ms: 1, anchor_ms: 0 }), null);
  assert.match(
    validateSchedule({ kind: "interval", every_ms: 0, anchor_ms: 0 }) ?? "",
    /every_ms must be a positive integer/,
  );
  assert.match(validateSchedule(cron("* * * * *", "Nowhere")) ?? "", /unknown time zone/);
  assert.match(validateSchedule(cron("* * *")) ?? "", /3 field/);
  assert.equal(validateWindow({ starts_at_ms: 5, ends_at_ms: 5 }), null);
  assert.equal(validateWindow({ starts_at_ms: null }), null);
  assert.match(validateWindow({ starts_at_ms: 6, ends_at_ms: 5 }) ?? "", /is after ends_at_ms/);
});

Deno.test("once: strictly after, within the window", () => {
  const s: Schedule = { kind: "once", at_ms: 1_000 };
  assert.equal(nextOccurrence(s, 999), 1_000);
  assert.equal(nextOccurrence(s, 1_000), null);
  assert.equal(nextOccurrence(s, 0, { starts_at_ms: 1_000, ends_at_ms: 1_000 }), 1_000);
  assert.equal(nextOccurrence(s, 0, { ends_at_ms: 999 }), null);
  assert.equal(nextOccurrence(s, 0, { starts_at_ms: 1_001 }), null);
});

Deno.test("interval: anchor + k * every for k >= 0, windows inclusive", () => {
  const s: Schedule = { kind: "interval", every_ms: 100, anchor_ms: 1_050 };
  assert.equal(nextOccurrence(s, 0), 1_050);
  assert.equal(nextOccurrence(s, 1_049), 1_050);
  assert.equal(nextOccurrence(s, 1_050), 1_150);
  assert.equal(nextOccurrence(s, 1_149), 1_150);
  assert.equal(nextOccurrence(s, 0, { starts_at_ms: 1_150 }), 1_150);
  assert.equal(nextOccurrence(s, 0, { starts_at_ms: 1_151 }), 1_250);
  assert.equal(nextOccurrence(s, 1_150, { ends_at_ms: 1_250 }), 1_250);
  assert.equal(nextOccurrence(s, 1_150, { ends_at_ms: 1_249 }), null);
  assert.throws(
    () => nextOccurrence({ kind: "interval", every_ms: 0, anchor_ms: 0 }, 0),
    RangeError,
  );
});

Deno.test("cron: strictly after, windows inclusive, invalid input throws", () => {
  const s = cron("0 * * * *");
  assert.equal(nextOccurrence(s, ms("2026-01-01T00:00:00Z")), ms("2026-01-01T01:00:00Z"));
  assert.equal(nextOccurrence(s, ms("2026-01-01T00:59:59.999Z")), ms("2026-01-01T01:00:00Z"));
  const w: Window = {
    starts_at_ms: ms("2026-01-01T05:00:00Z"),
    ends_at_ms: ms("2026-01-01T07:00:00Z"),
  };
  assert.equal(nextOccurrence(s, 0, w), ms("2026-01-01T05:00:00Z"));
  assert.equal(nextOccurrence(s, ms("2026-01-01T06:00:00Z"), w), ms("2026-01-01T07:00:00Z"));
  assert.equal(nextOccurrence(s, ms("2026-01-01T07:00:00Z"), w), null);
  assert.throws(() => nextOccurrence(cron("61 * * * *"), 0), RangeError);
  assert.throws(() => nextOccurrence(cron("* * * * *", "Nowhere"), 0), RangeError);
});

Deno.test("cron: day-of-month and day-of-week combine with OR, as in Vixie cron", () => {
  // April 2026: Fridays are 3, 10, 17, 24; the 13th is a Monday.
  const { times_ms } = occurrencesBetween(
    cron("0 0 13 * 5"),
    ms("2026-04-01T00:00:00Z"),
    ms("2026-04-30T00:00:00Z"),
    100,
  );
  assert.deepEqual(times_ms.map(iso), [
    "2026-04-03T00:00:00.000Z",
    "2026-04-10T00:00:00.000Z",
    "2026-04-13T00:00:00.000Z",
    "2026-04-17T00:00:00.000Z",
    "2026-04-24T00:00:00.000Z",
  ]);
});

Deno.test("occurrencesBetween: (from, to], limit and truncated", () => {
  const s: Schedule = { kind: "interval", every_ms: 10, anchor_ms: 0 };
  assert.deepEqual(occurrencesBetween(s, 0, 50, 10), {
    times_ms: [10, 20, 30, 40, 50],
    truncated: false,
  });
  assert.deepEqual(occurrencesBetween(s, 0, 50, 5), {
    times_ms: [10, 20, 30, 40, 50],
    truncated: false,
  });
  assert.deepEqual(occurrencesBetween(s, 0, 50, 3), { times_ms: [10, 20, 30], truncated: true });
  assert.deepEqual(occurrencesBetween(s, 0, 50, 0), { times_ms: [], truncated: true });
  assert.deepEqual(occurrencesBetween(s, 5, 9, 0), { times_ms: [], truncated: false });
  assert.deepEqual(occurrencesBetween(s, 0, 50, 10, { starts_at_ms: 25, ends_at_ms: 40 }), {
    times_ms: [30, 40],
    truncated: false,
  });
  assert.throws(() => occurrencesBetween(s, 0, 50, -1), RangeError);
});

Deno.test("parsed crons are cached in a bounded LRU", () => {
  for (let i = 0; i < CRON_CACHE_CAPACITY + 100; i++) {
    nextOccurrence(cron(`${i % 60} ${Math.floor(i / 60)} * * *`), 0);
  }
  assert.equal(cronCacheSize(), CRON_CACHE_CAPACITY);
});

Deno.test("away from DST transitions, results equal croner's own time zone arithmetic", () => {
  const expressions = [
    "*/7 * * * *",
    "0 9 * * 1-5",
    "30 2 * * *",
    "15 10 1,15 * *",
    "0 0 L * *",
    "0 12 * * 5#2",
    "*/20 * * * * *",
    "@weekly",
  ];
  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"];
  // Mid-January to mid-February and mid-July to mid-August: no transitions in these zones.
  const ranges = [["2026-01-10T00:00:00Z", "2026-02-10T00:00:00Z"], [
    "2026-07-10T00:00:00Z",
    "2026-08-10T00:00:00Z",
  ]];
  for (const expression of expressions) {
    for (const timezone of zones) {
      for (const [from, to] of ranges) {
        const reference = new Cron(expression, { timezone, paused: true });
        const expected: string[] = [];
        let d = reference.nextRun(new Date(ms(from)));
        while (d !== null && d.getTime() <= ms(to) && expected.length < 200) {
          expected.push(d.toISOString());
          d = reference.nextRun(d);
        }
        const got = occurrencesBetween(cron(expression, timezone), ms(from), ms(to), 200);
        assert.deepEqual(got.times_ms.map(iso), expected, `${expression} ${timezone} ${from}`);
      }
    }
  }
});

Deno.test("a simulated week of mixed schedules fires exactly the expected occurrences", () => {
  const start_ms = ms("2026-03-05T00:00:00Z"); // a Thursday; New York springs forward on Sunday
  const end_ms = start_ms + 7 * DAY_MS;
  const jobs: Record<string, { s: Schedule; w?: Window }> = {
    every15: { s: cron("*/15 * * * *") },
    hourly: { s: cron("@hourly") },
    every6h: { s: cron("0 */6 * * *") },
    weekdays9ny: { s: cron("0 9 * * 1-5", "America/New_York") },
    dailyKolkata: { s: cron("@daily", "Asia/Kolkata") },
    every90s: { s: { kind: "interval", every_ms: 90 * SECOND_MS, anchor_ms: start_ms + 17_000 } },
    sec20: {
      s: cron("*/20 * * * * *"),
      w: { starts_at_ms: start_ms + HOUR_MS, ends_at_ms: start_ms + HOUR_MS + 3 * MINUTE_MS },
    },
    once: {
      s: { kind: "once", at_ms: start_ms + 2 * DAY_MS + 3 * HOUR_MS + 4 * MINUTE_MS + 5_006 },
    },
    oncePast: { s: { kind: "once", at_ms: start_ms - 1 } },
    windowed6h: {
      s: cron("0 */6 * * *"),
      w: { starts_at_ms: start_ms + DAY_MS + 1, ends_at_ms: start_ms + 3 * DAY_MS },
    },
  };

  // Expected lists, computed here by plain arithmetic or written out by hand.
  const expected: Record<string, string[]> = {};
  const arithmetic = (first_ms: number, step_ms: number, lo_ms: number, hi_ms: number) => {
    const out: string[] = [];
    for (let t = first_ms; t <= hi_ms; t += step_ms) if (t >= lo_ms) out.push(iso(t));
    return out;
  };
  expected.every15 = arithmetic(start_ms + 15 * MINUTE_MS, 15 * MINUTE_MS, start_ms, end_ms);
  expected.hourly = arithmetic(start_ms + HOUR_MS, HOUR_MS, start_ms, end_ms);
  expected.every6h = arithmetic(start_ms + 6 * HOUR_MS, 6 * HOUR_MS, start_ms, end_ms);
  expected.weekdays9ny = [
    "2026-03-05T14:00:00.000Z", // Thu 09:00 EST
    "2026-03-06T14:00:00.000Z", // Fri
    "2026-03-09T13:00:00.000Z", // Mon 09:00 EDT
    "2026-03-10T13:00:00.000Z",
    "2026-03-11T13:00:00.000Z",
  ];
  // 00:00 IST (+05:30) is 18:30Z the day before.
  expected.dailyKolkata = arithmetic(ms("2026-03-05T18:30:00Z"), DAY_MS, start_ms, end_ms);
  expected.every90s = arithmetic(start_ms + 17_000, 90 * SECOND_MS, start_ms, end_ms);
  expected.sec20 = arithmetic(
    start_ms + HOUR_MS,
    20 * SECOND_MS,
    0,
    start_ms + HOUR_MS + 3 * MINUTE_MS,
  );
  expected.once = ["2026-03-07T03:04:05.006Z"];
  expected.oncePast = [];
  expected.windowed6h = arithmetic(
    start_ms + DAY_MS + 6 * HOUR_MS,
    6 * HOUR_MS,
    0,
    start_ms + 3 * DAY_MS,
  );
  assert.equal(expected.every15.length, 672);
  assert.equal(expected.sec20.length, 10);
  assert.equal(expected.windowed6h.length, 8);
  assert.equal(expected.dailyKolkata.length, 7);

  // Up to 4 jobs fall due together (every15, hourly, every6h, windowed6h): batches of 3 make the
  // queue wake the consumer again for the rest.
  // The scheduler loop: on wake take a bounded batch, record, schedule the next occurrence.
  const clock = new ManualClock(start_ms);
  const fired: Record<string, string[]> = Object.fromEntries(Object.keys(jobs).map((k) => [k, []]));
  let late = 0;
  let wakes = 0;
  const queue = new TimerQueue(clock, () => {
    wakes++;
    for (const { key, due_ms } of queue.takeDue(3)) {
      if (clock.now() !== due_ms) late++;
      fired[key].push(iso(due_ms));
      const { s, w } = jobs[key];
      const next_ms = nextOccurrence(s, due_ms, w);
      if (next_ms !== null) queue.set(key, next_ms);
    }
  });
  for (const [key, { s, w }] of Object.entries(jobs)) {
    const first_ms = nextOccurrence(s, start_ms, w);
    if (first_ms !== null) queue.set(key, first_ms);
  }
  clock.advanceTo(end_ms);
  assert.deepEqual(fired, expected);
  assert.equal(late, 0);
  const fires = Object.values(expected).reduce((n, xs) => n + xs.length, 0);
  const distinct_times = new Set(Object.values(expected).flat()).size;
  assert.ok(wakes > distinct_times && wakes < fires, `${wakes} wakes for ${fires} fires`);
});
