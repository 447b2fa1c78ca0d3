/**
 * The firing loop in simulated time: a ManualClock drives the timer, while the log writes a real
 * libSQL file and deliveries go to a real HTTP sink on loopback. Covers retry backoff, the
 * overlap policies and the misfire policy after a restart.
 */
import assert from "node:assert/strict";
import { openDatabase } from "../../src/db/open.ts";
import { silentLogger } from "../../src/logger.ts";
import { LocalLog } from "../../src/log/local_log.ts";
import { ManualClock } from "../../src/clock.ts";
import type { Command } from "../../src/scheduler/commands.ts";
import { type CommandLog, LogOverloadedError } from "../../src/log/command_log.ts";
import type { ExecutionRecord, JobRecord } from "../../src/scheduler/model.ts";
import { rowToExecution } from "../../src/scheduler/rows.ts";
import type { AttemptResult, Dispatcher } from "../../src/scheduler/dispatcher.ts";
import { Scheduler } from "../../src/scheduler/scheduler.ts";
import { WebhookDispatcher } from "../../src/scheduler/webhook/dispatcher.ts";
import { type Effect, SchedulerState } from "../../src/scheduler/state.ts";
import { type Sink, type SinkOptions, startSink } from "../support/sink.ts";

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

interface Harness {
  clock: ManualClock;
  /** Proposals the scheduler made again after a refusal, by kind. */
  retried: Record<string, number>;
  sink: Sink;
  log: LocalLog<Command, Effect>;
  scheduler: Scheduler;
  /** Restarts the node's state and scheduler on the same file (as after a crash). */
  restart(): Promise<void>;
  create(job: Partial<JobRecord>): Promise<string>;
  /** Waits (in real time) until nothing is being settled or delivered. */
  idle(): Promise<void>;
  executions(job_id: string): Promise<ExecutionRecord[]>;
}

/**
 * A fault point in the proposal path: the scheduler's proposals that contain a command of
 * `type` are refused `times` times (as an overloaded log refuses them) before they go through.
 */
interface Refusal {
  type: Command["type"];
  times: number;
}

/**
 * Sees every proposal the scheduler makes before the log does; the proposal waits for the
 * promise it returns (to hold a proposal while the test arranges what happens meanwhile).
 */
type ProposalWatch = (commands: Command[]) => Promise<void>;

/** The scheduler's view of `log`, refusing proposals as `refusal` says. */
function refusing(
  log: LocalLog<Command, Effect>,
  refusal: Refusal | undefined,
  watch?: ProposalWatch,
): CommandLog<Command, Effect> {
  let refused = 0;
  return {
    async propose(commands) {
      await watch?.(commands);
      if (
        refusal !== undefined && refused < refusal.times &&
        commands.some((c) => c.type === refusal.type)
      ) {
        refused++;
        return Promise.reject(new LogOverloadedError(`fault point: ${refusal.type} refused`));
      }
      return log.propose(commands);
    },
    get applied_index() {
      return log.applied_index;
    },
    canFire: () => log.canFire(),
    onEffects: (listener) => log.onEffects(listener),
  };
}

async function withScheduler(
  sinkOptions: SinkOptions,
  fn: (h: Harness) => Promise<void>,
  refusal?: Refusal,
  extra: {
    watch?: ProposalWatch;
    /** Wraps the real webhook dispatcher (to hold attempts, never to replace the call). */
    dispatcher?: (real: Dispatcher) => Dispatcher;
  } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-sched-" });
  const sink = await startSink(sinkOptions);
  const clock = new ManualClock(T0);
  let db = await openDatabase(dir);
  let scheduler: Scheduler | null = null;
  const boot = async () => {
    const state = new SchedulerState();
    await state.load(db);
    const log = await LocalLog.open(db, state, {
      batch_max: 1_000,
      queue_max: 10_000,
      logger: silentLogger,
    });
    scheduler = new Scheduler({
      clock,
      log: refusing(log, refusal, extra.watch),
      state,
      db,
      logger: silentLogger,
      max_inflight: 16,
      dispatcher: (extra.dispatcher ?? ((real) => real))(
        new WebhookDispatcher({ clock, secrets: [], deny_private: false }),
      ),
      backoff: { base_ms: 1_000, max_ms: 60_000 },
      history: { retention_ms: 86_400_000, per_job_max: 1_000 },
      random: () => 0.5,
      metrics: {
        lateness: () => {},
        delivery: () => {},
        inflight: () => {},
        timerEntries: () => {},
        occurrence: () => {},
        proposalRetry: (what) => h.retried[what] = (h.retried[what] ?? 0) + 1,
      },
    });
    scheduler.start();
    h.log = log;
    h.scheduler = scheduler;
  };
  let counter = 0;
  const h: Harness = {
    clock,
    retried: {},
    sink,
    log: null as unknown as LocalLog<Command, Effect>,
    scheduler: null as unknown as Scheduler,
    async restart() {
      await h.scheduler.stop(0);
      h.log.close();
      db.close();
      db = await openDatabase(dir);
      await boot();
    },
    async create(partial) {
      const id = `job-${++counter}`;
      const job: JobRecord = {
        id,
        name: null,
        type: "cron",
        type_alias: "cron",
        run_at: null,
        cron_expression: "* * * * * *",
        interval_ms: null,
        timezone: "UTC",
        starts_at: null,
        ends_at: null,
        webhook_url: `${sink.url}/${id}`,
        method: "POST",
        headers: {},
        payload: null,
        secret: null,
        overlap_policy: "allow",
        catchup_window_ms: 3_600_000,
        max_attempts: 3,
        timeout_ms: 30_000,
        idempotency_key: null,
        status: "pending",
        next_fire_at: clock.now() + 1_000,
        created_at: clock.now(),
        updated_at: clock.now(),
        cancel_reason: null,
        last_run_at: null,
        last_status: null,
        attempt_count: 0,
        run_count: 0,
        executor: null,
        ...partial,
      };
      const command: Command = { type: "job.create", at: clock.now(), jobs: [job], job_limit: 100 };
      const [result] = await h.log.propose([command]);
      assert.ok(result.ok);
      return id;
    },
    async idle() {
      const deadline = Date.now() + 10_000;
      while (h.scheduler.busy > 0 || h.log.queued_commands > 0) {
        if (Date.now() > deadline) throw new Error("scheduler did not become idle");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
    async executions(job_id) {
      const rows = await db.client.execute({
        sql: "SELECT * FROM executions WHERE job_id = ? ORDER BY scheduled_at, id",
        args: [job_id],
      });
      return rows.rows.map(rowToExecution);
    },
  };
  try {
    await boot();
    await fn(h);
  } finally {
    if (scheduler !== null) await h.scheduler.stop(0);
    h.log?.close();
    db.close();
    await sink.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("retries back off exponentially with the jitter fixed in the command", async () => {
  await withScheduler({ respond: (_req, n) => ({ status: n <= 2 ? 503 : 200 }) }, async (h) => {
    const id = await h.create({ type: "once", run_at: T0 + 1_000, cron_expression: null });
    h.clock.advance(1_000);
    await h.idle();
    let [exec] = await h.executions(id);
    assert.equal(exec.status, "retrying");
    // Equal jitter with random 0.5: ceiling 1 s → 750 ms; then ceiling 2 s → 1,500 ms.
    assert.equal(exec.next_attempt_at, T0 + 1_000 + 750);
    h.clock.advance(749);
    await h.idle();
    assert.equal(h.sink.requests.length, 1, "no retry before its time");
    h.clock.advance(1);
    await h.idle();
    [exec] = await h.executions(id);
    assert.equal(h.sink.requests.length, 2);
    assert.equal(exec.next_attempt_at, T0 + 1_750 + 1_500);
    h.clock.advance(1_500);
    await h.idle();
    [exec] = await h.executions(id);
    assert.deepEqual(
      h.sink.requests.map((r) => [r.headers["x-tickraft-attempt"], r.idempotency_key]),
      [["1", `${id}:${T0 + 1_000}`], ["2", `${id}:${T0 + 1_000}`], ["3", `${id}:${T0 + 1_000}`]],
    );
    assert.equal(exec.status, "completed");
    assert.equal(exec.attempt, 3);
  });
});

/** Two due seconds of an every-second job while the first delivery is still held by the sink. */
async function overlapRun(policy: "allow" | "forbid" | "replace") {
  let result: { statuses: string[]; deliveries: number } | null = null;
  await withScheduler(
    { respond: (_req, n) => ({ status: 200, delay_ms: n === 1 ? 800 : 0 }) },
    async (h) => {
      const id = await h.create({ overlap_policy: policy, cron_expression: "* * * * * *" });
      h.clock.advance(1_000);
      await h.sink.waitFor((reqs) => reqs.length === 1, 5_000);
      h.clock.advance(1_000);
      await h.idle();
      await h.sink.waitFor((reqs) => reqs.length >= (policy === "forbid" ? 1 : 2), 5_000);
      await h.idle();
      result = {
        statuses: (await h.executions(id)).map((e) => e.status),
        deliveries: h.sink.requests.length,
      };
    },
  );
  return result!;
}

Deno.test("overlap allow: the next occurrence is delivered while the first still runs", async () => {
  const { statuses, deliveries } = await overlapRun("allow");
  assert.deepEqual(statuses, ["completed", "completed"]);
  assert.equal(deliveries, 2);
});

Deno.test("overlap forbid: the next occurrence is recorded skipped", async () => {
  const { statuses, deliveries } = await overlapRun("forbid");
  assert.deepEqual(statuses, ["completed", "skipped"]);
  assert.equal(deliveries, 1);
});

Deno.test("overlap replace: the running occurrence is aborted and recorded replaced", async () => {
  const { statuses, deliveries } = await overlapRun("replace");
  assert.deepEqual(statuses, ["replaced", "completed"]);
  assert.equal(deliveries, 2);
});

Deno.test("misfire: after 10 minutes down, the latest occurrence in the window fires once", async () => {
  await withScheduler({}, async (h) => {
    const inWindow = await h.create({
      cron_expression: "* * * * *",
      next_fire_at: T0 + 60_000,
      catchup_window_ms: 3_600_000,
    });
    const outOfWindow = await h.create({
      cron_expression: "* * * * *",
      next_fire_at: T0 + 60_000,
      catchup_window_ms: 30_000,
    });
    await h.scheduler.stop(0);
    h.clock.advance(10 * 60_000 + 45_000);
    await h.restart();
    await h.idle();
    const a = await h.executions(inWindow);
    assert.deepEqual(a.map((e) => [e.status, e.missed_count, e.trigger]), [
      ["missed", 9, "schedule"],
      ["completed", 0, "catch_up"],
    ]);
    assert.equal(a[1].scheduled_at, T0 + 10 * 60_000);
    const b = await h.executions(outOfWindow);
    assert.deepEqual(b.map((e) => [e.status, e.missed_count]), [["missed", 10]]);
    assert.equal(h.sink.requests.length, 1);
    h.clock.advance(15_000);
    await h.idle();
    assert.equal(h.sink.requests.length, 3, "both jobs fire on schedule again");
  });
});

Deno.test("a due occurrence whose claim is refused fires after a backoff, once", async () => {
  await withScheduler({}, async (h) => {
    const id = await h.create({ type: "once", run_at: T0 + 1_000, cron_expression: null });
    h.clock.advance(1_000);
    await h.idle();
    assert.equal(h.sink.requests.length, 0, "the claim was refused");
    h.clock.advance(50);
    await h.idle();
    assert.equal(h.sink.requests.length, 0, "refused again");
    h.clock.advance(100);
    await h.idle();
    assert.equal(h.sink.requests.length, 1, "the third claim went through");
    const [exec] = await h.executions(id);
    assert.equal(exec.status, "completed");
    assert.equal(exec.scheduled_at, T0 + 1_000);
    assert.deepEqual(h.retried, { advance: 2 });
    h.clock.advance(10_000);
    await h.idle();
    assert.equal(h.sink.requests.length, 1, "fired once");
  }, { type: "job.advance", times: 2 });
});

Deno.test("an outcome whose record is refused is recorded after a backoff, not redelivered", async () => {
  await withScheduler({}, async (h) => {
    const id = await h.create({ type: "once", run_at: T0 + 1_000, cron_expression: null });
    h.clock.advance(1_000);
    await h.idle();
    assert.equal(h.sink.requests.length, 1);
    assert.equal((await h.executions(id))[0].status, "in_progress", "the outcome waits");
    h.clock.advance(50);
    await h.idle();
    const [exec] = await h.executions(id);
    assert.equal(exec.status, "completed");
    assert.equal(exec.redeliveries, 0);
    assert.equal(h.sink.requests.length, 1);
    assert.deepEqual(h.retried, { finish: 1 });
  }, { type: "exec.finish", times: 1 });
});

Deno.test("outcomes of attempts that end in one turn are recorded in one proposal", async () => {
  const JOBS = 12;
  const finishes: number[] = [];
  // Each webhook call is made for real; its result is handed back only once all JOBS calls
  // have answered, so every attempt ends in the same turn of the event loop.
  const ended: { result: AttemptResult; release: (r: AttemptResult) => void }[] = [];
  const gathering = (real: Dispatcher): Dispatcher => ({
    async run(attempt, signal) {
      const result = await real.run(attempt, signal);
      return new Promise((release) => {
        ended.push({ result, release });
        if (ended.length === JOBS) { for (const e of ended) e.release(e.result); }
      });
    },
  });
  await withScheduler(
    {},
    async (h) => {
      const ids: string[] = [];
      for (let i = 0; i < JOBS; i++) {
        ids.push(await h.create({ type: "once", run_at: T0 + 1_000, cron_expression: null }));
      }
      h.clock.advance(1_000);
      await h.idle();
      assert.equal(h.sink.requests.length, JOBS);
      for (const id of ids) assert.equal((await h.executions(id))[0].status, "completed");
      assert.deepEqual(finishes, [JOBS]);
    },
    undefined,
    {
      dispatcher: gathering,
      watch: (commands) => {
        const count = commands.filter((c) => c.type === "exec.finish").length;
        if (count > 0) finishes.push(count);
        return Promise.resolve();
      },
    },
  );
});

Deno.test("a retry whose start is refused starts after a backoff", async () => {
  await withScheduler({ respond: (_req, n) => ({ status: n === 1 ? 503 : 200 }) }, async (h) => {
    const id = await h.create({ type: "once", run_at: T0 + 1_000, cron_expression: null });
    h.clock.advance(1_000);
    await h.idle();
    assert.equal((await h.executions(id))[0].status, "retrying");
    h.clock.advance(750);
    await h.idle();
    assert.equal(h.sink.requests.length, 1, "the retry's start was refused");
    h.clock.advance(50);
    await h.idle();
    assert.equal(h.sink.requests.length, 2);
    const [exec] = await h.executions(id);
    assert.equal(exec.status, "completed");
    assert.equal(exec.attempt, 2);
    assert.deepEqual(h.retried, { attempt: 1 });
  }, { type: "exec.attempt", times: 1 });
});
