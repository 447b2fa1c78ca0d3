/** SteadyWallClock: follows the wall clock, but absorbs steps instead of jumping with them. */
import assert from "node:assert/strict";
import { SteadyWallClock } from "../src/clock.ts";

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);

function fakeTime() {
  const t = { wall: T0, mono: 1_000 };
  const clock = new SteadyWallClock(() => t.wall, () => t.mono);
  /** Real time passes: both clocks advance by `ms`. */
  const pass = (ms: number) => {
    t.wall += ms;
    t.mono += ms;
  };
  return { t, clock, pass };
}

Deno.test("follows the wall clock, and small corrections at once", () => {
  const { t, clock, pass } = fakeTime();
  assert.equal(clock.now(), T0);
  pass(1_500);
  assert.equal(clock.now(), T0 + 1_500);
  t.wall += 400; // an NTP correction within the tolerance
  assert.equal(clock.now(), T0 + 1_900);
});

Deno.test("a forward step of the wall clock is caught up at 10% over real time, not jumped", () => {
  const { t, clock, pass } = fakeTime();
  clock.now();
  t.wall += 7_000; // the wall clock steps 7 s ahead
  pass(1_000);
  const after = clock.now();
  assert.equal(after, T0 + 1_100, "one real second later the clock has moved 1.1 s, not 8 s");
  for (let i = 0; i < 59; i++) {
    pass(1_000);
    clock.now();
  }
  pass(1_000);
  assert.equal(clock.now(), t.wall, "caught up within ~70 s of real time");
});

Deno.test("a backward step never moves the clock back; it runs 10% slow until the wall catches up", () => {
  const { t, clock, pass } = fakeTime();
  pass(10_000);
  const before = clock.now();
  t.wall -= 20_000; // the wall clock steps 20 s back
  pass(1_000);
  assert.equal(clock.now(), before + 900);
  let last = before;
  for (let i = 0; i < 250; i++) {
    pass(1_000);
    const now = clock.now();
    assert.ok(now >= last, "never goes back");
    last = now;
  }
  assert.equal(clock.now(), t.wall, "the wall clock caught up");
});
