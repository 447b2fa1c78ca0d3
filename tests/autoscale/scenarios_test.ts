/**
 * The controller in simulated time: minutes of synthetic load on a pool, one evaluation every
 * 15 s, heartbeats every 5 s. Each scenario is paired with the variation that must behave
 * differently, so a controller that ignored the rule would fail it.
 */
import assert from "node:assert/strict";
import { ValidationError } from "../../src/errors.ts";
import { decide, initialState, type PendingTimeslot } from "../../src/autoscale/mod.ts";
import { adaptive, capacity, countAt, MINUTE_MS, pool, SECOND_MS, simulate } from "./support.ts";

const INTERVAL_MS = 15 * SECOND_MS;

Deno.test("a load step up scales up within one interval, then to the load over the target", () => {
  const step_ms = 10 * MINUTE_MS + 2 * SECOND_MS;
  const run = simulate({
    scale: adaptive({ cooldown_seconds: 60 }),
    current: 3,
    minutes: 20,
    load: (t) => ({ cpu: t < step_ms ? 180 : 285 }),
  });
  assert.equal(run.decisions.filter((d) => d.t_ms < step_ms).length, 0, "at the target: no change");
  const first = run.decisions[0];
  assert.ok(first.t_ms - step_ms <= INTERVAL_MS, `first decision ${first.t_ms - step_ms} ms late`);
  assert.equal(first.decision.from, 3);
  assert.ok(first.decision.to > 3);
  assert.equal(first.decision.cause, "cpu");
  assert.match(
    first.decision.reason,
    /^scale up from 3 to \d+: cpu at [\d.]+% per worker against a target of 60%/,
  );
  // 285 % of one worker at 60 % per worker: 4.75, so 5 workers at 57 % each.
  assert.equal(run.final, 5);
});

Deno.test("a load step down scales down only after the stabilisation window", () => {
  const step_ms = 10 * MINUTE_MS;
  const scenario = {
    scale: adaptive({ cooldown_seconds: 0 }),
    current: 6,
    minutes: 25,
    load: (t: number) => ({ cpu: t < step_ms ? 360 : 120 }),
  };
  const run = simulate(scenario);
  const downs = run.decisions.filter((d) => d.decision.to < d.decision.from);
  assert.ok(downs.length > 0, "the load fell to a third: the pool shrinks");
  const first = downs[0];
  assert.ok(
    first.t_ms >= step_ms + 300 * SECOND_MS - INTERVAL_MS,
    `down at ${first.t_ms - step_ms} ms`,
  );
  assert.ok(first.t_ms <= step_ms + 300 * SECOND_MS + 2 * INTERVAL_MS);
  assert.equal(run.final, 2, "120 % at 60 % per worker: 2 workers");
  assert.ok(run.decisions.every((d) => d.decision.to >= 2), "never below what the load needs");

  const hasty = simulate({ ...scenario, behaviour: { scale_down_window_ms: 0 } });
  const hastyDown = hasty.decisions.find((d) => d.decision.to < d.decision.from);
  assert.ok(
    hastyDown !== undefined && hastyDown.t_ms <= step_ms + 2 * INTERVAL_MS,
    "no window: at once",
  );
});

Deno.test("the stabilised scale-down says so", () => {
  // Load falls in two steps: the first scale-down stops at the window's highest recommendation.
  const run = simulate({
    scale: adaptive(),
    current: 8,
    minutes: 30,
    load: (t) => ({ cpu: t < 10 * MINUTE_MS ? 480 : t < 13 * MINUTE_MS ? 240 : 60 }),
  });
  const stabilised = run.decisions.find((d) => d.decision.cause === "stabilised");
  assert.ok(stabilised, JSON.stringify(run.decisions.map((d) => d.decision.reason)));
  assert.match(stabilised.decision.reason, /the highest recommendation of the last 300 s/);
  assert.ok(stabilised.decision.to > stabilised.decision.metrics.clamped);
  assert.equal(run.final, 1);
});

Deno.test("load oscillating inside the tolerance band makes no decision; outside it does", () => {
  const wave = (amplitude: number) => (t: number) => ({
    cpu: 4 * (60 + amplitude * Math.sin((2 * Math.PI * t) / (3 * MINUTE_MS))),
  });
  const inside = simulate({ scale: adaptive(), current: 4, minutes: 60, load: wave(5.5) });
  assert.deepEqual(inside.decisions, []);
  const outside = simulate({ scale: adaptive(), current: 4, minutes: 60, load: wave(20) });
  assert.ok(outside.decisions.length > 0);
});

Deno.test("cooldown holds: no two decisions within cooldown_seconds", () => {
  const ramp = (t: number) => ({ cpu: 60 + (t / MINUTE_MS) * 40 });
  const run = simulate({
    scale: adaptive({ cooldown_seconds: 120 }),
    current: 1,
    minutes: 20,
    load: ramp,
  });
  assert.ok(run.decisions.length >= 3, `${run.decisions.length} decisions`);
  for (let i = 1; i < run.decisions.length; i++) {
    const apart = run.decisions[i].t_ms - run.decisions[i - 1].t_ms;
    assert.ok(apart >= 120 * SECOND_MS, `decisions ${apart} ms apart`);
  }
  const eager = simulate({
    scale: adaptive({ cooldown_seconds: 0 }),
    current: 1,
    minutes: 20,
    load: ramp,
  });
  const gaps = eager.decisions.slice(1).map((d, i) => d.t_ms - eager.decisions[i].t_ms);
  assert.ok(
    gaps.some((g) => g < 120 * SECOND_MS),
    "without a cooldown the ramp is followed closer",
  );
});

Deno.test("pending allocations that fit no worker add the workers they fill", () => {
  const job = { cpu_millis: 1500, memory_mb: 1024, disk_mb: 0, slots: 1 };
  const pending = Array.from({ length: 5 }, (_, i) => ({ id: `a${i}`, resources: job }));
  const { decision } = decide(
    pool(adaptive({ max: 10 })),
    { current: 2, workers: ["w0", "w1"], samples: [], pending, timeslots: [] },
    initialState(),
    60_000,
  );
  // Two of 1500 millis fit a worker of 4000: five need three new workers on top of the two.
  assert.equal(decision?.to, 5);
  assert.equal(decision?.cause, "pending");
  assert.equal(decision?.metrics.demand.pending_workers, 3);
  assert.match(
    decision?.reason ?? "",
    /^scale up from 2 to 5: 5 pending allocations that fit no worker need 3 workers more/,
  );

  const huge = { id: "big", resources: { ...job, cpu_millis: 64_000 } };
  const none = decide(
    pool(adaptive({ max: 10 })),
    { current: 2, workers: ["w0", "w1"], samples: [], pending: [huge], timeslots: [] },
    initialState(),
    60_000,
  );
  assert.equal(none.decision, null, "larger than any worker of the pool: scaling cannot help");
});

Deno.test("workers starting for pending work are not asked for again", () => {
  const job = { cpu_millis: 1500, memory_mb: 1024, disk_mb: 0, slots: 1 };
  const pending = Array.from({ length: 5 }, (_, i) => ({ id: `a${i}`, resources: job }));
  const observed = { current: 5, workers: ["w0", "w1"], samples: [], pending, timeslots: [] };
  const starting = decide(pool(adaptive({ max: 10 })), observed, initialState(), 60_000);
  assert.equal(starting.decision, null, "the three decided workers are coming up");
  const more = decide(
    pool(adaptive({ max: 10 })),
    { ...observed, pending: [...pending, ...pending.map((a) => ({ ...a, id: `b${a.id}` }))] },
    initialState(),
    60_000,
  );
  assert.equal(more.decision?.to, 7, "ten need five new workers, three are starting: two more");
  assert.match(more.decision?.reason ?? "", /need 5 workers more, 3 starting/);
});

Deno.test("pending work scales the pool up in simulated time and max caps it", () => {
  const job = { cpu_millis: 2000, memory_mb: 1024, disk_mb: 0, slots: 1 };
  // Twelve allocations of half a worker arrive at 2 min; the two workers there are stay busy,
  // each new worker takes two of them, and those it cannot take stay pending until 4 min.
  const run = simulate({
    scale: adaptive({ max: 6, cooldown_seconds: 30 }),
    current: 2,
    minutes: 10,
    load: () => ({ cpu: 120 }),
    pending: (t, current) => {
      if (t < 2 * MINUTE_MS || t >= 4 * MINUTE_MS) return [];
      const placed = 2 * Math.max(0, current - 2);
      return Array.from(
        { length: Math.max(0, 12 - placed) },
        (_, i) => ({ id: `a${i}`, resources: job }),
      );
    },
  });
  const up = run.decisions[0];
  assert.equal(up.t_ms, 2 * MINUTE_MS);
  assert.equal(up.decision.to, 6, "12 pending need 6 workers more, max 6");
  assert.equal(up.decision.cause, "max");
  assert.match(up.decision.reason, /held to max 6$/);
  assert.equal(countAt(run, 2, 4 * MINUTE_MS), 6, "four still pending: nothing to add under max");
  assert.equal(
    run.final,
    2,
    "the load alone needs two once the work is gone and the window passed",
  );
});

Deno.test("a timeslot raises the count from its lead time until it ends", () => {
  const slot: PendingTimeslot = {
    id: "nightly",
    start_ms: 30 * MINUTE_MS,
    end_ms: 40 * MINUTE_MS,
    lead_ms: 10 * MINUTE_MS,
    count: 4,
    resources: capacity(),
  };
  const run = simulate({
    scale: adaptive({ min: 2 }),
    current: 2,
    minutes: 60,
    load: () => ({ cpu: 120 }),
    timeslots: () => [slot],
  });
  assert.equal(countAt(run, 2, 20 * MINUTE_MS - INTERVAL_MS), 2, "before the lead time");
  const up = run.decisions[0];
  assert.equal(up.t_ms, 20 * MINUTE_MS, "at the lead time");
  assert.equal(up.decision.cause, "timeslots");
  assert.match(
    up.decision.reason,
    /^scale up from 2 to 6: 1 timeslot within its lead time needs 4 workers/,
  );
  // Four whole workers on top of the two the load needs; the load spreads over all six.
  assert.equal(up.decision.to, 6);
  assert.equal(countAt(run, 2, 40 * MINUTE_MS), 6, "held while the slot runs");
  assert.equal(run.final, 2, "and given back after it ends and the window passes");
});

Deno.test("min and max hold over load, and the count is brought into range", () => {
  const flood = simulate({
    scale: adaptive({ min: 2, max: 4 }),
    current: 3,
    minutes: 10,
    load: () => ({ cpu: 2000 }),
  });
  assert.equal(flood.final, 4);
  assert.equal(flood.decisions.at(-1)?.decision.cause, "max");
  const idle = simulate({
    scale: adaptive({ min: 2, max: 4 }),
    current: 3,
    minutes: 20,
    load: () => ({ cpu: 0 }),
  });
  assert.equal(idle.final, 2);
  const below = simulate({
    scale: adaptive({ min: 3 }),
    current: 1,
    minutes: 1,
    load: () => ({ cpu: 60 }),
  });
  assert.equal(below.decisions[0].decision.to, 3);
  assert.equal(below.decisions[0].decision.cause, "min");
});

Deno.test("missing metrics: no scale-down on them, a cautious scale-up", () => {
  const scale = adaptive({ targets: { cpu: 50 } });
  // Two of four workers silent while the load is low: they count as busy, so no scale-down.
  const quiet = simulate({
    scale,
    current: 4,
    minutes: 15,
    load: () => ({ cpu: 40 }),
    silent: (_t, i) => i >= 2,
  });
  assert.deepEqual(quiet.decisions, [], quiet.decisions.map((d) => d.decision.reason).join("\n"));
  // The same load with every worker reporting shrinks the pool.
  const heard = simulate({ scale, current: 4, minutes: 15, load: () => ({ cpu: 40 }) });
  assert.equal(heard.final, 1);

  // Busy reporters, silent others counted idle: up by the load seen, not by the ratio alone.
  const { decision } = decide(
    pool(scale),
    {
      current: 4,
      workers: ["w0", "w1", "w2", "w3"],
      samples: [
        { worker_id: "w0", at_ms: 59_000, cpu_percent: 100 },
        { worker_id: "w1", at_ms: 59_000, cpu_percent: 100 },
      ],
      pending: [],
      timeslots: [],
    },
    initialState(),
    60_000,
  );
  // Ratio 2 on the reporters would want 8; filled in, (200 + 0 + 0) / 50 = 4: no change.
  assert.equal(decision, null);

  // A target with no report at all blocks a scale-down the others want.
  const blocked = simulate({
    scale: adaptive({ targets: { cpu: 50, rps: 10 } }),
    current: 4,
    minutes: 15,
    load: () => ({ cpu: 40 }),
  });
  assert.deepEqual(blocked.decisions, []);
});

Deno.test("a fixed pool goes to its count at once and stays", () => {
  const run = simulate({
    scale: { mode: "fixed", replicas: 3 },
    current: 1,
    minutes: 5,
    load: () => ({ cpu: 1000 }),
  });
  assert.equal(run.decisions.length, 1);
  assert.equal(run.decisions[0].decision.reason, "the pool is fixed at 3 workers");
  assert.equal(run.final, 3);
});

Deno.test("a leader change with the state of the last decision: cooldown honoured, no repeat", () => {
  const scale = adaptive({ cooldown_seconds: 300 });
  const load = (t: number) => ({ cpu: t < 5 * MINUTE_MS ? 120 : t < 8 * MINUTE_MS ? 300 : 600 });
  const leader = simulate({ scale, current: 2, minutes: 20, load });
  // The old leader decides at 5 min, then fails; the log holds that decision and its state.
  let logged = initialState();
  const successor = simulate({
    scale,
    current: 2,
    minutes: 20,
    load,
    handover: (t, state) => {
      if (t <= 6 * MINUTE_MS) {
        if (state.last_decision_ms === t - INTERVAL_MS) logged = structuredClone(state);
        return state;
      }
      return t === 6 * MINUTE_MS + INTERVAL_MS ? JSON.parse(JSON.stringify(logged)) : state;
    },
  });
  assert.ok(leader.decisions.length >= 2);
  assert.deepEqual(
    successor.decisions.map((d) => [d.t_ms, d.decision.from, d.decision.to]),
    leader.decisions.map((d) => [d.t_ms, d.decision.from, d.decision.to]),
  );
  const [first, second] = successor.decisions;
  assert.ok(second.t_ms - first.t_ms >= 300 * SECOND_MS, "the inherited cooldown holds");
});

Deno.test("a new leader that missed recommendations holds the count for a scale-down window", () => {
  const scale = adaptive();
  const load = () => ({ cpu: 60 });
  const state = decide(
    pool(scale),
    { current: 5, workers: [], samples: [], pending: [], timeslots: [] },
    initialState(),
    0,
  ).state;
  // 10 minutes later (a gap: the old leader's later recommendations are lost) the load is low.
  const run = simulate({ scale, current: 5, minutes: 10, load, state, start_ms: 10 * MINUTE_MS });
  const down = run.decisions[0];
  assert.ok(down.t_ms >= 15 * MINUTE_MS, `down at ${down.t_ms} ms`);
  assert.equal(run.final, 1);
});

Deno.test("a spec out of range is refused with what to change", () => {
  const observed = { current: 1, workers: [], samples: [], pending: [], timeslots: [] };
  const refused = (scale: unknown) => {
    try {
      decide(pool(scale as never), observed, initialState(), 0);
    } catch (e) {
      if (e instanceof ValidationError) return e.issues.map((i) => `${i.path} ${i.message}`);
      throw e;
    }
    assert.fail("accepted");
  };
  assert.deepEqual(refused(adaptive({ min: 5, max: 2 })), [
    "scale.min is 5, above max 2: lower min or raise max",
  ]);
  assert.deepEqual(refused(adaptive({ targets: {} })), [
    "scale.targets set at least one of cpu, memory (percent) or rps (per worker)",
  ]);
  assert.deepEqual(refused(adaptive({ targets: { cpu: 150 } })), [
    "scale.targets.cpu must be a percentage above 0, at most 100",
  ]);
  assert.deepEqual(refused({ mode: "fixed", replicas: -1 }), [
    "scale.replicas must be a whole number from 0 to 10000",
  ]);
});
