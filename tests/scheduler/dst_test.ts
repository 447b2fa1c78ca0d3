/**
 * DST behaviour of cron schedules, with exact UTC instants (see docs/scheduling.md, "Daylight
 * saving time"). Transitions used:
 * - Europe/Berlin: 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST); 2026-10-25 01:00Z (03:00 CEST ->
 *   02:00 CET, 02:00-02:59 repeated: first pass 00:00-00:59Z, second 01:00-01:59Z).
 * - America/New_York: 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT); 2026-11-01 06:00Z (02:00 EDT ->
 *   01:00 EST, 01:00-01:59 repeated: first pass 05:00-05:59Z, second 06:00-06:59Z).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import {
  nextOccurrence,
  occurrencesBetween,
  type Schedule,
} from "../../src/scheduler/recurrence.ts";
import { TimerQueue } from "../../src/scheduler/timer.ts";

const ms = (iso: string) => Date.parse(iso);
const cron = (expression: string, timezone: string): Schedule => ({
  kind: "cron",
  expression,
  timezone,
});

/** Occurrences in (from, to] as ISO strings, for readable diffs. */
function between(s: Schedule, from: string, to: string): string[] {
  const { times_ms, truncated } = occurrencesBetween(s, ms(from), ms(to), 1_000);
  assert.equal(truncated, false);
  return times_ms.map((t) => new Date(t).toISOString());
}

Deno.test("spring forward, Berlin: 30 2 * * * fires once at 03:00 CEST on the gap day", () => {
  assert.deepEqual(
    between(cron("30 2 * * *", "Europe/Berlin"), "2026-03-27T12:00:00Z", "2026-03-31T12:00:00Z"),
    [
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:00:00.000Z", // 02:30 does not exist: 03:00 CEST, the end of the gap
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
      "2026-03-31T00:30:00.000Z",
    ],
  );
});

Deno.test("spring forward, New York: 30 2 * * * fires once at 03:00 EDT on the gap day", () => {
  const expected = [
    "2026-03-07T07:30:00.000Z", // 02:30 EST
    "2026-03-08T07:00:00.000Z", // 03:00 EDT, the end of the gap
    "2026-03-09T06:30:00.000Z", // 02:30 EDT
  ];
  const from = "2026-03-06T12:00:00Z";
  const to = "2026-03-09T12:00:00Z";
  assert.deepEqual(between(cron("30 2 * * *", "America/New_York"), from, to), expected);
  assert.deepEqual(between(cron("0 30 2 * * *", "America/New_York"), from, to), expected);
});

Deno.test("spring forward: several fixed times in the gap fire once, at the end of the gap", () => {
  const ny = "America/New_York";
  const from = "2026-03-07T12:00:00Z";
  const to = "2026-03-09T12:00:00Z";
  assert.deepEqual(between(cron("0,30 2 * * *", ny), from, to), [
    "2026-03-08T07:00:00.000Z",
    "2026-03-09T06:00:00.000Z",
    "2026-03-09T06:30:00.000Z",
  ]);
  // 02:00 (skipped) and 03:00 both land on 03:00 EDT: one fire.
  assert.deepEqual(between(cron("0 2,3 * * *", ny), from, to), [
    "2026-03-08T07:00:00.000Z",
    "2026-03-09T06:00:00.000Z",
    "2026-03-09T07:00:00.000Z",
  ]);
});

Deno.test("spring forward: wildcard schedules follow real time and skip the missing hour", () => {
  const ny = "America/New_York";
  assert.deepEqual(
    between(cron("*/15 2 * * *", ny), "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z"),
    [
      "2026-03-09T06:00:00.000Z",
      "2026-03-09T06:15:00.000Z",
      "2026-03-09T06:30:00.000Z",
      "2026-03-09T06:45:00.000Z",
    ],
  );
  assert.deepEqual(
    between(cron("*/30 * * * *", ny), "2026-03-08T05:45:00Z", "2026-03-08T08:00:00Z"),
    [
      "2026-03-08T06:00:00.000Z", // 01:00 EST
      "2026-03-08T06:30:00.000Z", // 01:30 EST
      "2026-03-08T07:00:00.000Z", // 03:00 EDT
      "2026-03-08T07:30:00.000Z",
      "2026-03-08T08:00:00.000Z",
    ],
  );
  assert.deepEqual(
    between(cron("*/30 * * * *", "Europe/Berlin"), "2026-03-29T00:15:00Z", "2026-03-29T01:30:00Z"),
    ["2026-03-29T00:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-29T01:30:00.000Z"],
  );
});

Deno.test("fall back, Berlin: 30 2 * * * fires once, in the first pass of the repeated hour", () => {
  const s = cron("30 2 * * *", "Europe/Berlin");
  assert.deepEqual(between(s, "2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z"), [
    "2026-10-24T00:30:00.000Z", // 02:30 CEST
    "2026-10-25T00:30:00.000Z", // 02:30 CEST, first pass; 01:30Z (02:30 CET) does not fire
    "2026-10-26T01:30:00.000Z", // 02:30 CET
  ]);
  // Whatever instant the search starts from, the second pass never fires.
  for (const after of ["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z"]) {
    assert.equal(nextOccurrence(s, ms(after)), ms("2026-10-26T01:30:00Z"), after);
  }
  assert.equal(nextOccurrence(s, ms("2026-10-25T00:29:59.999Z")), ms("2026-10-25T00:30:00Z"));
});

Deno.test("fall back, New York: 30 1 * * * fires once, in the first pass (EDT)", () => {
  const s = cron("30 1 * * *", "America/New_York");
  assert.deepEqual(between(s, "2026-10-30T12:00:00Z", "2026-11-02T12:00:00Z"), [
    "2026-10-31T05:30:00.000Z", // 01:30 EDT
    "2026-11-01T05:30:00.000Z", // 01:30 EDT; 06:30Z (01:30 EST) does not fire
    "2026-11-02T06:30:00.000Z", // 01:30 EST
  ]);
  assert.equal(nextOccurrence(s, ms("2026-11-01T06:10:00Z")), ms("2026-11-02T06:30:00Z"));
  // Fixed hours: 01:00 fires in the first pass only, 02:00 EST as usual.
  assert.deepEqual(
    between(
      cron("0 1-2 * * *", "America/New_York"),
      "2026-11-01T04:30:00Z",
      "2026-11-01T08:00:00Z",
    ),
    ["2026-11-01T05:00:00.000Z", "2026-11-01T07:00:00.000Z"],
  );
});

Deno.test("fall back, New York: */30 fires at every real instant, 4 times in the 01:00 hour", () => {
  const got = between(
    cron("*/30 * * * *", "America/New_York"),
    "2026-11-01T04:30:00Z",
    "2026-11-01T07:00:00Z",
  );
  assert.deepEqual(got, [
    "2026-11-01T05:00:00.000Z", // 01:00 EDT
    "2026-11-01T05:30:00.000Z", // 01:30 EDT
    "2026-11-01T06:00:00.000Z", // 01:00 EST
    "2026-11-01T06:30:00.000Z", // 01:30 EST
    "2026-11-01T07:00:00.000Z", // 02:00 EST
  ]);
  assert.deepEqual(
    between(cron("@hourly", "America/New_York"), "2026-11-01T04:30:00Z", "2026-11-01T07:00:00Z"),
    ["2026-11-01T05:00:00.000Z", "2026-11-01T06:00:00.000Z", "2026-11-01T07:00:00.000Z"],
  );
  // Starting inside the second pass finds the next real instant, not the next wall time.
  assert.equal(
    nextOccurrence(cron("*/30 * * * *", "America/New_York"), ms("2026-11-01T05:30:00Z")),
    ms("2026-11-01T06:00:00Z"),
  );
});

Deno.test("fall back, Berlin: */30 fires at every real instant of the repeated hour", () => {
  assert.deepEqual(
    between(cron("*/30 * * * *", "Europe/Berlin"), "2026-10-24T23:45:00Z", "2026-10-25T02:00:00Z"),
    [
      "2026-10-25T00:00:00.000Z", // 02:00 CEST
      "2026-10-25T00:30:00.000Z", // 02:30 CEST
      "2026-10-25T01:00:00.000Z", // 02:00 CET
      "2026-10-25T01:30:00.000Z", // 02:30 CET
      "2026-10-25T02:00:00.000Z", // 03:00 CET
    ],
  );
});

Deno.test("interval schedules ignore DST: every hour stays 3,600,000 ms apart", () => {
  const s: Schedule = {
    kind: "interval",
    every_ms: 3_600_000,
    anchor_ms: ms("2026-11-01T00:00:00Z"),
  };
  assert.deepEqual(between(s, "2026-11-01T04:30:00Z", "2026-11-01T07:00:00Z"), [
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T06:00:00.000Z",
    "2026-11-01T07:00:00.000Z",
  ]);
});

Deno.test("other shapes of transition: 30-minute DST (Lord Howe), a skipped day (Apia 2011)", () => {
  // Lord Howe: +10:30 standard, +11:00 summer; 2026-10-04 02:00 -> 02:30 at 2026-10-03 15:30Z,
  // 2026-04-05 02:00 -> 01:30 at 2026-04-04 15:00Z.
  const lh = "Australia/Lord_Howe";
  assert.deepEqual(
    between(cron("15 2 * * *", lh), "2026-10-02T12:00:00Z", "2026-10-05T12:00:00Z"),
    [
      "2026-10-02T15:45:00.000Z",
      "2026-10-03T15:30:00.000Z", // 02:15 skipped: 02:30 +11:00
      "2026-10-04T15:15:00.000Z",
    ],
  );
  assert.deepEqual(
    between(cron("45 1 * * *", lh), "2026-04-03T12:00:00Z", "2026-04-06T12:00:00Z"),
    [
      "2026-04-03T14:45:00.000Z",
      "2026-04-04T14:45:00.000Z", // first pass (+11:00) only
      "2026-04-05T15:15:00.000Z",
    ],
  );
  // Samoa skipped 2011-12-30 entirely (-10:00 -> +14:00 at 2011-12-30 10:00Z).
  assert.deepEqual(
    between(cron("0 12 * * *", "Pacific/Apia"), "2011-12-28T12:00:00Z", "2011-12-31T12:00:00Z"),
    [
      "2011-12-28T22:00:00.000Z",
      "2011-12-29T22:00:00.000Z",
      "2011-12-30T10:00:00.000Z", // 12:00 on the skipped day: at the end of the gap
      "2011-12-30T22:00:00.000Z",
    ],
  );
});

Deno.test("simulated fall-back weekend in New York: the scheduler loop fires each occurrence once", () => {
  const start_ms = ms("2026-10-31T12:00:00Z");
  const end_ms = ms("2026-11-02T12:00:00Z");
  const schedules: Record<string, Schedule> = {
    fixed: cron("30 1 * * *", "America/New_York"),
    every30: cron("*/30 1 * * *", "America/New_York"),
  };
  const clock = new ManualClock(start_ms);
  const fired: Record<string, string[]> = { fixed: [], every30: [] };
  const queue = new TimerQueue(clock, () => {
    for (const { key, due_ms } of queue.takeDue(100)) {
      assert.equal(clock.now(), due_ms);
      fired[key].push(new Date(due_ms).toISOString());
      const next_ms = nextOccurrence(schedules[key], due_ms);
      if (next_ms !== null) queue.set(key, next_ms);
    }
  });
  for (const [key, s] of Object.entries(schedules)) queue.set(key, nextOccurrence(s, start_ms)!);
  clock.advanceTo(end_ms);
  assert.deepEqual(fired, {
    fixed: ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"],
    every30: [
      "2026-11-01T05:00:00.000Z",
      "2026-11-01T05:30:00.000Z",
      "2026-11-01T06:00:00.000Z",
      "2026-11-01T06:30:00.000Z",
      "2026-11-02T06:00:00.000Z",
      "2026-11-02T06:30:00.000Z",
    ],
  });
});
