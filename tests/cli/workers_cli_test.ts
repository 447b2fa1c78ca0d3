/**
 * `tickraft workers …` and `tickraft allocations …` as real subprocesses against a real node with
 * a real `tickraft worker` agent registered: the table and `--json` of the workers, a worker job
 * that runs on the agent and one that fits nowhere shown with its explanation, drain and remove,
 * and the errors a user meets (an unknown worker, a wrong status, a missing id).
 */
import assert from "node:assert/strict";
import { withNode } from "../support/node.ts";
import { eventually } from "../support/wait.ts";
import { spawnWorker } from "../support/worker_process.ts";
import { field, tickraft, tickraftJson } from "./tickraft.ts";

interface WorkerRow {
  id: string;
  status: string;
}

interface AllocationRow {
  id: string;
  job_id: string;
  worker_id: string | null;
  status: string;
  explanation: string | null;
}

Deno.test("tickraft workers … and allocations … against a real node and a real agent", async (t) => {
  await withNode({}, async (node) => {
    const url = ["--url", node.url];
    const agent = spawnWorker([
      "--server",
      node.url,
      "--id",
      "w-cli",
      "--region",
      "fra",
      "--zone",
      "fra-a",
      "--labels",
      "tier=batch",
      "--taints",
      "gpu=true:PreferNoSchedule",
      "--cpu",
      "2000",
      "--memory",
      "1024",
      "--slots",
      "2",
      "--exec",
      `sh -c 'cat; echo " ran"'`,
    ]);
    try {
      await eventually("w-cli registered and ready", async () => {
        const { workers } = await tickraftJson(["workers", "list", ...url, "--json"]);
        return (workers as WorkerRow[]).some((w) => w.id === "w-cli" && w.status === "ready")
          ? true
          : undefined;
      }, 30_000);

      await t.step("workers list: one row per worker, allocated/capacity, heartbeat", async () => {
        const run = await tickraft(["workers", "list", ...url]);
        assert.equal(run.code, 0, run.stderr);
        const [header, ...rows] = run.stdout.trimEnd().split("\n");
        assert.match(
          header,
          /^ID\s+STATUS\s+POOL\s+REGION\/ZONE\s+CPU\s+MEMORY\s+DISK\s+SLOTS\s+ALLOCS\s+HEARTBEAT\s+LABELS$/,
        );
        assert.equal(rows.length, 1, run.stdout);
        assert.match(
          rows[0],
          /^w-cli\s+ready\s+default\s+fra\/fra-a\s+0\/2000m\s+0\/1024MiB\s+0\/0MiB\s+0\/2\s+0\s+\d+s ago\s+tier=batch$/,
        );
      });

      const soon = () => new Date(Date.now() + 300).toISOString();
      const create = async (resources: Record<string, number>) =>
        (await tickraftJson([
          "jobs",
          "create",
          ...url,
          "--json",
          JSON.stringify({
            type: "once",
            timestamp: soon(),
            payload: { from: "cli" },
            executor: { type: "worker", resources },
          }),
          "--json",
        ])).id as string;

      const small = await create({ cpu_millis: 500, memory_mb: 256 });
      const big = await create({ cpu_millis: 100, memory_mb: 4_000 });

      await t.step("allocations list --job: the job ran on the agent", async () => {
        const [done] = await eventually("the small job's allocation completed", async () => {
          const page = await tickraftJson([
            "allocations",
            "list",
            ...url,
            "--job",
            small,
            "--json",
          ]);
          const all = page.allocations as AllocationRow[];
          return all.some((a) => a.status === "completed") ? all : undefined;
        }, 30_000);
        assert.equal(done.worker_id, "w-cli");
        const run = await tickraft(["allocations", "list", ...url, "--job", small]);
        assert.equal(run.code, 0, run.stderr);
        const [header, row] = run.stdout.trimEnd().split("\n");
        assert.match(header, /^ID\s+JOB\s+WORKER\s+STATUS\s+ATTEMPT\s+SCHEDULED AT\s+DETAIL$/);
        assert.match(
          row,
          new RegExp(
            `^${done.id}\\s+${small}\\s+w-cli\\s+completed\\s+1\\s+\\S+Z\\s+ok, exit 0, \\d+ ms$`,
          ),
        );

        const one = await tickraft(["allocations", "get", done.id, ...url]);
        assert.equal(one.code, 0, one.stderr);
        assert.equal(field(one.stdout, "worker_id"), "w-cli");
        assert.equal(field(one.stdout, "resources.memory_mb"), "256");
        assert.match(field(one.stdout, "outcome.output_excerpt"), /^{"from":"cli"} ran$/);
      });

      await t.step(
        "allocations list --status pending: the explanation of a job that fits nowhere",
        async () => {
          const pending = await eventually("the big job pending", async () => {
            const page = await tickraftJson([
              "allocations",
              "list",
              ...url,
              "--status",
              "pending",
              "--json",
            ]);
            return (page.allocations as AllocationRow[]).find((a) => a.job_id === big);
          });
          const run = await tickraft(["allocations", "list", ...url, "--status", "pending"]);
          assert.equal(run.code, 0, run.stderr);
          const row = run.stdout.split("\n").find((line) => line.startsWith(pending.id));
          assert.ok(row !== undefined, run.stdout);
          assert.match(
            row,
            new RegExp(
              `^${pending.id}\\s+${big}\\s+-\\s+pending\\s+1\\s+\\S+Z\\s+no worker fits \\(0 of 1\\): .*memory exhausted: 1 worker`,
            ),
          );
          const none = await tickraft(["allocations", "list", ...url, "--worker", "w-nobody"]);
          assert.equal(none.code, 0, none.stderr);
          assert.equal(none.stdout.trim(), "no allocations");
        },
      );

      await t.step("workers get: the fields and allocated against capacity", async () => {
        const run = await tickraft(["workers", "get", "w-cli", ...url]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(field(run.stdout, "status"), "ready");
        assert.equal(field(run.stdout, "labels"), "tier=batch");
        assert.equal(field(run.stdout, "taints"), "gpu=true:PreferNoSchedule");
        assert.match(field(run.stdout, "last_heartbeat_at"), /^\S+Z \(\d+s ago\)$/);
        assert.match(run.stdout, /^RESOURCE\s+ALLOCATED\s+CAPACITY\s+USED$/m);
        assert.match(run.stdout, /^cpu_millis\s+0\s+2000\s+0%$/m);
        assert.match(run.stdout, /^slots\s+0\s+2\s+0%$/m);
        const raw = await tickraftJson(["--json", "workers", "get", "w-cli", ...url]);
        assert.deepEqual(raw.capacity, { cpu_millis: 2000, memory_mb: 1024, disk_mb: 0, slots: 2 });
      });

      await t.step("workers drain, then remove", async () => {
        const drained = await tickraft(["workers", "drain", "w-cli", ...url]);
        assert.equal(drained.code, 0, drained.stderr);
        assert.match(drained.stdout.trim(), /^worker w-cli: draining \(drained: .+\)$/);
        const listed = await tickraft(["workers", "list", ...url]);
        assert.match(listed.stdout, /^w-cli\s+draining\s/m);

        await agent.stop(); // a live agent registers again when its heartbeat meets a 404
        const removed = await tickraft(["workers", "remove", "w-cli", ...url]);
        assert.equal(removed.code, 0, removed.stderr);
        assert.equal(
          removed.stdout.trim(),
          "removed worker w-cli; its active allocations are placed again",
        );
        const empty = await tickraft(["workers", "list", ...url]);
        assert.equal(empty.code, 0, empty.stderr);
        assert.match(empty.stdout, /^no workers registered/);
      });

      await t.step("errors: an unknown worker, a wrong status, a missing id", async () => {
        const runs = await Promise.all([
          tickraft(["workers", "get", "w-cli", ...url]),
          tickraft(["workers", "drain", "w-ghost", ...url]),
          tickraft(["allocations", "list", ...url, "--status", "sleeping"]),
          tickraft(["workers", "remove", ...url]),
          tickraft(["workers", "stop", ...url]),
        ]);
        assert.equal(runs[0].code, 1);
        assert.equal(
          runs[0].stderr.trim(),
          "tickraft: worker w-cli is not registered (HTTP 404 not_found)",
        );
        assert.equal(runs[1].code, 1);
        assert.match(runs[1].stderr, /worker w-ghost is not registered \(HTTP 404 not_found\)/);
        assert.equal(runs[2].code, 1);
        assert.match(runs[2].stderr, /status: .*\(HTTP 400 invalid_request\)/);
        assert.equal(runs[3].code, 2);
        assert.match(
          runs[3].stderr,
          /^tickraft: missing <id>\n\nUsage: tickraft workers remove <id>/,
        );
        assert.equal(runs[4].code, 2);
        assert.match(runs[4].stderr, /unknown command "workers stop"[\s\S]*Commands:/);
      });
    } finally {
      await agent.stop();
    }
  });
});
