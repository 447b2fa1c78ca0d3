/**
 * The workers' state machine over random sequences of registrations, status changes, removals
 * and every step of allocations, on a real libSQL file: no worker is ever allocated beyond its
 * capacity, the placement engine's free capacity equals capacity minus what active allocations
 * hold, a refused command changes nothing, and the state rebuilt from the file equals the state
 * in memory.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, openDatabase } from "../../src/db/open.ts";
import { RESOURCE_NAMES, type Resources, type Taint } from "../../src/placement/types.ts";
import type { NewAllocation, WorkerCommand } from "../../src/workers/commands.ts";
import { WorkersState } from "../../src/workers/state.ts";
import { fuzzRuns } from "../support/command_arbitraries.ts";

const WORKERS = ["w1", "w2", "w3"];
const ALLOCS = ["a1", "a2", "a3", "a4", "a5", "a6"];
const EXECS = ["e1", "e2", "e3"];

const resources = (max: number) =>
  fc.record({
    cpu_millis: fc.integer({ min: 0, max }),
    memory_mb: fc.integer({ min: 0, max }),
    disk_mb: fc.constant(0),
    slots: fc.integer({ min: 0, max: 3 }),
  });

const commandArb: fc.Arbitrary<WorkerCommand> = fc.oneof(
  fc.record({
    type: fc.constant("worker.register" as const),
    at: fc.constant(0),
    worker: fc.record({
      id: fc.constantFrom(...WORKERS),
      pool: fc.constant("default"),
      region: fc.constantFrom("fra", "ams"),
      zone: fc.constant(""),
      labels: fc.constant({}),
      taints: fc.constant([] as Taint[]),
      capacity: resources(4_000),
    }),
  }),
  fc.record({
    type: fc.constant("worker.status" as const),
    at: fc.constant(0),
    worker_id: fc.constantFrom(...WORKERS),
    status: fc.constantFrom("ready" as const, "draining" as const, "lost" as const),
    reason: fc.constant("test"),
  }),
  fc.record({
    type: fc.constant("worker.remove" as const),
    at: fc.constant(0),
    worker_id: fc.constantFrom(...WORKERS),
  }),
  fc.record({
    type: fc.constant("alloc.create" as const),
    at: fc.constant(0),
    alloc: fc.record({
      id: fc.constantFrom(...ALLOCS),
      job_id: fc.constantFrom("j1", "j2"),
      execution_id: fc.constantFrom(...EXECS),
      attempt: fc.constant(1),
      scheduled_at: fc.constant(0),
      resources: resources(2_000),
      job_labels: fc.constantFrom<Record<string, string>>({}, { tier: "batch" }),
      lease_ms: fc.constant(1_000),
      idempotency_key: fc.constant("k"),
      worker_id: fc.option(fc.constantFrom(...WORKERS)),
      score: fc.constant(0.5),
      explanation: fc.constant(null),
    }),
  }),
  fc.record({
    type: fc.constant("alloc.place" as const),
    at: fc.constant(0),
    alloc_id: fc.constantFrom(...ALLOCS),
    worker_id: fc.constantFrom(...WORKERS),
    score: fc.constant(0.5),
  }),
  fc.record({
    type: fc.constant("alloc.start" as const),
    at: fc.constant(0),
    alloc_id: fc.constantFrom(...ALLOCS),
    worker_id: fc.constantFrom(...WORKERS),
  }),
  fc.record({
    type: fc.constant("alloc.finish" as const),
    at: fc.constant(0),
    alloc_id: fc.constantFrom(...ALLOCS),
    worker_id: fc.constantFrom(...WORKERS),
    outcome: fc.record({
      ok: fc.boolean(),
      exit_code: fc.constant(null),
      status_code: fc.constant(null),
      error: fc.constant(null),
      output_excerpt: fc.constant("out"),
      duration_ms: fc.constant(5),
    }),
  }),
  fc.record({
    type: fc.constant("alloc.expire" as const),
    at: fc.integer({ min: 0, max: 3_000 }),
    alloc_id: fc.constantFrom(...ALLOCS),
    expected_status: fc.constantFrom("placed" as const, "running" as const),
  }),
  fc.record({
    type: fc.constant("alloc.cancel" as const),
    at: fc.constant(0),
    execution_id: fc.constantFrom(...EXECS),
    reason: fc.constant("cancelled"),
  }),
);

/** Everything apply may change, as plain data. */
function snapshot(state: WorkersState) {
  return {
    workers: [...state.workers.values()].map((w) => ({ ...w })).sort((a, b) =>
      a.id < b.id ? -1 : 1
    ),
    active: [...state.active.values()].map((a) => ({ ...a })).sort((a, b) => a.id < b.id ? -1 : 1),
    free: Object.fromEntries(
      [...state.workers.keys()].sort().map((id) => [id, state.fleet.worker(id)!.free]),
    ),
  };
}

function checkInvariants(state: WorkersState): void {
  const byExecution = EXECS.reduce((n, e) => n + state.activeOf(e).length, 0);
  assert.equal(byExecution, state.active.size, "the per-execution index holds every active one");
  for (const w of state.workers.values()) {
    const held = state.allocated(w.id);
    const free = state.fleet.worker(w.id)!.free;
    for (const r of RESOURCE_NAMES) {
      assert.ok(held[r] <= w.capacity[r], `${w.id} over-allocated on ${r}`);
      assert.equal(free[r], w.capacity[r] - held[r], `${w.id} free ${r}`);
    }
  }
  for (const a of state.active.values()) {
    assert.ok(state.activeOf(a.execution_id).includes(a), `${a.id} missing from its execution`);
    if (a.status === "pending") assert.equal(a.lease_expires_at, null);
    else assert.ok(state.workers.has(a.worker_id!), `${a.id} on an unknown worker`);
  }
}

Deno.test("workers state: capacity never over-allocated, refusals change nothing, the file agrees", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-workers-" });
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 40 }), async (commands) => {
        const db = await openDatabase(dir, `run-${n++}.db`);
        try {
          const state = new WorkersState();
          await state.load(db);
          for (const generated of commands) {
            // As a command arrives from an entry: plain JSON objects.
            const command = JSON.parse(JSON.stringify(generated)) as WorkerCommand;
            state.check([command]);
            const before = snapshot(state);
            const applied = state.apply(command);
            if (!applied.result.ok) {
              assert.deepEqual(snapshot(state), before, `${command.type} refused, yet changed`);
              assert.equal(applied.statements.length, 0);
            }
            await db.client.batch(applied.statements, "write");
            checkInvariants(state);
          }
          const reloaded = new WorkersState();
          await reloaded.load(db);
          assert.deepEqual(snapshot(reloaded), snapshot(state));
        } finally {
          db.close();
        }
      }),
      { numRuns: fuzzRuns(150) },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const CAPACITY: Resources = { cpu_millis: 1_000, memory_mb: 512, disk_mb: 0, slots: 2 };

/** A fresh state over a real file, given to `fn`; the file is removed afterwards. */
async function withState(
  fn: (state: WorkersState, db: Database) => Promise<void> | void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-workers-" });
  const db = await openDatabase(dir);
  try {
    const state = new WorkersState();
    await state.load(db);
    await fn(state, db);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const register = (id: string): WorkerCommand => ({
  type: "worker.register",
  at: 1,
  worker: { id, pool: "p", region: "", zone: "", labels: {}, taints: [], capacity: CAPACITY },
});

const newAlloc = (overrides: Partial<NewAllocation> = {}): NewAllocation => ({
  id: "a",
  job_id: "j",
  execution_id: "e",
  attempt: 1,
  scheduled_at: 1,
  resources: { cpu_millis: 100, memory_mb: 10, disk_mb: 0, slots: 1 },
  job_labels: {},
  lease_ms: 1_000,
  idempotency_key: "j:1",
  worker_id: "w",
  score: 1,
  explanation: null,
  ...overrides,
});

Deno.test("a placed allocation holds its resources until it ends, then frees them", async () => {
  await withState((state) => {
    const ok = (c: WorkerCommand) => assert.ok(state.apply(c).result.ok, c.type);
    ok(register("w"));
    const alloc = newAlloc({
      resources: { cpu_millis: 600, memory_mb: 100, disk_mb: 0, slots: 1 },
    });
    ok({ type: "alloc.create", at: 2, alloc });
    assert.equal(state.fleet.worker("w")!.free.cpu_millis, 400);
    const second = state.apply({ type: "alloc.create", at: 3, alloc: { ...alloc, id: "b" } });
    assert.deepEqual(second.result, {
      ok: false,
      code: "stale",
      message: "worker w has 400 cpu_millis free, 600 wanted",
    });
    ok({ type: "alloc.start", at: 4, alloc_id: "a", worker_id: "w" });
    assert.equal(state.active.get("a")!.lease_expires_at, 1_004);
    const early = state.apply({
      type: "alloc.expire",
      at: 1_003,
      alloc_id: "a",
      expected_status: "running",
    });
    assert.equal(early.result.ok, false, "the lease has not run out at 1,003");
    ok({ type: "alloc.expire", at: 1_004, alloc_id: "a", expected_status: "running" });
    assert.equal(state.active.has("a"), false);
    assert.equal(state.fleet.worker("w")!.free.cpu_millis, 1_000);
  });
});

Deno.test("regression (found by the property above): an ended allocation's id used again is written", async () => {
  await withState(async (state, db) => {
    const alloc = newAlloc({ id: "a1", worker_id: null, score: 0.5 });
    const commands: WorkerCommand[] = [
      { type: "alloc.create", at: 0, alloc },
      { type: "alloc.cancel", at: 0, execution_id: "e", reason: "cancelled" },
      { type: "alloc.create", at: 0, alloc },
    ];
    for (const command of commands) {
      const applied = state.apply(command);
      assert.ok(applied.result.ok, command.type);
      await db.client.batch(applied.statements, "write");
    }
    const reloaded = new WorkersState();
    await reloaded.load(db);
    assert.deepEqual([...reloaded.active.keys()], ["a1"]);
  });
});

Deno.test("a start sent again by its worker is the same start (its first answer was lost)", async () => {
  await withState((state) => {
    const apply = (c: WorkerCommand) => state.apply(c).result;
    apply(register("w"));
    apply(register("v"));
    apply({ type: "alloc.create", at: 2, alloc: newAlloc() });
    assert.deepEqual(apply({ type: "alloc.start", at: 3, alloc_id: "a", worker_id: "w" }), {
      ok: true,
    });
    assert.deepEqual(apply({ type: "alloc.start", at: 4, alloc_id: "a", worker_id: "w" }), {
      ok: true,
    });
    assert.equal(state.active.get("a")!.lease_expires_at, 1_003, "the first start's lease holds");
    const other = apply({ type: "alloc.start", at: 5, alloc_id: "a", worker_id: "v" });
    assert.equal(other.ok, false, "another worker may not start it");
  });
});
