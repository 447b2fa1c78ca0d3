/**
 * A follower stopped for a while catches up by snapshot after compaction: with a small
 * SNAPSHOT_ENTRIES the leader compacts its log past the stopped follower's match index, so the
 * restarted follower (same data dir) can only catch up through InstallSnapshot; it then lists
 * every job locally and applies up to the leader's commit index.
 */
import assert from "node:assert/strict";
import {
  agreedLeader,
  clusterView,
  json,
  logLines,
  post,
  startCluster,
  startMember,
  stopCluster,
} from "../support/process_cluster.ts";
import { eventually } from "../support/wait.ts";

const SNAPSHOT_ENTRIES = 20;
const CREATES_WHILE_DOWN = 300;

async function createJob(url: string, name: string): Promise<string> {
  const { status, body } = await json<{ id: string }>(
    `${url}/jobs`,
    post({ type: "cron", cron_expression: "0 0 1 1 *", name }),
  );
  assert.equal(status, 201, `create ${name} through ${url}: ${JSON.stringify(body)}`);
  return body.id;
}

Deno.test("a node stopped for a while catches up by snapshot after compaction", async () => {
  const cluster = await startCluster({ env: { SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES) } });
  try {
    const leader = await agreedLeader(cluster, cluster.names);
    const leaderUrl = cluster.urls.get(leader)!;
    const follower = cluster.names.find((n) => n !== leader)!;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await createJob(leaderUrl, `before-${i}`));
    const before = await clusterView(cluster, leader);
    await eventually(`${follower} applies the first jobs`, async () => {
      const view = await clusterView(cluster, follower);
      return view.applied_index >= before.commit_index ? true : undefined;
    });

    assert.equal(await cluster.nodes.get(follower)!.kill("SIGKILL"), 137);
    const stopped = (await clusterView(cluster, leader)).members.find((m) => m.id === follower);
    assert.ok(stopped?.match_index != null, `the leader tracks ${follower}'s match index`);
    const match = stopped.match_index;

    for (let i = 0; i < CREATES_WHILE_DOWN; i++) ids.push(await createJob(leaderUrl, `down-${i}`));
    const snapshots = logLines(cluster.nodes.get(leader)!, "snapshot taken");
    const compactedTo = Math.max(0, ...snapshots.map((s) => Number(s.index)));
    assert.ok(
      compactedTo > match + 1,
      `the leader compacted its log (snapshot at ${compactedTo}) past ${follower}'s match ${match}`,
    );
    const target = (await clusterView(cluster, leader)).commit_index;

    const restarted = await startMember(cluster, follower);
    const installed = await eventually(`${follower} installs a snapshot`, () => {
      const lines = logLines(restarted, "snapshot installed");
      return Promise.resolve(lines.length > 0 ? lines : undefined);
    });
    assert.ok(
      Number(installed[0].index) > match,
      `the installed snapshot (${installed[0].index}) is beyond the old match index ${match}`,
    );
    assert.ok(Number(installed[0].bytes) > 0, "the snapshot carries the state's bytes");

    await eventually(`${follower} applies up to the leader's commit ${target}`, async () => {
      const view = await clusterView(cluster, follower);
      return view.applied_index >= target ? true : undefined;
    });
    const listed = await json<{ jobs: { id: string }[] }>(
      `${cluster.urls.get(follower)}/jobs?limit=1000`,
    );
    assert.equal(listed.status, 200);
    const present = new Set(listed.body.jobs.map((j) => j.id));
    const missing = ids.filter((id) => !present.has(id));
    assert.deepEqual(missing, [], `every job is on ${follower} after catching up`);
    assert.equal(present.size, ids.length, "no job beyond the acknowledged ones");
  } finally {
    await stopCluster(cluster);
  }
});
