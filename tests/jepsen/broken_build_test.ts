/**
 * The harness catches deliberately broken builds: the run's copy of src/ gets a change (src/
 * itself is untouched) and runs under the faults that expose it; each test asserts that the
 * checker meant for that bug fails. The hostile client is off here: each run is about its bug.
 *
 * - stale reads: `?consistency=linearizable` is served from the local state with no ReadIndex
 *   round, so a node cut off from the leader answers from old state. The linearizability
 *   checker must flag it.
 * - fires without the fence: a leader whose claim (`job.advance`, fenced on the job's next fire
 *   time) fails to commit fires the occurrence anyway. A leader cut off from its quorum keeps
 *   its role until check-quorum deposes it, its pending claims are then rejected, and it fires
 *   them while the new leader, which never saw those claims, fires the same occurrences. The
 *   duplicate-delivery checker must flag it under partitions and pauses (a leader continued after
 *   SIGSTOP fires its due jobs before it hears of the new term).
 * - acknowledges before the fsync: the Raft log's writes and the state machine's writes are
 *   queued and written 1.5 s later, while the node goes on as if they were durable (it votes,
 *   acknowledges appends, applies and answers). kill -9 does not lose the OS page cache, so
 *   deferring only the fsync would lose nothing here: the edit defers the write itself. The
 *   `crash` fault (kill -9 of every node at once) then loses creates that were acknowledged;
 *   the no-lost-create checker must flag it.
 */
import assert from "node:assert/strict";
import { runJepsen } from "../../scripts/jepsen/run.ts";

const OFF = { kinds: [], rate_per_s: 1, max_requests: 0 };

Deno.test("jepsen catches a broken build: linearizable reads served without ReadIndex", async () => {
  const result = await runJepsen({
    seed: 11,
    time_ms: 30_000,
    nodes: 3,
    clients: 5,
    faults: ["partition"],
    out_dir: ".tmp/jepsen-test",
    firing_bound_ms: 20_000,
    hostile: OFF,
    edit: {
      file: "http/cluster_routes.ts",
      from: `const linearizable = url.searchParams.get("consistency") === "linearizable";`,
      to: `const linearizable = false;`,
    },
  });
  const lin = result.checks.find((c) => c.name === "linearizability")!;
  assert.equal(lin.ok, false, `the stale reads went unnoticed: see ${result.dir}/report.md`);
});

/** Fires the occurrences of a failed claim anyway (the build under test, not the product). */
const FIRE_WITHOUT_FENCE = `
      try {
        const results = await this.#o.log.propose(commands);
        this.#countOccurrences(commands, results);
        for (const job_id of rows.keys()) this.#proposalFailures.delete(JOB_KEY + job_id);
      } catch (error) {
        for (const command of commands) {
          if (command.type !== "job.advance" || command.start === null) continue;
          const job = rows.get(command.job_id);
          if (job === undefined || job.webhook_url === null) continue;
          void this.#o.dispatcher.run({
            job,
            execution_id: command.start.execution_id,
            scheduled_at_ms: command.start.scheduled_at,
            attempt: 1,
            redelivery: false,
          }, new AbortController().signal);
        }
        throw error;
      } finally {`;

Deno.test("jepsen catches a broken build: a leader fires without the committed claim", async () => {
  const result = await runJepsen({
    seed: 21,
    time_ms: 20_000,
    nodes: 3,
    clients: 5,
    faults: ["partition", "pause"],
    out_dir: ".tmp/jepsen-test",
    firing_bound_ms: 20_000,
    hostile: OFF,
    edit: {
      file: "scheduler/scheduler.ts",
      from: `
      try {
        const results = await this.#o.log.propose(commands);
        this.#countOccurrences(commands, results);
        for (const job_id of rows.keys()) this.#proposalFailures.delete(JOB_KEY + job_id);
      } finally {`,
      to: FIRE_WITHOUT_FENCE,
    },
  });
  const twice = result.checks.find((c) => c.name === "no occurrence fired twice")!;
  assert.equal(twice.ok, false, `the unfenced firing went unnoticed: see ${result.dir}/report.md`);
});

/**
 * Queues `write` on one chain shared by the Raft log and the state file (so the state on disk
 * is never ahead of the log on disk, and a node restarts on what it wrote) and runs it 1.5 s
 * later.
 */
const deferred = (write: string) =>
  `{
    const chain = globalThis as unknown as { deferredWrites?: Promise<void> };
    const due_ms = Date.now() + 1_500;
    chain.deferredWrites = (chain.deferredWrites ?? Promise.resolve()).then(async () => {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due_ms - Date.now())));
      await ${write};
    }).catch(() => {});
  }`;

Deno.test("jepsen catches a broken build: writes acknowledged before they are written", async () => {
  const result = await runJepsen({
    seed: 31,
    time_ms: 20_000,
    nodes: 3,
    clients: 5,
    faults: ["crash"],
    out_dir: ".tmp/jepsen-test",
    firing_bound_ms: 20_000,
    hostile: OFF,
    edit: [
      {
        file: "cluster/raft_storage.ts",
        from: `await this.db.write(statements);
    if (rd.snapshot`,
        to: `${deferred(`this.db.write(statements)`)}
    if (rd.snapshot`,
      },
      {
        file: "cluster/replicated_log.ts",
        from: `await this.#o.stateDb.write(statements);`,
        to: deferred(`this.#o.stateDb.write(statements)`),
      },
    ],
  });
  const lost = result.checks.find((c) => c.name === "no lost acknowledged create")!;
  assert.equal(lost.ok, false, `the lost writes went unnoticed: see ${result.dir}/report.md`);
});
