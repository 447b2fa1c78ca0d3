import assert from "node:assert/strict";
import { type Clock, ManualClock, systemClock } from "../../src/clock.ts";
import { MAX_TIMER_DELAY_MS, TimerQueue } from "../../src/scheduler/timer.ts";

const T0 = Date.UTC(2026, 0, 1);

/** A queue on a manual clock that records each wake as the clock time it happened at. */
function setup(start_ms = T0) {
  const clock = new ManualClock(start_ms);
  const wakes: number[] = [];
  const q = new TimerQueue(clock, () => wakes.push(clock.now()));
  return { clock, wakes, q };
}

const keys = (xs: { key: string }[]) => xs.map((x) => x.key);

Deno.test("takeDue returns due entries earliest first and leaves the rest", () => {
  const { clock, q } = setup();
  q.set("c", T0 + 300);
  q.set("a", T0 + 100);
  q.set("b", T0 + 200);
  assert.deepEqual(q.size, 3);
  assert.deepEqual(q.nextDue(), T0 + 100);
  assert.deepEqual(q.takeDue(10), []);
  clock.advance(250);
  assert.deepEqual(q.takeDue(10), [{ key: "a", due_ms: T0 + 100 }, { key: "b", due_ms: T0 + 200 }]);
  assert.deepEqual(q.size, 1);
  assert.ok(q.has("c") && !q.has("a"));
});

Deno.test("equal due times come out in the order they were set (FIFO), moves go to the back", () => {
  const { clock, q } = setup();
  for (const k of ["k1", "k2", "k3", "k4", "k5"]) q.set(k, T0 + 10);
  q.set("k2", T0 + 10); // re-set: now last among equals
  q.set("k0", T0 + 5);
  clock.advance(10);
  assert.deepEqual(keys(q.takeDue(10)), ["k0", "k1", "k3", "k4", "k5", "k2"]);
});

Deno.test("delete removes an entry wherever it sits in the heap", () => {
  const { clock, q } = setup();
  for (let i = 0; i < 100; i++) q.set(`k${i}`, T0 + ((i * 37) % 100));
  for (let i = 0; i < 100; i += 3) assert.ok(q.delete(`k${i}`));
  assert.ok(!q.delete("k0"));
  assert.ok(!q.delete("missing"));
  clock.advance(100);
  const taken = q.takeDue(1_000);
  const expected = [...Array(100).keys()].filter((i) => i % 3 !== 0)
    .map((i) => ({ key: `k${i}`, due_ms: T0 + ((i * 37) % 100) }))
    .sort((a, b) => a.due_ms - b.due_ms);
  assert.deepEqual(taken, expected);
  assert.deepEqual(q.size, 0);
  assert.deepEqual(q.nextDue(), null);
});

Deno.test("set moves an entry earlier or later", () => {
  const { clock, q } = setup();
  q.set("a", T0 + 100);
  q.set("b", T0 + 200);
  q.set("c", T0 + 300);
  q.set("c", T0 + 50);
  q.set("a", T0 + 400);
  assert.deepEqual(q.dueOf("a"), T0 + 400);
  assert.deepEqual(q.nextDue(), T0 + 50);
  clock.advance(1_000);
  assert.deepEqual(q.takeDue(10), [
    { key: "c", due_ms: T0 + 50 },
    { key: "b", due_ms: T0 + 200 },
    { key: "a", due_ms: T0 + 400 },
  ]);
});

Deno.test("takeDue respects limit and the queue wakes again for the rest", () => {
  const { clock, wakes, q } = setup();
  for (let i = 0; i < 10; i++) q.set(`k${i}`, T0 + 100);
  clock.advance(100);
  assert.deepEqual(wakes, [T0 + 100]);
  assert.deepEqual(keys(q.takeDue(4)), ["k0", "k1", "k2", "k3"]);
  assert.deepEqual(q.takeDue(0), []);
  clock.advance(0);
  assert.deepEqual(wakes, [T0 + 100, T0 + 100]);
  assert.deepEqual(keys(q.takeDue(100)), ["k4", "k5", "k6", "k7", "k8", "k9"]);
  clock.advance(1_000);
  assert.deepEqual(wakes.length, 2);
  assert.deepEqual(clock.pending, 0);
});

Deno.test("wakes exactly at the earliest due time with one clock timer, never polling", () => {
  const { clock, wakes, q } = setup();
  q.set("late", T0 + 5_000);
  q.set("early", T0 + 1_000);
  q.set("later", T0 + 9_000);
  assert.deepEqual(clock.pending, 1);
  clock.advance(999);
  assert.deepEqual(wakes, []);
  clock.advance(1);
  assert.deepEqual(wakes, [T0 + 1_000]);
  // Not woken again while the due entry stays untaken, even as more fall due.
  clock.advance(8_000);
  assert.deepEqual(wakes, [T0 + 1_000]);
  assert.deepEqual(clock.pending, 0);
  assert.deepEqual(keys(q.takeDue(1)), ["early"]);
  clock.advance(0);
  assert.deepEqual(wakes, [T0 + 1_000, T0 + 9_000]);
  assert.deepEqual(keys(q.takeDue(10)), ["late", "later"]);
  assert.deepEqual(clock.pending, 0);
});

Deno.test("setting an entry earlier than the armed time re-arms; a later one does not", () => {
  const { clock, wakes, q } = setup();
  q.set("a", T0 + 1_000);
  q.set("b", T0 + 2_000);
  q.set("c", T0 + 400);
  assert.deepEqual(clock.pending, 1);
  clock.advance(400);
  assert.deepEqual(wakes, [T0 + 400]);
  assert.deepEqual(keys(q.takeDue(10)), ["c"]);
  q.set("d", T0 + 450);
  q.set("e", T0 + 1_500);
  assert.equal(clock.pending, 1);
  clock.advance(50);
  assert.deepEqual(wakes, [T0 + 400, T0 + 450]);
  // Woken and "d" untaken: a new earliest entry, already due, wakes the consumer on the next turn.
  q.set("f", T0 + 420);
  clock.advance(0);
  assert.deepEqual(wakes, [T0 + 400, T0 + 450, T0 + 450]);
  assert.deepEqual(keys(q.takeDue(10)), ["f", "d"]);
});

Deno.test("a stale timer after delete or moving later re-arms silently", () => {
  const { clock, wakes, q } = setup();
  q.set("a", T0 + 100);
  q.set("b", T0 + 300);
  q.delete("a");
  clock.advance(100);
  assert.deepEqual(wakes, []);
  assert.deepEqual(clock.pending, 1);
  q.set("b", T0 + 500);
  clock.advance(300);
  assert.deepEqual(wakes, []);
  clock.advance(100);
  assert.deepEqual(wakes, [T0 + 500]);
});

Deno.test("delays beyond 2^31-1 ms are clamped and re-armed until due", () => {
  const delays: number[] = [];
  const inner = new ManualClock(T0);
  const clock: Clock = {
    now: () => inner.now(),
    setTimeout: (fn, delay_ms) => {
      delays.push(delay_ms);
      return inner.setTimeout(fn, delay_ms);
    },
    clearTimeout: (h) => inner.clearTimeout(h),
  };
  const wakes: number[] = [];
  const q = new TimerQueue(clock, () => wakes.push(inner.now()));
  const due_ms = T0 + 3 * MAX_TIMER_DELAY_MS + 5;
  q.set("far", due_ms);
  inner.advanceTo(due_ms);
  assert.deepEqual(delays, [MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS, MAX_TIMER_DELAY_MS, 5]);
  assert.deepEqual(wakes, [due_ms]);
});

Deno.test("clear empties and disarms; stop disarms for good", () => {
  const { clock, wakes, q } = setup();
  q.set("a", T0 + 10);
  q.clear();
  assert.deepEqual(q.size, 0);
  assert.deepEqual(clock.pending, 0);
  q.set("b", T0 + 20);
  assert.deepEqual(clock.pending, 1);
  q.stop();
  assert.deepEqual(clock.pending, 0);
  q.set("c", T0 + 5);
  clock.advance(100);
  assert.deepEqual(wakes, []);
  assert.deepEqual(keys(q.takeDue(10)), ["c", "b"]);
  assert.deepEqual(clock.pending, 0);
  assert.throws(() => q.set("nan", NaN), RangeError);
});

Deno.test("with the system clock, wakes within milliseconds of the due time", async () => {
  let resolve: (late_ms: number) => void = () => {};
  const woke = new Promise<number>((r) => resolve = r);
  const due_ms = Date.now() + 30;
  const q = new TimerQueue(systemClock, () => resolve(Date.now() - due_ms));
  q.set("x", due_ms);
  const late_ms = await woke;
  assert.deepEqual(keys(q.takeDue(1)), ["x"]);
  q.stop();
  assert.ok(late_ms >= 0 && late_ms < 50, `woke ${late_ms} ms after the due time`);
});

Deno.test("1,000,000 entries: insert, move, delete, drain in order", () => {
  const n = 1_000_000;
  const { clock, q } = setup(0);
  // Pseudo-random due times with many ties (LCG), keys in insertion order.
  let x = 12345;
  const due = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    due[i] = x % 100_000;
    q.set(`job-${i}`, due[i]);
  }
  assert.deepEqual(q.size, n);
  for (let i = 0; i < n; i += 10) {
    due[i] = 100_000 + (i % 7);
    q.set(`job-${i}`, due[i]); // move later
  }
  for (let i = 5; i < n; i += 10) q.delete(`job-${i}`);
  assert.deepEqual(q.size, n - n / 10);
  clock.advanceTo(200_000);
  let count = 0;
  let prev_due = -1;
  let prev_index = -1;
  for (;;) {
    const batch = q.takeDue(50_000);
    if (batch.length === 0) break;
    for (const { key, due_ms } of batch) {
      const i = Number(key.slice(4));
      if (due_ms !== due[i]) throw new Error(`${key} came out at ${due_ms}, expected ${due[i]}`);
      // Sorted by due time; among ties, insertion order (moved entries were re-set in index
      // order, after all inserts, so index order holds within each tie group here).
      const in_order = due_ms > prev_due || (due_ms === prev_due && i > prev_index);
      if (!in_order) throw new Error(`${key} (${due_ms}) out of order after ${prev_due}`);
      prev_due = due_ms;
      prev_index = i;
      count++;
    }
  }
  assert.deepEqual(count, n - n / 10);
  assert.deepEqual(q.size, 0);
});
