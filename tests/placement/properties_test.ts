/**
 * Properties of the placement engine over random fleets and requests (fast-check), judged against
 * the oracle in support.ts, in both the bounded and the exhaustive mode unless a property names one.
 * `FUZZ_RUNS=5000 deno test --allow-all tests/placement/` for a longer run.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Decision,
  Fleet,
  freezeRequest,
  place,
  placeBatch,
  type PlacementRequest,
  rank,
  RESOURCE_NAMES,
  type WorkerView,
} from "../../src/placement/mod.ts";
import {
  binpackFitness,
  feasibleFor,
  fleetArb,
  FUZZ_RUNS,
  requestArb,
  resources,
  worker,
  workerArb,
} from "./support.ts";

const params = { numRuns: FUZZ_RUNS };
const seedArb = fc.integer({ min: 0, max: 0xffffffff });

function byId(workers: WorkerView[]): Map<string, WorkerView> {
  return new Map(workers.map((w) => [w.id, w]));
}

/** Each placement fits the worker's free capacity and is on a distinct, feasible worker. */
function assertSound(d: Decision, request: PlacementRequest, views: Map<string, WorkerView>) {
  const ids = d.placements.map((p) => p.worker_id);
  assert.equal(new Set(ids).size, ids.length, "placements are on distinct workers");
  if (request.count !== "all") assert.ok(ids.length <= (request.count ?? 1));
  for (const id of ids) {
    const w = views.get(id)!;
    assert.ok(feasibleFor(w, request), `worker ${id} is feasible by the oracle`);
  }
}

function assertCountsAddUp(d: Decision) {
  const e = d.explanation;
  const removed = e.filtered.reduce((s, f) => s + f.workers, 0);
  assert.equal(removed + e.feasible + (e.workers_total - e.workers_evaluated), e.workers_total);
  assert.ok(e.workers_evaluated <= e.workers_total);
}

Deno.test("a decision only uses feasible workers: pool, ready, required constraints, NoSchedule taints, free capacity", () => {
  fc.assert(
    fc.property(
      fleetArb(),
      requestArb(),
      seedArb,
      fc.boolean(),
      fc.boolean(),
      (workers, request, seed, exhaustive, frozen) => {
        const fleet = new Fleet(workers);
        if (frozen) freezeRequest(request);
        const d = place(fleet, request, { seed, exhaustive });
        assertSound(d, request, byId(workers));
        assertCountsAddUp(d);
        const feasible = workers.filter((w) => feasibleFor(w, request));
        // No false "nothing fits", and a short count only when the fleet has too few workers.
        if (request.count === "all") {
          assert.deepEqual(d.placements.map((p) => p.worker_id).sort(), feasible.map((w) => w.id));
          assert.equal(d.ok, feasible.length > 0);
        } else {
          assert.equal(d.placements.length, Math.min(request.count ?? 1, feasible.length));
          assert.equal(d.ok, feasible.length >= (request.count ?? 1));
        }
        if (!d.ok) {
          assert.equal(
            d.explanation.workers_evaluated,
            workers.length,
            "a failed pick saw every worker",
          );
          assert.match(d.explanation.filtered.map((f) => f.reason).join(";"), /\S/);
        }
        // place() leaves the fleet as it found it.
        for (const w of workers) assert.deepEqual(fleet.worker(w.id)!.free, w.free);
      },
    ),
    params,
  );
});

Deno.test("an exhaustive pick's explanation counts every worker once, as the oracle does", () => {
  fc.assert(
    fc.property(fleetArb(), requestArb(), seedArb, (workers, request, seed) => {
      const one = { ...request, count: 1 };
      const d = place(new Fleet(workers), one, { seed, exhaustive: true });
      assert.equal(d.explanation.workers_evaluated, workers.length);
      assert.equal(d.explanation.feasible, workers.filter((w) => feasibleFor(w, one)).length);
      assertCountsAddUp(d);
      const pool = d.explanation.filtered.find((f) => f.stage === "pool")?.workers ?? 0;
      const outside = one.pool === undefined
        ? 0
        : workers.filter((w) => w.pool !== one.pool).length;
      assert.equal(pool, outside);
    }),
    params,
  );
});

Deno.test("a batch never over-allocates any resource of any worker", () => {
  fc.assert(
    fc.property(
      fleetArb(),
      fc.array(requestArb(), { minLength: 1, maxLength: 12 }),
      seedArb,
      fc.boolean(),
      (workers, requests, seed, exhaustive) => {
        const reqs = requests.map((r, i) => ({ ...r, job_id: `job-${i % 3}` }));
        const fleet = new Fleet(workers);
        const decisions = placeBatch(fleet, reqs, { seed, exhaustive });
        const held = new Map(workers.map((w) => [w.id, resources(0, 0, 0, 0)]));
        decisions.forEach((d, i) => {
          assertCountsAddUp(d);
          for (const p of d.placements) {
            const h = held.get(p.worker_id)!;
            for (const r of RESOURCE_NAMES) h[r] += reqs[i].resources[r];
          }
        });
        for (const w of workers) {
          const h = held.get(w.id)!;
          const now = fleet.worker(w.id)!.free;
          for (const r of RESOURCE_NAMES) {
            assert.ok(h[r] <= w.free[r], `${w.id} ${r}: held ${h[r]} of ${w.free[r]} free`);
            assert.equal(now[r], w.free[r] - h[r], "the fleet view took exactly what was placed");
          }
        }
        // Releasing every hold gives the fleet back as it was.
        decisions.forEach((d) => {
          for (const p of d.placements) {
            fleet.release({
              worker_id: p.worker_id,
              job_id: d.job_id,
              job_labels: d.job_labels,
              resources: d.resources,
            });
          }
        });
        for (const w of workers) {
          const v = fleet.worker(w.id)!;
          assert.deepEqual(v.free, w.free);
          assert.deepEqual(v.running_by_label, w.running_by_label);
          assert.deepEqual(v.running_by_job, {});
        }
      },
    ),
    params,
  );
});

Deno.test("binpack picks a worker no other feasible worker outscores (exhaustive mode)", () => {
  fc.assert(
    fc.property(fleetArb(), requestArb(), seedArb, (workers, request, seed) => {
      const plain: PlacementRequest = {
        job_id: request.job_id,
        pool: request.pool,
        resources: request.resources,
        constraints: (request.constraints ?? []).filter((c) => c.mode === "required"),
        tolerations: [{ operator: "Exists" }],
        strategy: "binpack",
      };
      const fleet = new Fleet(workers);
      const d = place(fleet, plain, { seed, exhaustive: true });
      if (!d.ok) return;
      const chosen = d.placements[0];
      for (const other of rank(fleet, plain)) assert.ok(chosen.score >= other.score);
      // The same by the oracle's utilisation, computed from the views alone.
      const views = byId(workers);
      const mine = binpackFitness(views.get(chosen.worker_id)!, plain.resources);
      for (const w of workers.filter((w) => feasibleFor(w, plain))) {
        // The engine reads the curve from a table, within 5e-8 of the exact 10^u.
        assert.ok(mine >= binpackFitness(w, plain.resources) - 1e-6, `${w.id} fits tighter`);
      }
    }),
    params,
  );
});

/** A fleet where every zone has at least `per_zone` ready workers with room for many allocations. */
const roomyFleetArb = (per_zone: number) =>
  fc.tuple(
    fc.integer({ min: 2, max: 4 }),
    fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }),
    fc.array(fc.integer({ min: 1000, max: 8000 }), { minLength: 24, maxLength: 24 }),
  ).map(([zones, extra, cpu]) => {
    const workers: WorkerView[] = [];
    for (let z = 0; z < zones; z++) {
      for (let i = 0; i < per_zone + extra[z]; i++) {
        const capacity = resources(cpu[workers.length % cpu.length], 65536, 0, 64);
        workers.push(worker(`z${z}-w${i}`, { zone: `zone-${z}`, capacity }));
      }
    }
    return workers;
  });

function zoneCounts(workers: WorkerView[], ids: string[]): number[] {
  const zones = [...new Set(workers.map((w) => w.zone))];
  const zoneOf = byId(workers);
  return zones.map((z) => ids.filter((id) => zoneOf.get(id)!.zone === z).length);
}

Deno.test("spread keeps a job's counts per zone within one of each other (count N, and a batch)", () => {
  fc.assert(
    fc.property(
      roomyFleetArb(6),
      fc.integer({ min: 1, max: 12 }),
      fc.constantFrom("binpack" as const, "spread" as const, "random" as const),
      seedArb,
      (workers, n, strategy, seed) => {
        const base = {
          resources: resources(100, 64, 0, 1),
          spread: { attribute: "zone" },
          strategy,
        };
        const spread = (ids: string[]) => {
          const counts = zoneCounts(workers, ids);
          assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `zone counts ${counts}`);
        };
        // Count N on distinct workers (every zone has 6 or more).
        const d = place(new Fleet(workers), { ...base, job_id: "j", count: Math.min(n, 6) }, {
          seed,
        });
        spread(d.placements.map((p) => p.worker_id));
        // N requests of one allocation each, applied as they go.
        const fleet = new Fleet(workers);
        const batch = placeBatch(
          fleet,
          Array.from({ length: n }, () => ({ ...base, job_id: "k" })),
          {
            seed,
          },
        );
        const ids = batch.flatMap((b) => b.placements.map((p) => p.worker_id));
        assert.equal(ids.length, n);
        spread(ids);
      },
    ),
    params,
  );
});

Deno.test("the same seed gives the same decision, whatever order the workers were given in", () => {
  fc.assert(
    fc.property(
      fleetArb(),
      requestArb(),
      seedArb,
      fc.boolean(),
      (workers, request, seed, exhaustive) => {
        const a = place(new Fleet(workers), request, { seed, exhaustive });
        const b = place(new Fleet([...workers].reverse()), request, { seed, exhaustive });
        assert.deepEqual(a, b);
      },
    ),
    params,
  );
});

type Op =
  | { kind: "status"; pick: number; status: WorkerView["status"] }
  | { kind: "place"; request: PlacementRequest; seed: number }
  | { kind: "release"; pick: number }
  | { kind: "remove"; pick: number }
  | { kind: "register"; worker: WorkerView };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("status" as const),
    pick: fc.nat(),
    status: fc.constantFrom("ready" as const, "draining" as const, "lost" as const),
  }),
  fc.record({
    kind: fc.constant("place" as const),
    request: fc.tuple(requestArb(), fc.boolean()).map(([r, frozen]) =>
      frozen ? freezeRequest(r) : r
    ),
    seed: seedArb,
  }),
  fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() }),
  fc.integer({ min: 100, max: 999 }).chain((i) => workerArb(`new-${i}`)).map((worker) => ({
    kind: "register" as const,
    worker,
  })),
);

Deno.test("after any sequence of status changes, placements, releases and registrations, decisions stay sound", () => {
  fc.assert(
    fc.property(
      fleetArb(20),
      fc.array(opArb, { maxLength: 25 }),
      requestArb(),
      (workers, ops, probe) => {
        const fleet = new Fleet(workers);
        // The model: what the caller's registry would hold, updated by hand.
        const model = byId(workers.map((w) => ({ ...w, free: { ...w.free } })));
        const one = freezeRequest({ ...probe, count: 1 });
        const holds: { worker_id: string; job_id: string; resources: Decision["resources"] }[] = [];
        const ids = () => [...model.keys()].sort();
        for (const op of ops) {
          if (op.kind === "status" && model.size > 0) {
            const id = ids()[op.pick % model.size];
            fleet.setStatus(id, op.status);
            model.get(id)!.status = op.status;
          } else if (op.kind === "place") {
            const d = place(fleet, op.request, { seed: op.seed });
            assertSound(d, op.request, model);
            fleet.apply(d);
            for (const p of d.placements) {
              const w = model.get(p.worker_id)!;
              for (const r of RESOURCE_NAMES) w.free[r] -= d.resources[r];
              holds.push({ worker_id: p.worker_id, job_id: d.job_id, resources: d.resources });
            }
          } else if (op.kind === "release" && holds.length > 0) {
            const [h] = holds.splice(op.pick % holds.length, 1);
            fleet.release(h);
            const w = model.get(h.worker_id)!;
            for (const r of RESOURCE_NAMES) w.free[r] += h.resources[r];
          } else if (op.kind === "remove" && model.size > 0) {
            const id = ids()[op.pick % model.size];
            fleet.remove(id);
            model.delete(id);
            for (let i = holds.length - 1; i >= 0; i--) {
              if (holds[i].worker_id === id) {
                holds.splice(i, 1);
              }
            }
          } else if (op.kind === "register" && !model.has(op.worker.id)) {
            fleet.upsert(op.worker);
            model.set(op.worker.id, { ...op.worker, free: { ...op.worker.free } });
          }
          for (const w of model.values()) assert.deepEqual(fleet.worker(w.id)!.free, w.free);
          // The same frozen request after every change: kept compilations must follow the fleet.
          assertSound(place(fleet, one, { seed: 2 }), one, model);
        }
        for (const exhaustive of [false, true]) {
          const d = place(fleet, one, { seed: 1, exhaustive });
          assertSound(d, probe, model);
          assertCountsAddUp(d);
          const feasible = [...model.values()].filter((w) => feasibleFor(w, probe)).length;
          assert.equal(d.ok, feasible > 0);
          if (exhaustive) assert.equal(d.explanation.feasible, feasible);
        }
      },
    ),
    params,
  );
});
