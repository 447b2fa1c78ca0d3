/**
 * The CLI as a real subprocess (`deno run -A src/main.ts jobs …`): against a real node started in
 * process for the jobs commands, the cluster view and the 404 of cluster endpoints a single node
 * does not serve; against a recorder (a bare `Deno.serve`) for the request shapes of the cluster
 * commands and the `Authorization` header.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";
import { type RunningNode, startNode } from "../../src/node/node.ts";
import { field, tickraft, tickraftJson } from "./tickraft.ts";

/** A cron schedule that does not fire while a test runs: midnight on January 1st. */
const NEW_YEAR = "0 0 1 1 *";
const HOOK = "http://127.0.0.1:9999/hook";

Deno.test("tickraft jobs … and cluster … against a real node", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tickraft-cli-" });
  let node: RunningNode | undefined;
  try {
    node = await startNode(
      defaultConfig({ host: "127.0.0.1", http_port: 0, data_dir: dir }),
      { logger: silentLogger },
    );
    const node_url = node.url;
    const url = ["--url", node_url];
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const ids: Record<string, string> = {};

    await t.step("create from flags: cron, webhook, payload, idempotency key", async () => {
      const run = await tickraft([
        "jobs",
        "create",
        ...url,
        "--cron",
        NEW_YEAR,
        "--timezone",
        "Europe/Paris",
        "--webhook",
        HOOK,
        "--payload",
        '{"a":1}',
        "--name",
        "report",
        "--idempotency-key",
        "nightly",
      ]);
      assert.equal(run.code, 0, run.stderr);
      ids.cron = field(run.stdout, "id");
      assert.equal(field(run.stdout, "type"), "cron");
      assert.equal(field(run.stdout, "cron_expression"), NEW_YEAR);
      assert.equal(field(run.stdout, "timezone"), "Europe/Paris");
      assert.equal(field(run.stdout, "webhook_url"), HOOK);
      assert.equal(field(run.stdout, "payload"), '{"a":1}');
      assert.equal(field(run.stdout, "idempotency_key"), "nightly");

      const again = await tickraftJson([
        "jobs",
        "create",
        ...url,
        "--json",
        "--cron",
        NEW_YEAR,
        "--idempotency-key",
        "nightly",
      ]);
      assert.equal(again.id, ids.cron, "the same idempotency key returns the same job");
    });

    await t.step("create from --json '{…}' (raw output with --json) and from --file", async () => {
      const once = await tickraftJson([
        "jobs",
        "create",
        ...url,
        "--json",
        JSON.stringify({ type: "once", timestamp: at, webhook_url: HOOK }),
        "--json",
      ]);
      assert.equal(once.type, "once");
      assert.equal(once.next_run_at, at);
      ids.once = once.id;

      const file = join(dir, "job.json");
      await Deno.writeTextFile(file, JSON.stringify({ type: "interval", interval_seconds: 3600 }));
      const interval = await tickraftJson(["jobs", "create", ...url, "--file", file, "--json"]);
      assert.equal(interval.interval_seconds, 3600);
      ids.interval = interval.id;

      const every = await tickraftJson(["jobs", "create", ...url, "--every", "90m", "--json"]);
      assert.equal(every.type, "interval");
      assert.equal(every.interval_seconds, 5400);
      ids.every = every.id;
    });

    await t.step("get shows one job as key/values", async () => {
      const run = await tickraft(["jobs", "get", ids.once, ...url]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(field(run.stdout, "id"), ids.once);
      assert.equal(field(run.stdout, "status"), "pending");
      assert.equal(field(run.stdout, "timestamp"), at);
    });

    await t.step("list: a table of every job; --json, filters, pages and --all", async () => {
      const run = await tickraft(["jobs", "list", ...url]);
      assert.equal(run.code, 0, run.stderr);
      const [header, ...rows] = run.stdout.trimEnd().split("\n");
      assert.match(header, /^ID\s+TYPE\s+STATUS\s+NEXT RUN\s+SCHEDULE\s+WEBHOOK$/);
      assert.deepEqual(rows.map((row) => row.split(/\s+/)[0]), [
        ids.cron,
        ids.once,
        ids.interval,
        ids.every,
      ]);
      const cron_row = rows[0];
      assert.ok(cron_row.includes(`${NEW_YEAR} (Europe/Paris)`), cron_row);
      assert.ok(cron_row.includes(HOOK), cron_row);
      assert.ok(rows[2].includes("every 1h"), rows[2]);

      const cron_only = await tickraftJson(["jobs", "list", ...url, "--type", "cron", "--json"]);
      assert.deepEqual(cron_only.jobs.map((j: { id: string }) => j.id), [ids.cron]);

      const first = await tickraft(["jobs", "list", ...url, "--limit", "1"]);
      assert.ok(first.stdout.includes(`more: add --cursor ${ids.cron}`), first.stdout);

      const all = await tickraftJson(["jobs", "list", ...url, "--limit", "1", "--all", "--json"]);
      assert.equal(all.jobs.length, 4);
      assert.equal(all.next_cursor, null);
    });

    await t.step("trigger, then executions lists the manual run", async () => {
      const run = await tickraft(["jobs", "trigger", ids.interval, ...url]);
      assert.equal(run.code, 0, run.stderr);
      const match = /^triggered job (\S+): execution (\S+)$/.exec(run.stdout.trim());
      assert.ok(match !== null, run.stdout);
      assert.equal(match[1], ids.interval);

      const history = await tickraft(["jobs", "executions", ids.interval, ...url]);
      assert.equal(history.code, 0, history.stderr);
      const row = history.stdout.split("\n").find((line) => line.startsWith(match[2]));
      assert.ok(row?.includes("manual"), history.stdout);
      const raw = await tickraftJson(["jobs", "executions", ids.interval, ...url, "--json"]);
      assert.equal(raw.executions[0].id, match[2]);
    });

    await t.step("pause, resume, cancel --reason, delete", async () => {
      const paused = await tickraft(["jobs", "pause", ids.cron, ...url]);
      assert.equal(paused.code, 0, paused.stderr);
      assert.match(paused.stdout, new RegExp(`^job ${ids.cron}: paused`));
      const resumed = await tickraftJson(["jobs", "resume", ids.cron, ...url, "--json"]);
      assert.equal(resumed.status, "pending");

      const cancelled = await tickraft(["jobs", "cancel", ids.once, ...url, "--reason", "moved"]);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.equal(field(cancelled.stdout, "status"), "cancelled");
      assert.equal(field(cancelled.stdout, "cancel_reason"), "moved");

      const deleted = await tickraft(["jobs", "delete", ids.once, ...url]);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(deleted.stdout.trim(), `deleted job ${ids.once}`);
    });

    await t.step("a failed request: exit 1 with the server's message and status", async () => {
      const missing = await tickraft(["jobs", "get", ids.once, ...url]);
      assert.equal(missing.code, 1);
      assert.equal(
        missing.stderr.trim(),
        `tickraft: job ${ids.once} does not exist (HTTP 404 not_found)`,
      );
      assert.equal(missing.stdout, "");

      const invalid = await tickraft(["jobs", "create", ...url, "--cron", "61 * * * *"]);
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /cron_expression: .*\(HTTP 400 invalid_request\)/);
    });

    await t.step("usage errors: exit 2 with the command's help, nothing sent", async () => {
      const runs = await Promise.all([
        tickraft(["jobs", "get", ...url]),
        tickraft(["jobs", "create", ...url, "--cron", NEW_YEAR, "--every", "30s"]),
        tickraft(["jobs", "create", ...url, "--json", "{not json"]),
        tickraft(["jobs", "list", ...url, "--colour"]),
        tickraft(["jobs", "launch", ...url]),
      ]);
      for (const run of runs) assert.equal(run.code, 2, run.stderr);
      assert.match(runs[0].stderr, /^tickraft: missing <id>\n\nUsage: tickraft jobs get <id>/);
      assert.match(runs[1].stderr, /--cron, --every each set a type/);
      assert.match(runs[2].stderr, /--json is not JSON/);
      assert.match(runs[3].stderr, /Unknown option '--colour'[\s\S]*Usage: tickraft jobs list/);
      assert.match(runs[4].stderr, /unknown command "jobs launch"[\s\S]*Commands:/);
      const listed = await tickraftJson(["jobs", "list", ...url, "--json"]);
      assert.equal(listed.jobs.length, 3, "no usage error created a job");
    });

    await t.step("cluster status shows /debug/cluster and /health", async () => {
      const run = await tickraft(["cluster", "status", ...url]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(field(run.stdout, "role"), "leader");
      assert.match(run.stdout, /^members:\nid\s+address\s+role/m);
      assert.ok(run.stdout.includes(node_url), run.stdout);
      assert.equal(field(run.stdout, "jobs.total"), "3");
      const raw = await tickraftJson(["--json", "cluster", "status", ...url]);
      assert.equal(raw.cluster.node_id, "node-1");
      assert.equal(raw.health.status, "ok");
    });

    await t.step(
      "cluster join/leave/transfer-leader on a node without them: a clear 404",
      async () => {
        const runs = await Promise.all([
          tickraft(["cluster", "join", ...url, "--node-id", "n2", "--address", "http://a:1"]),
          tickraft(["cluster", "leave", ...url, "--node-id", "n2"]),
          tickraft(["cluster", "transfer-leader", ...url]),
        ]);
        for (const [i, what] of ["join", "leave", "transfer-leader"].entries()) {
          assert.equal(runs[i].code, 1, runs[i].stderr);
          assert.ok(
            runs[i].stderr.startsWith(
              `tickraft: the node at ${node_url} does not support "cluster ${what}" yet, ` +
                "or is not in cluster mode",
            ),
            runs[i].stderr,
          );
        }
      },
    );
  } finally {
    await node?.stop(200);
    await Deno.remove(dir, { recursive: true });
  }
});

interface Recorded {
  method: string;
  path: string;
  authorization: string | null;
  content_type: string | null;
  body: string;
}

/** A server that records each request and answers with `respond`. */
function startRecorder(respond: (request: Recorded) => Response) {
  const requests: Recorded[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const recorded = {
        method: req.method,
        path: new URL(req.url).pathname,
        authorization: req.headers.get("authorization"),
        content_type: req.headers.get("content-type"),
        body: await req.text(),
      };
      requests.push(recorded);
      return respond(recorded);
    },
  );
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, server };
}

Deno.test("cluster commands send the documented requests; --token sends the bearer header", async () => {
  const recorder = startRecorder((r) => {
    if (r.path === "/cluster/members/ghost") {
      return Response.json({ error: "ghost is not a member", code: "not_found" }, { status: 404 });
    }
    if (r.path === "/jobs/broken") {
      return Response.json({ error: "storage failed", code: "unavailable" }, { status: 503 });
    }
    return Response.json(r.path === "/jobs" ? { jobs: [], next_cursor: null } : { ok: true });
  });
  const url = ["--url", recorder.url];
  const last = () => recorder.requests.at(-1)!;
  try {
    const join = await tickraft([
      ...url,
      "cluster",
      "join",
      "--node-id",
      "n2",
      "--address",
      "http://10.0.0.2:8080",
    ]);
    assert.equal(join.code, 0, join.stderr);
    assert.deepEqual(
      { method: last().method, path: last().path, body: JSON.parse(last().body) },
      { method: "POST", path: "/join", body: { node_id: "n2", address: "http://10.0.0.2:8080" } },
    );
    assert.equal(last().content_type, "application/json");
    assert.match(
      join.stdout,
      /^asked the cluster to add n2 at http:\/\/10.0.0.2:8080\n\nok\s+true$/m,
    );

    const leave = await tickraft(["cluster", "leave", ...url, "--node-id", "n2"]);
    assert.equal(leave.code, 0, leave.stderr);
    assert.deepEqual([last().method, last().path], ["DELETE", "/cluster/members/n2"]);

    const to = await tickraft(["cluster", "transfer-leader", ...url, "--to", "n3", "--json"]);
    assert.equal(to.code, 0, to.stderr);
    assert.deepEqual(JSON.parse(to.stdout), { ok: true });
    assert.deepEqual(
      [last().method, last().path, JSON.parse(last().body)],
      ["POST", "/cluster/transfer-leader", { to: "n3" }],
    );
    await tickraft(["cluster", "transfer-leader", ...url]);
    assert.deepEqual(JSON.parse(last().body), {});

    const ghost = await tickraft(["cluster", "leave", ...url, "--node-id", "ghost"]);
    assert.equal(ghost.code, 1);
    assert.equal(ghost.stderr.trim(), "tickraft: ghost is not a member (HTTP 404 not_found)");

    const missing_flag = await tickraft(["cluster", "join", ...url, "--node-id", "n2"]);
    assert.equal(missing_flag.code, 2);
    assert.match(
      missing_flag.stderr,
      /^tickraft: --address is required\n\nUsage: tickraft cluster join/,
    );

    const before = recorder.requests.length;
    const with_flag = await tickraft(["jobs", "list", ...url, "--token", "s3cret-flag"]);
    assert.equal(with_flag.code, 0, with_flag.stderr);
    assert.equal(last().authorization, "Bearer s3cret-flag");
    const from_env = await tickraft(["jobs", "get", "broken"], {
      TICKRAFT_URL: recorder.url,
      TICKRAFT_TOKEN: "s3cret-env",
    });
    assert.equal(last().authorization, "Bearer s3cret-env");
    assert.equal(from_env.code, 1);
    assert.equal(from_env.stderr.trim(), "tickraft: storage failed (HTTP 503 unavailable)");
    assert.ok(
      !`${from_env.stdout}${from_env.stderr}`.includes("s3cret"),
      "the token is not printed",
    );
    await tickraft(["jobs", "list", ...url]);
    assert.equal(last().authorization, null, "no token, no header");
    assert.equal(recorder.requests.length, before + 3);
  } finally {
    await recorder.server.shutdown();
  }
});

Deno.test("without jobs or cluster, main.ts is the server as before: --help prints its flags", async () => {
  const run = await tickraft(["--help"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    /^tickraft: a Raft-replicated job scheduler\n\nUsage: tickraft \[serve\] \[flags\]/,
  );
  const serve_help = await tickraft(["serve", "--help"]);
  assert.equal(serve_help.stdout, run.stdout);
});
