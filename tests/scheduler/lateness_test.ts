/** The console's lateness ring: buckets by wall time, percentiles, bounded memory, the window. */
import assert from "node:assert/strict";
import { LatenessRing } from "../../src/scheduler/lateness.ts";

Deno.test("lateness ring summarises each 10 s bucket and forgets what left the window", () => {
  let now = 1_000_000_000_000;
  const ring = new LatenessRing({ now: () => now });
  for (let i = 1; i <= 100; i++) ring.record(i / 1_000);
  now += 10_000;
  ring.record(2);

  let summary = ring.summary();
  assert.equal(summary.length, 60);
  assert.equal(summary.at(-1)!.start_ms, now);
  assert.deepEqual(summary.at(-1), { start_ms: now, count: 1, p50: 2, p99: 2, max: 2 });
  assert.deepEqual(summary.at(-2), {
    start_ms: now - 10_000,
    count: 100,
    p50: 0.05,
    p99: 0.099,
    max: 0.1,
  });
  assert.ok(summary.slice(0, -2).every((b) => b.count === 0 && b.max === null));

  now += 59 * 10_000; // the first bucket has left the 10-minute window, the second not yet
  summary = ring.summary();
  assert.equal(summary.reduce((n, b) => n + b.count, 0), 1);
  assert.equal(summary[0].max, 2);

  now += 10_000;
  ring.record(0.5); // reuses the slot of the bucket that left
  summary = ring.summary();
  assert.deepEqual(summary.filter((b) => b.count > 0).map((b) => b.max), [0.5]);
});

Deno.test("lateness ring keeps a bounded sample but an exact count and max", () => {
  const ring = new LatenessRing({ now: () => 0, sample_max: 10, random: () => 0.999 });
  for (let i = 0; i < 1_000; i++) ring.record(i === 500 ? 9 : 0.001);
  const [bucket] = ring.summary().slice(-1);
  assert.equal(bucket.count, 1_000);
  assert.equal(bucket.max, 9);
  assert.equal(bucket.p50, 0.001, "the sample stays the first ten when random is near 1");
});
