/**
 * Small fleets that show one filter, scorer or rule each, and the explanation a user reads.
 */
import assert from "node:assert/strict";
import {
  type Constraint,
  type Decision,
  explanationText,
  Fleet,
  FleetError,
  freezeRequest,
  place,
  placeBatch,
  type PlacementRequest,
  PlacementRequestError,
} from "../../src/placement/mod.ts";
import { resources, worker } from "./support.ts";

const small = resources(500, 512);

function request(fields: Partial<PlacementRequest> = {}): PlacementRequest {
  return { job_id: "job", resources: small, ...fields };
}

function chosen(d: Decision): string[] {
  return d.placements.map((p) => p.worker_id);
}

function reasons(d: Decision): Record<string, number> {
  return Object.fromEntries(d.explanation.filtered.map((f) => [f.reason, f.workers]));
}

Deno.test("the explanation names every filter that removed workers, in the issue's words", () => {
  const fleet = new Fleet([
    worker("gpu-1", { pool: "gpu" }),
    worker("ams-1", { region: "ams", status: "draining" }),
    worker("iad-1", { region: "iad" }),
    worker("iad-2", { region: "iad" }),
    worker("lhr-1", { region: "lhr" }),
    worker("lhr-2", { region: "lhr" }),
    worker("fra-full", { free: resources(4000, 100) }),
    worker("ams-full", { region: "ams", free: resources(4000, 0) }),
    worker("fra-gpu", { taints: [{ key: "gpu", value: "true", effect: "NoSchedule" }] }),
  ]);
  const d = place(
    fleet,
    request({
      pool: "default",
      constraints: [{ attribute: "region", operator: "in", values: ["fra", "ams"] }],
    }),
    { seed: 1 },
  );
  assert.equal(d.ok, false);
  assert.equal(d.unplaced, 1);
  assert.deepEqual(reasons(d), {
    "pool = default": 1,
    "draining": 1,
    "region in [fra, ams]": 4,
    "taint gpu=true:NoSchedule not tolerated": 1,
    "memory exhausted": 2,
  });
  assert.equal(
    explanationText(d.explanation),
    "no worker fits (0 of 9): pool = default: 1 worker; draining: 1 worker; " +
      "region in [fra, ams]: 4 workers; taint gpu=true:NoSchedule not tolerated: 1 worker; " +
      "memory exhausted: 2 workers",
  );
});

Deno.test("each constraint operator, on a label and on the built-in attributes", () => {
  const fleet = new Fleet([
    worker("a", { region: "fra", labels: { disk: "ssd" } }),
    worker("b", { region: "ams", labels: { disk: "hdd" } }),
    worker("c", { region: "iad" }),
  ]);
  const only = (constraint: Constraint) =>
    chosen(place(fleet, request({ constraints: [constraint], count: "all" }), { seed: 3 })).sort();
  assert.deepEqual(only({ attribute: "disk", operator: "=", value: "ssd" }), ["a"]);
  assert.deepEqual(only({ attribute: "disk", operator: "!=", value: "ssd" }), ["b", "c"]);
  const inFraIad = only({ attribute: "region", operator: "in", values: ["fra", "iad"] });
  assert.deepEqual(inFraIad, ["a", "c"]);
  const notInFra = only({ attribute: "region", operator: "not_in", values: ["fra"] });
  assert.deepEqual(notInFra, ["b", "c"]);
  assert.deepEqual(only({ attribute: "disk", operator: "exists" }), ["a", "b"]);
  assert.deepEqual(only({ attribute: "disk", operator: "not_exists" }), ["c"]);
  assert.deepEqual(only({ attribute: "worker.id", operator: "=", value: "b" }), ["b"]);
  // A label no worker has: = and exists match nothing, != and not_exists match everything.
  assert.deepEqual(only({ attribute: "gpu", operator: "=", value: "true" }), []);
  assert.deepEqual(only({ attribute: "gpu", operator: "not_exists" }), ["a", "b", "c"]);
});

Deno.test("a worker is counted once, under the first filter that removes it", () => {
  const fleet = new Fleet([
    worker("lost-ams", { status: "lost", region: "ams", free: resources(0, 0) }),
    worker("ams-full", { region: "ams", free: resources(0, 0) }),
  ]);
  const d = place(
    fleet,
    request({ constraints: [{ attribute: "region", operator: "=", value: "fra" }] }),
    { seed: 1 },
  );
  assert.deepEqual(reasons(d), { "lost": 1, "region = fra": 1 });
});

Deno.test("tolerations: Equal needs the value, Exists the key, no key tolerates every taint", () => {
  const gpu = { key: "gpu", value: "true", effect: "NoSchedule" as const };
  const fleet = new Fleet([worker("g", { taints: [gpu] })]);
  const fits = (tolerations: PlacementRequest["tolerations"]) =>
    place(fleet, request({ tolerations }), { seed: 1 }).ok;
  assert.equal(fits([]), false);
  assert.equal(fits([{ key: "gpu", operator: "Equal", value: "false" }]), false);
  assert.equal(fits([{ key: "gpu", operator: "Equal", value: "true" }]), true);
  assert.equal(fits([{ key: "gpu", operator: "Exists" }]), true);
  assert.equal(fits([{ key: "gpu", operator: "Exists", effect: "PreferNoSchedule" }]), false);
  assert.equal(fits([{ operator: "Exists" }]), true);
});

Deno.test("PreferNoSchedule: a tainted worker is used only when nothing untainted fits", () => {
  const spot = { key: "spot", value: "yes", effect: "PreferNoSchedule" as const };
  // The tainted worker is the fuller one, so binpack alone would pick it.
  const fleet = new Fleet([
    worker("spot", { taints: [spot], free: resources(1000, 1024) }),
    worker("plain"),
  ]);
  for (const exhaustive of [false, true]) {
    for (let seed = 0; seed < 20; seed++) {
      const d = place(fleet, request(), { seed, exhaustive });
      assert.deepEqual(chosen(d), ["plain"]);
      assert.equal(d.runners_up[0].worker_id, "spot");
      assert.equal(d.runners_up[0].components.taints, -1);
    }
  }
  fleet.setStatus("plain", "draining");
  assert.deepEqual(chosen(place(fleet, request(), { seed: 1 })), ["spot"]);
  const tolerated = request({ tolerations: [{ key: "spot", operator: "Exists" }] });
  fleet.setStatus("plain", "ready");
  assert.deepEqual(chosen(place(fleet, tolerated, { seed: 1 })), ["spot"]);
});

Deno.test("every resource is a filter: the first one short is the reason", () => {
  const fleet = new Fleet([
    worker("cpu", { free: resources(100, 8192, 100_000, 8) }),
    worker("mem", { free: resources(4000, 100, 100_000, 8) }),
    worker("disk", { free: resources(4000, 8192, 0, 8) }),
    worker("slots", { free: resources(4000, 8192, 100_000, 0) }),
  ]);
  const d = place(fleet, request({ resources: resources(500, 512, 10, 1) }), { seed: 1 });
  assert.deepEqual(reasons(d), {
    "cpu exhausted": 1,
    "memory exhausted": 1,
    "disk exhausted": 1,
    "slots exhausted": 1,
  });
  // Exactly what is free fits.
  const exact = place(fleet, request({ resources: resources(100, 512), count: "all" }), {
    seed: 1,
  });
  assert.ok(chosen(exact).includes("cpu"));
});

Deno.test("binpack picks the fullest worker, spread the emptiest, random any of them", () => {
  const fleet = new Fleet([
    worker("empty"),
    worker("half", { free: resources(2000, 4096, 100_000, 8) }),
    worker("nearly-full", { free: resources(600, 600, 100_000, 8) }),
  ]);
  for (let seed = 0; seed < 10; seed++) {
    assert.deepEqual(chosen(place(fleet, request({ strategy: "binpack" }), { seed })), [
      "nearly-full",
    ]);
    assert.deepEqual(chosen(place(fleet, request({ strategy: "spread" }), { seed })), ["empty"]);
  }
  const picks = new Set<string>();
  for (let seed = 0; seed < 50; seed++) {
    const d = place(fleet, request({ strategy: "random" }), { seed });
    picks.add(chosen(d)[0]);
    assert.deepEqual(d.placements[0].components, {});
  }
  assert.equal(picks.size, 3, "the seed breaks the ties of random");
});

Deno.test("preferred constraints score by weight; a negative weight steers away", () => {
  const fleet = new Fleet([
    worker("ssd", { labels: { disk: "ssd" } }),
    worker("hdd", { labels: { disk: "hdd" } }),
  ]);
  const prefer = (weight: number) =>
    chosen(place(
      fleet,
      request({
        constraints: [{
          attribute: "disk",
          operator: "=",
          value: "ssd",
          mode: "preferred",
          weight,
        }],
      }),
      { seed: 5 },
    ));
  assert.deepEqual(prefer(50), ["ssd"]);
  assert.deepEqual(prefer(-50), ["hdd"]);
  const d = place(
    fleet,
    request({
      constraints: [{
        attribute: "disk",
        operator: "=",
        value: "ssd",
        mode: "preferred",
        weight: 50,
      }],
    }),
    { seed: 5 },
  );
  assert.equal(d.placements[0].components.constraints, 1);
  assert.equal(d.runners_up[0].components.constraints, 0);
});

Deno.test("affinity prefers workers running matching jobs, anti-affinity avoids them", () => {
  const fleet = new Fleet([
    worker("with-db", { running_by_label: { "app=db": 2 } }),
    worker("with-web", { running_by_label: { "app=web": 1 } }),
    worker("idle"),
  ]);
  const near = request({ affinity: [{ selector: { app: "db" }, weight: 100 }] });
  assert.deepEqual(chosen(place(fleet, near, { seed: 1 })), ["with-db"]);
  const apart = request({
    anti_affinity: [{ selector: { app: "web" }, weight: 100 }],
    strategy: "random",
  });
  for (let seed = 0; seed < 20; seed++) {
    assert.notDeepEqual(chosen(place(fleet, apart, { seed })), ["with-web"]);
  }
  // An applied placement counts for the next request's affinity.
  fleet.apply(
    place(
      fleet,
      request({
        job_id: "cache",
        job_labels: { app: "cache" },
        pool: "default",
        constraints: [{ attribute: "worker.id", operator: "=", value: "idle" }],
      }),
      { seed: 1 },
    ),
  );
  const toCache = request({ affinity: [{ selector: { app: "cache" }, weight: 10 }] });
  assert.deepEqual(chosen(place(fleet, toCache, { seed: 1 })), ["idle"]);
});

Deno.test("spread over zones: even without targets, by percent with targets", () => {
  const workers = ["a", "b", "c"].flatMap((z) =>
    [1, 2, 3, 4].map((i) =>
      worker(`${z}${i}`, { zone: z, capacity: resources(8000, 65536, 0, 64) })
    )
  );
  const fleet = new Fleet(workers);
  const zoneOf = (id: string) => id[0];
  const even = place(fleet, request({ count: 6, spread: { attribute: "zone" } }), { seed: 2 });
  const per = (ids: string[]) =>
    ids.map(zoneOf).reduce(
      (m, z) => ({ ...m, [z]: (m[z] ?? 0) + 1 }),
      {} as Record<string, number>,
    );
  assert.deepEqual(per(chosen(even)), { a: 2, b: 2, c: 2 });
  // 50% a, 25% b, c gets what is left (25%): 8 single placements applied as they go.
  const targeted = request({ spread: { attribute: "zone", targets: { a: 50, b: 25 } } });
  const batch = placeBatch(fleet, Array.from({ length: 8 }, () => targeted), { seed: 3 });
  assert.deepEqual(per(batch.flatMap(chosen)), { a: 4, b: 2, c: 2 });
});

Deno.test("count N takes N distinct workers; too few gives a partial decision that says why", () => {
  const fleet = new Fleet([worker("w1"), worker("w2"), worker("w3", { status: "draining" })]);
  const two = place(fleet, request({ count: 2 }), { seed: 1 });
  assert.equal(two.ok, true);
  assert.deepEqual(chosen(two).sort(), ["w1", "w2"]);
  const three = place(fleet, request({ count: 3 }), { seed: 1 });
  assert.equal(three.ok, false);
  assert.equal(three.placements.length, 2);
  assert.equal(three.unplaced, 1);
  assert.deepEqual(reasons(three), { "already chosen for this request": 2, "draining": 1 });
  const all = place(fleet, request({ count: "all" }), { seed: 1 });
  assert.equal(all.ok, true);
  assert.deepEqual(chosen(all).sort(), ["w1", "w2"]);
});

Deno.test("a batch takes capacity as it goes: the third half-worker request finds none", () => {
  const fleet = new Fleet([worker("w1", { capacity: resources(1000, 1000) })]);
  const half = request({ resources: resources(500, 500) });
  const [a, b, c] = placeBatch(fleet, [half, { ...half }, { ...half }], { seed: 1 });
  assert.deepEqual([a.ok, b.ok, c.ok], [true, true, false]);
  assert.deepEqual(reasons(c), { "cpu exhausted": 1 });
  assert.deepEqual(fleet.worker("w1")!.free, resources(0, 0));
  fleet.release({ worker_id: "w1", job_id: "job", resources: resources(500, 500) });
  assert.equal(place(fleet, half, { seed: 1 }).ok, true);
});

Deno.test("a batch with a request the engine refuses changes nothing", () => {
  const fleet = new Fleet([worker("w1")]);
  const bad = request({ count: 0 });
  assert.throws(() => placeBatch(fleet, [request(), bad], { seed: 1 }), PlacementRequestError);
  assert.deepEqual(fleet.worker("w1")!.free, worker("w1").free);
  assert.deepEqual(fleet.worker("w1")!.running_by_job, {});
});

Deno.test("hold and release refuse what does not match the fleet, and change nothing then", () => {
  const fleet = new Fleet([worker("w1", { capacity: resources(1000, 1000) })]);
  assert.throws(
    () => fleet.hold({ worker_id: "w1", job_id: "j", resources: resources(2000, 0) }),
    FleetError,
  );
  assert.throws(
    () => fleet.release({ worker_id: "w1", job_id: "j", resources: resources(1, 0) }),
    FleetError,
  );
  assert.throws(
    () => fleet.hold({ worker_id: "nope", job_id: "j", resources: resources(1, 0) }),
    /no worker nope in the fleet view/,
  );
  assert.deepEqual(fleet.worker("w1")!.free, resources(1000, 1000));
  // apply() is all or nothing.
  const d = place(fleet, request({ resources: resources(600, 0) }), { seed: 1 });
  fleet.hold({ worker_id: "w1", job_id: "other", resources: resources(600, 0) });
  assert.throws(() => fleet.apply(d), FleetError);
  assert.deepEqual(fleet.worker("w1")!.free, resources(400, 1000));
});

Deno.test("the fleet follows registrations, removals and status changes", () => {
  const fleet = new Fleet([worker("w1")]);
  assert.equal(place(fleet, request({ pool: "gpu" }), { seed: 1 }).ok, false);
  fleet.upsert(worker("g1", { pool: "gpu" }));
  assert.deepEqual(chosen(place(fleet, request({ pool: "gpu" }), { seed: 1 })), ["g1"]);
  fleet.setStatus("g1", "lost");
  assert.deepEqual(reasons(place(fleet, request({ pool: "gpu" }), { seed: 1 })), {
    "pool = gpu": 1,
    "lost": 1,
  });
  fleet.remove("g1");
  assert.equal(fleet.size, 1);
  assert.throws(() => fleet.remove("g1"), FleetError);
  fleet.remove("w1");
  const none = place(fleet, request(), { seed: 1 });
  assert.equal(none.ok, false);
  assert.equal(explanationText(none.explanation), "no worker fits (0 of 0)");
});

Deno.test("the bounded mode scores a few candidates; exhaustive scores them all", () => {
  const fleet = new Fleet(Array.from({ length: 100 }, (_, i) => worker(`w${i}`)));
  const bounded = place(fleet, request(), { seed: 9, candidates_max: 4 });
  assert.equal(bounded.explanation.feasible, 4);
  assert.equal(bounded.explanation.workers_evaluated, 4);
  const full = place(fleet, request(), { seed: 9, exhaustive: true });
  assert.equal(full.explanation.feasible, 100);
  assert.equal(
    explanationText(bounded.explanation),
    "4 of 4 workers evaluated fit (fleet: 100)",
  );
});

Deno.test("a frozen request is compiled once per fleet version; a mutable one on every call", () => {
  const fleet = new Fleet([worker("fra-1"), worker("ams-1", { region: "ams" })]);
  const mutable = request({ constraints: [{ attribute: "region", operator: "=", value: "fra" }] });
  assert.deepEqual(chosen(place(fleet, mutable, { seed: 1 })), ["fra-1"]);
  mutable.constraints![0].value = "ams";
  assert.deepEqual(chosen(place(fleet, mutable, { seed: 1 })), ["ams-1"]);
  const frozen = freezeRequest(
    request({ constraints: [{ attribute: "region", operator: "=", value: "fra" }] }),
  );
  assert.throws(() => {
    (frozen.constraints![0] as { value: string }).value = "ams";
  }, TypeError);
  assert.deepEqual(chosen(place(fleet, frozen, { seed: 1 })), ["fra-1"]);
  // A registration rebuilds the columns: the kept compilation is dropped with them.
  fleet.upsert(worker("fra-2", { free: resources(600, 600) }));
  assert.deepEqual(chosen(place(fleet, frozen, { seed: 1 })), ["fra-2"]);
  fleet.setStatus("fra-2", "draining");
  assert.deepEqual(chosen(place(fleet, frozen, { seed: 1 })), ["fra-1"]);
});

Deno.test("requests the engine cannot evaluate are refused with what to fix", () => {
  const fleet = new Fleet([worker("w1")]);
  const refused = (fields: Partial<PlacementRequest>, message: RegExp) =>
    assert.throws(() => place(fleet, request(fields), { seed: 1 }), (e: Error) => {
      assert.ok(e instanceof PlacementRequestError);
      assert.match(e.message, message);
      return true;
    });
  refused({ resources: resources(-1, 0) }, /resources.cpu_millis must be an integer ≥ 0/);
  refused({ count: 0 }, /count must be an integer ≥ 1 or "all"/);
  refused({ constraints: [{ attribute: "region", operator: "in" }] }, /needs values/);
  refused(
    { constraints: [{ attribute: "region", operator: "=", value: "fra", mode: "preferred" }] },
    /weight in -100..100/,
  );
  refused({ spread: { attribute: "zone", targets: { a: 80, b: 40 } } }, /add up to 120%/);
  refused({ affinity: [{ selector: {}, weight: 10 }] }, /non-empty selector/);
});
