/**
 * Membership changes under load on real processes: while a writer creates jobs every ~20 ms
 * through any live node, a 4th node joins through `JOIN_URL` (learner, then voter) and a
 * follower is removed with `DELETE /cluster/members/{id}`; every acknowledged job is then on the
 * newcomer (local read once it applied the leader's commit) and on the leader (linearizable).
 */
import assert from "node:assert/strict";
import {
  agreedLeader,
  type Cluster,
  clusterView,
  describeCluster,
  json,
  listJobIds,
  memberUrl,
  post,
  startCluster,
  startMember,
  stopCluster,
} from "../support/process_cluster.ts";
import { eventually, sleep } from "../support/wait.ts";

interface Writer {
  /** Ids of creates answered 201, in order. */
  acked: string[];
  /** Answers other than 201, and network errors, by kind. */
  failures: Map<string, number>;
  stop(): Promise<void>;
}

/** Creates a job every ~20 ms, one request at a time, round-robin over `targets()`. */
function startWriter(cluster: Cluster, targets: () => string[]): Writer {
  const acked: string[] = [];
  const failures = new Map<string, number>();
  const fail = (kind: string) => failures.set(kind, (failures.get(kind) ?? 0) + 1);
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const live = targets();
      const name = live[i % live.length];
      try {
        const response = await fetch(`${cluster.urls.get(name)}/jobs`, {
          ...post({ type: "cron", cron_expression: "0 0 1 1 *", name: `w-${i}` }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = await response.json() as { id?: string; code?: string };
        if (response.status === 201 && body.id !== undefined) acked.push(body.id);
        else fail(`${name} ${response.status} ${body.code ?? ""}`);
      } catch (error) {
        fail(`${name} ${(error as Error).name}`);
      }
      await sleep(20);
    }
  })();
  return {
    acked,
    failures,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

Deno.test("a 4th node joins with /join and a node is removed while jobs are being created", async () => {
  const cluster = await startCluster();
  let writer: Writer | undefined;
  try {
    const leader = await agreedLeader(cluster, cluster.names);
    const targets = [...cluster.names];
    writer = startWriter(cluster, () => targets);
    const w = writer;
    const ackedAtLeast = (n: number, what: string) =>
      eventually(what, () => Promise.resolve(w.acked.length >= n ? true : undefined));
    await ackedAtLeast(5, "the writer's first acknowledged creates");

    // Join: node-4 knows only a follower's URL, its own, and the secret.
    const joined = "node-4";
    const through = cluster.names.find((n) => n !== leader)!;
    let acked = w.acked.length;
    const node4 = await startMember(cluster, joined, {
      JOIN_URL: cluster.urls.get(through)!,
      ADVERTISE_URL: memberUrl(cluster, joined),
    });
    targets.push(joined);
    // The newcomer must replicate the log: it answers the leader's appends only if it knows the
    // leader's address, which a fresh joiner learns from nowhere but the log itself.
    const joinCommit = (await clusterView(cluster, leader)).commit_index;
    await eventually(
      `${joined} to replicate the log up to the leader's commit ${joinCommit} (a joiner that ` +
        "never learns the members' addresses drops every append response, so it never catches " +
        'up; look for "raft message for an unknown peer dropped" with LOG_LEVEL=debug)',
      async () => {
        const view = await clusterView(cluster, joined);
        return view.applied_index >= joinCommit ? true : undefined;
      },
      10_000,
    );
    const voterOn = async (name: string) => {
      const view = await clusterView(cluster, name);
      return view.members.some((m) => m.id === joined && m.role === "voter") ? view : undefined;
    };
    await eventually(`${joined} is a voter on the leader`, async () => {
      const now = await agreedLeader(cluster, targets);
      return await voterOn(now);
    }, 20_000);
    assert.ok(
      node4.output().includes('"msg":"joined the cluster"'),
      `${joined} says it joined:\n${node4.output()}`,
    );
    await ackedAtLeast(acked + 5, "creates acknowledged while node-4 joined");

    // Remove a follower (not node-4), asking through node-4 (a follower proxies to the leader).
    const current = await agreedLeader(cluster, targets);
    const removed = cluster.names.find((n) => n !== current)!;
    acked = w.acked.length;
    const deleted = await json<{ removed?: boolean; error?: string }>(
      `${cluster.urls.get(joined)}/cluster/members/${removed}`,
      { method: "DELETE", signal: AbortSignal.timeout(15_000) },
    );
    assert.equal(
      deleted.status,
      200,
      `DELETE /cluster/members/${removed}: ${JSON.stringify(deleted.body)}`,
    );
    assert.equal(deleted.body.removed, true);
    targets.splice(targets.indexOf(removed), 1);
    await eventually(`${removed} is no member on any remaining node`, async () => {
      const views = await Promise.all(targets.map((name) => clusterView(cluster, name)));
      return views.every((v) => v.members.every((m) => m.id !== removed)) ? true : undefined;
    });
    assert.equal(await cluster.nodes.get(removed)!.kill("SIGTERM"), 0, `${removed} stops cleanly`);
    await ackedAtLeast(acked + 5, "creates acknowledged around the removal");
    acked = w.acked.length;
    await ackedAtLeast(acked + 10, "creates acknowledged by the cluster without the removed node");
    await writer.stop();

    // Nothing acknowledged is lost: on the leader (linearizable) and on node-4 (local).
    const finalLeader = await agreedLeader(cluster, targets);
    assert.ok(finalLeader !== removed);
    const onLeader = await listJobIds(cluster.urls.get(finalLeader)!, "consistency=linearizable");
    const commit = (await clusterView(cluster, finalLeader)).commit_index;
    await eventually(`${joined} applies up to the leader's commit ${commit}`, async () => {
      const view = await clusterView(cluster, joined);
      return view.applied_index >= commit ? true : undefined;
    });
    const onJoined = await listJobIds(cluster.urls.get(joined)!);
    const lostOnLeader = w.acked.filter((id) => !onLeader.has(id));
    const lostOnJoined = w.acked.filter((id) => !onJoined.has(id));
    assert.deepEqual(lostOnLeader, [], `acknowledged jobs missing on the leader ${finalLeader}`);
    assert.deepEqual(lostOnJoined, [], `acknowledged jobs missing on ${joined}`);
    const view = await clusterView(cluster, finalLeader);
    assert.deepEqual(
      view.members.map((m) => `${m.id}:${m.role}`).sort(),
      targets.map((n) => `${n}:voter`).sort(),
      "the configuration is the two remaining originals and node-4, all voters",
    );
    console.log(
      `acknowledged ${w.acked.length} creates; refused or failed: ${
        JSON.stringify(Object.fromEntries(w.failures))
      }`,
    );
  } catch (error) {
    console.error(await describeCluster(cluster, 40));
    throw error;
  } finally {
    await writer?.stop();
    await stopCluster(cluster);
  }
});
