/**
 * The state machine's error model: every way a valid command can fail to fit the state is a
 * `{ok: false, code}` that changes nothing (one test per path), and random sequences of valid
 * commands never throw, never produce SQL a real libSQL file refuses, and leave an index equal to
 * the one rebuilt from that file.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, openDatabase } from "../../src/db/open.ts";
import { CorruptDataError } from "../../src/db/corrupt.ts";
import type { Applied, ApplyErrorCode } from "../../src/log/state_machine.ts";
import type { Command } from "../../src/scheduler/commands.ts";
import type { JobRecord } from "../../src/scheduler/model.ts";
import { type Effect, SchedulerState } from "../../src/scheduler/state.ts";
import { commandArb, fuzzRuns, jobArb, POOL_IDS } from "../support/command_arbitraries.ts";

const RUNS = fuzzRuns(300);
const T = 1_700_000_000_000;
const BASE: JobRecord = fc.sample(jobArb, { numRuns: 1, seed: 11 })[0];

function job(id: string, fields: Partial<JobRecord> = {}): JobRecord {
  return {
    ...BASE,
    id,
    type: "cron",
    cron_expression: "* * * * *",
    run_at: null,
    interval_ms: null,
    status: "pending",
    next_fire_at: T + 60_000,
    overlap_policy: "allow",
    idempotency_key: null,
    ...fields,
  };
}

function create(jobs: JobRecord[], job_limit = 100): Command {
  return { type: "job.create", at: T, jobs, job_limit };
}

function advance(job_id: string, expected_fire_at: number, execution_id = "E1"): Command {
  return {
    type: "job.advance",
    at: T,
    job_id,
    expected_fire_at,
    next_fire_at: expected_fire_at + 60_000,
    missed: null,
    skipped: null,
    start: { execution_id, scheduled_at: expected_fire_at, trigger: "schedule" },
  };
}

function ok(state: SchedulerState, command: Command): Applied<Effect> {
  const applied = state.apply(command);
  assert.ok(applied.result.ok, `${command.type}: ${JSON.stringify(applied.result)}`);
  return applied;
}

/** The index as plain data, for before/after comparisons. */
function indexOf(state: SchedulerState): unknown {
  return {
    jobs: [...state.jobs].map(([id, j]) => [id, { ...j, active: [...(j.active ?? [])].sort() }])
      .sort(),
    idempotency: [...state.idempotency].sort(),
    active: [...state.active].sort(),
  };
}

/** Applies `command`; it must be refused with `code`, with nothing to write and no change. */
function refused(state: SchedulerState, command: Command, code: ApplyErrorCode, text: RegExp) {
  const before = indexOf(state);
  const applied = state.apply(command);
  assert.deepEqual(applied.result.ok, false, `${command.type} should be refused`);
  if (applied.result.ok) return;
  assert.equal(applied.result.code, code);
  assert.match(applied.result.message, text);
  assert.deepEqual(applied.statements, []);
  assert.deepEqual(applied.effects, []);
  assert.deepEqual(indexOf(state), before, "a refused command changes nothing");
}

/** A state with job A (pending, allow), F (forbid, running E0) and P (paused). */
function seeded(): SchedulerState {
  const state = new SchedulerState();
  ok(
    state,
    create([
      job("A", { idempotency_key: "key-a" }),
      job("F", { overlap_policy: "forbid" }),
      job("P"),
    ]),
  );
  ok(state, advance("F", T + 60_000, "E0"));
  ok(state, { type: "job.pause", at: T, job_id: "P" });
  return state;
}

Deno.test("job.create: an existing id, an id twice, the job limit", () => {
  const state = seeded();
  refused(state, create([job("A")]), "conflict", /a job with id A exists already/);
  refused(state, create([job("N"), job("N")]), "conflict", /a job with id N exists already/);
  refused(state, create([job("N1"), job("N2")], 4), "capacity", /QUEUE_JOB_LIMIT=4/);
  const replay = ok(state, create([job("B", { idempotency_key: "key-a" })]));
  assert.deepEqual(replay.result, { ok: true, created: [{ id: "A", created: false }] });
});

Deno.test("job.delete, job.pause, job.resume, job.cancel of an unknown job: not_found", () => {
  const state = seeded();
  for (
    const command of [
      { type: "job.delete", at: T, job_id: "X" },
      { type: "job.pause", at: T, job_id: "X" },
      { type: "job.resume", at: T, job_id: "X", next_fire_at: null },
      { type: "job.cancel", at: T, job_id: "X", reason: "r" },
      { type: "job.trigger", at: T, job_id: "X", execution_id: "E9" },
      advance("X", T),
    ] as Command[]
  ) refused(state, command, "not_found", /job X does not exist/);
});

Deno.test("job.cancel: cancelled already, or finished", () => {
  const state = seeded();
  ok(state, { type: "job.cancel", at: T, job_id: "A", reason: "r" });
  refused(state, { type: "job.cancel", at: T, job_id: "A", reason: "r" }, "conflict", /already/);
  ok(state, create([job("D", { type: "once", run_at: T, status: "completed" })]));
  refused(state, { type: "job.cancel", at: T, job_id: "D", reason: "r" }, "conflict", /finished/);
});

Deno.test("job.pause of a paused job and job.resume of a scheduled one: conflict", () => {
  const state = seeded();
  refused(state, { type: "job.pause", at: T, job_id: "P" }, "conflict", /only a scheduled job/);
  refused(
    state,
    { type: "job.resume", at: T, job_id: "A", next_fire_at: T },
    "conflict",
    /not paused/,
  );
});

Deno.test("job.advance: a moved fence is stale; an active execution id is a conflict", () => {
  const state = seeded();
  refused(state, advance("A", T + 1), "stale", /no longer due/);
  refused(state, advance("A", T + 60_000, "E0"), "conflict", /execution E0 exists already/);
  const missed: Command = {
    ...(advance("A", T + 60_000) as Extract<Command, { type: "job.advance" }>),
    start: null,
    missed: { execution_id: "E0", first_at: T, last_at: T, count: 1 },
  };
  refused(state, missed, "conflict", /execution E0 exists already/);
});

Deno.test("job.trigger: cancelled, forbid while running, an active execution id", () => {
  const state = seeded();
  refused(
    state,
    { type: "job.trigger", at: T, job_id: "F", execution_id: "E5" },
    "conflict",
    /overlap policy is forbid/,
  );
  refused(
    state,
    { type: "job.trigger", at: T, job_id: "A", execution_id: "E0" },
    "conflict",
    /execution E0 exists already/,
  );
  ok(state, { type: "job.cancel", at: T, job_id: "A", reason: "r" });
  refused(
    state,
    { type: "job.trigger", at: T, job_id: "A", execution_id: "E5" },
    "conflict",
    /cancelled/,
  );
});

Deno.test("exec.attempt and exec.finish off their fence: stale", () => {
  const state = seeded();
  const attempt = (execution_id: string, n: number, redelivery = false): Command => ({
    type: "exec.attempt",
    at: T,
    execution_id,
    attempt: n,
    redelivery,
  });
  refused(state, attempt("E9", 2), "stale", /E9 is not active/);
  refused(state, attempt("E0", 2), "stale", /E0 is in_progress at attempt 1/);
  refused(state, attempt("E0", 3, true), "stale", /E0 is in_progress at attempt 1/);
  const finish: Command = {
    type: "exec.finish",
    at: T,
    execution_id: "E0",
    attempt: 2,
    outcome: {
      ok: true,
      status_code: 200,
      error_class: null,
      error: null,
      duration_ms: 1,
      response_excerpt: null,
    },
    retry_at: null,
  };
  refused(state, finish, "stale", /E0 attempt 2 is not running/);
  refused(state, { ...finish, execution_id: "E9" }, "stale", /E9 attempt 2 is not running/);
});

async function withDb(fn: (db: Database, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-state-" });
  const db = await openDatabase(dir);
  try {
    await fn(db, dir);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a finished execution's id used again replaces its row: the SQL cannot fail", async () => {
  await withDb(async (db) => {
    const state = new SchedulerState();
    const statements = [
      ...ok(state, create([job("A")])).statements,
      ...ok(state, {
        ...(advance("A", T + 60_000) as Extract<Command, { type: "job.advance" }>),
        start: null,
        missed: { execution_id: "E1", first_at: T, last_at: T, count: 1 },
      }).statements,
      ...ok(state, { type: "job.trigger", at: T, job_id: "A", execution_id: "E1" }).statements,
    ];
    await db.client.batch(statements, "write");
    const reloaded = new SchedulerState();
    await reloaded.load(db);
    assert.deepEqual(indexOf(reloaded), indexOf(state));
    assert.deepEqual(reloaded.active.get("E1")?.status, "in_progress");
  });
});

Deno.test("random valid command sequences: apply never throws, its SQL runs, a reload agrees", async () => {
  await withDb(async (db) => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb(POOL_IDS), { minLength: 1, maxLength: 25 }), async (
        commands,
      ) => {
        await db.client.batch(["DELETE FROM jobs", "DELETE FROM executions"], "write");
        const state = new SchedulerState();
        for (const command of commands) {
          const before = indexOf(state);
          const applied = state.apply(command);
          if (!applied.result.ok) assert.deepEqual(indexOf(state), before);
          await db.client.batch(applied.statements, "write");
        }
        const reloaded = new SchedulerState();
        await reloaded.load(db);
        assert.deepEqual(indexOf(reloaded), indexOf(state));
      }),
      { numRuns: RUNS },
    );
  });
});

Deno.test("load refuses a row apply never wrote, and a bad applied index, with CorruptDataError", async () => {
  await withDb(async (db) => {
    await db.client.batch(new SchedulerState().apply(create([job("A")])).statements, "write");
    await db.client.execute("UPDATE jobs SET status = 'exploded' WHERE id = 'A'");
    await assert.rejects(() => new SchedulerState().load(db), (error: Error) => {
      assert.ok(error instanceof CorruptDataError);
      assert.match(error.message, /^node\.db: job A is corrupt \(status is "exploded"\); stop/);
      return true;
    });
    await db.client.execute("UPDATE jobs SET status = 'pending' WHERE id = 'A'");
    await db.client.execute("INSERT INTO meta (key, value) VALUES ('applied_index', 'x1')");
    await assert.rejects(
      () => new SchedulerState().load(db),
      /node\.db: the applied index \(meta\.applied_index\) is corrupt \(it is "x1"\)/,
    );
  });
});
