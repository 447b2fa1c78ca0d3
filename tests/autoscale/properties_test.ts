/**
 * Properties of the controller over random pools and random load series in simulated time:
 * `min` and `max` hold for every decision, the cooldown holds, the state is plain data a new
 * leader continues from exactly, and the pruned recommendation history decides as the full one.
 * `FUZZ_RUNS=2000 deno test --allow-all tests/autoscale/` for a longer run.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AdaptiveScale,
  type Behaviour,
  DEFAULT_BEHAVIOUR,
  type Recommendation,
  remember,
  type ScaleTargets,
  windowBounds,
} from "../../src/autoscale/mod.ts";
import { FUZZ_RUNS, type Scenario, SECOND_MS, simulate } from "./support.ts";

const INTERVAL_MS = 15 * SECOND_MS;
const params = { numRuns: FUZZ_RUNS };

const targetsArb: fc.Arbitrary<ScaleTargets> = fc
  .record(
    {
      cpu: fc.integer({ min: 10, max: 100 }),
      memory: fc.integer({ min: 10, max: 100 }),
      rps: fc.integer({ min: 1, max: 500 }),
    },
    { requiredKeys: [] },
  )
  .filter((t) => Object.keys(t).length > 0);

const scaleArb: fc.Arbitrary<AdaptiveScale> = fc
  .record({
    min: fc.integer({ min: 0, max: 5 }),
    span: fc.integer({ min: 0, max: 15 }),
    cooldown_seconds: fc.constantFrom(0, 15, 30, 60, 120, 300),
    targets: targetsArb,
  })
  .map(({ min, span, cooldown_seconds, targets }) => ({
    mode: "adaptive" as const,
    min,
    max: Math.max(1, min + span),
    cooldown_seconds,
    targets,
  }));

/** One tick of load: pool totals, pending allocations, and which workers stay silent. */
const tickArb = fc.record({
  cpu: fc.integer({ min: 0, max: 2500 }),
  memory: fc.integer({ min: 0, max: 2500 }),
  rps: fc.integer({ min: 0, max: 10_000 }),
  pending: fc.nat({ max: 12 }),
  silent_mask: fc.nat({ max: 255 }),
});

const behaviourArb: fc.Arbitrary<Partial<Behaviour>> = fc.record(
  {
    tolerance: fc.constantFrom(0, 0.05, 0.1, 0.2),
    scale_down_window_ms: fc.constantFrom(0, 60_000, 300_000),
    scale_up_window_ms: fc.constantFrom(0, 30_000),
  },
  { requiredKeys: [] },
);

const seriesArb = fc.record({
  scale: scaleArb,
  current: fc.nat({ max: 25 }),
  ticks: fc.array(tickArb, { minLength: 1, maxLength: 80 }),
  behaviour: behaviourArb,
});

type Series = typeof seriesArb extends fc.Arbitrary<infer T> ? T : never;

const job = { cpu_millis: 1500, memory_mb: 2048, disk_mb: 0, slots: 1 };

/** The scenario a random series describes: one entry of `ticks` per 15 s interval. */
function scenario(series: Series): Scenario {
  const at = (t: number) =>
    series.ticks[Math.min(series.ticks.length - 1, Math.floor((t - 1) / INTERVAL_MS))];
  return {
    scale: series.scale,
    current: series.current,
    minutes: Math.ceil((series.ticks.length * INTERVAL_MS) / 60_000),
    behaviour: series.behaviour,
    load: (t) => at(t),
    pending: (t) =>
      Array.from({ length: at(t).pending }, (_, i) => ({ id: `a${i}`, resources: job })),
    silent: (t, i) => i < 8 && (at(t).silent_mask & (1 << i)) !== 0,
  };
}

Deno.test("every decision lies within [min, max], moves, and keeps the cooldown", () => {
  fc.assert(
    fc.property(seriesArb, (series) => {
      const { scale } = series;
      const run = simulate(scenario(series));
      let current = series.current;
      let last_ms: number | null = null;
      for (const tick of run.ticks) {
        assert.equal(tick.current, current);
        const d = tick.decision;
        if (d === null) continue;
        assert.ok(
          d.to >= scale.min && d.to <= scale.max,
          `${d.to} outside [${scale.min}, ${scale.max}]`,
        );
        assert.notEqual(d.to, d.from);
        assert.equal(d.from, current);
        if (last_ms !== null) assert.ok(tick.t_ms - last_ms >= scale.cooldown_seconds * 1000);
        last_ms = tick.t_ms;
        current = d.to;
      }
      // Out of range at the start, the first evaluation brings the count into it.
      const first = run.ticks[0];
      if (series.current < scale.min || series.current > scale.max) {
        assert.ok(first.decision !== null, "out of range, no decision");
      }
      if (run.decisions.length > 0) assert.ok(run.final >= scale.min && run.final <= scale.max);
    }),
    params,
  );
});

Deno.test("the state is plain data, short, and a new leader given it decides the same", () => {
  fc.assert(
    fc.property(seriesArb, fc.nat(), (series, k) => {
      const straight = simulate(scenario(series));
      const handover_ms = straight.ticks[k % straight.ticks.length].t_ms;
      const resumed = simulate({
        ...scenario(series),
        handover: (t, state) => (t === handover_ms ? JSON.parse(JSON.stringify(state)) : state),
      });
      assert.deepEqual(resumed.ticks, straight.ticks);
      const distinct = series.scale.max - series.scale.min + 1;
      for (const tick of straight.ticks) {
        assert.deepStrictEqual(JSON.parse(JSON.stringify(tick.state)), tick.state);
        assert.ok(tick.state.recommendations.length <= 2 * distinct + 1);
      }
    }),
    params,
  );
});

/** The bounds straight from every recommendation ever made (HPA's way). */
function naiveBounds(all: Recommendation[], now_ms: number, behaviour: Behaviour) {
  const latest = all[all.length - 1].replicas;
  const inUp = all.filter((r) => r.at_ms > now_ms - behaviour.scale_up_window_ms);
  const inDown = all.filter((r) => r.at_ms > now_ms - behaviour.scale_down_window_ms);
  return {
    up: Math.min(latest, ...inUp.map((r) => r.replicas)),
    down: Math.max(latest, ...inDown.map((r) => r.replicas)),
  };
}

Deno.test("the pruned history gives the bounds of the full history", () => {
  const stepArb = fc.record({
    dt_ms: fc.integer({ min: 0, max: 90_000 }),
    replicas: fc.nat({ max: 12 }),
  });
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 1, maxLength: 120 }),
      fc.constantFrom(0, 15_000, 60_000, 300_000),
      fc.constantFrom(0, 30_000, 120_000),
      (steps, down_ms, up_ms) => {
        const behaviour = {
          ...DEFAULT_BEHAVIOUR,
          scale_down_window_ms: down_ms,
          scale_up_window_ms: up_ms,
        };
        const all: Recommendation[] = [];
        let kept: Recommendation[] = [];
        let now_ms = 0;
        for (const step of steps) {
          now_ms += step.dt_ms;
          const rec = { at_ms: now_ms, replicas: step.replicas };
          all.push(rec);
          kept = remember(kept, rec, behaviour);
          assert.deepEqual(
            windowBounds(kept, null, now_ms, behaviour),
            naiveBounds(all, now_ms, behaviour),
          );
          assert.ok(kept.length <= 2 * 13 + 1, `${kept.length} kept`);
        }
      },
    ),
    params,
  );
});
