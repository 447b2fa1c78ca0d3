/**
 * The situations of the Raft paper's figures 7 and 8, as scripts.
 */
import { RaftNode } from "../../src/raft/raft.ts";
import type { Message } from "../../src/raft/types.ts";
import { assert, assertEquals } from "./assert.ts";
import { brokenCore } from "./broken_core.ts";
import { TestCluster, within } from "./harness.ts";

Deno.test("figure 7: a new leader brings every follower's log in line with its own", () => {
  // Figure 7: the leader of term 8 (node 1) and followers (a)–(f) with missing, extra and
  // conflicting entries. Indexes 1..12, one term per entry.
  const c = new TestCluster([1, 2, 3, 4, 5, 6, 7], {
    1: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], term: 7 },
    2: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6] }, // (a) missing one entry
    3: { terms: [1, 1, 1, 4] }, // (b) missing many
    4: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6] }, // (c) one extra entry of term 6
    5: { terms: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7] }, // (d) extra entries of term 7
    6: { terms: [1, 1, 1, 4, 4, 4, 4] }, // (e) missing, and conflicting term 4 entries
    7: { terms: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3] }, // (f) conflicting terms 2 and 3
  });
  c.campaign(1);
  c.run();
  assertEquals(c.node(1).status().role, "leader");
  assertEquals(c.node(1).status().term, 8);
  const leaderLog = c.logTerms(1);
  assertEquals(leaderLog, [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8]);
  for (const id of [2, 3, 4, 5, 6, 7]) assertEquals(c.logTerms(id), leaderLog, `follower ${id}`);
  // The empty entry of term 8 commits, and with it everything before (§5.4.2).
  assertEquals(c.node(1).status().commit, 11);
  // Fast backtracking: (f) needs one rejection per conflicting term, not one per entry.
  const rejectsFromF = c.sent.filter((m) => m.type === "appResp" && m.from === 7 && m.reject);
  assert(rejectsFromF.length <= 3, `(f) rejected ${rejectsFromF.length} times`);
});

/**
 * Figure 8, with node ids S1..S5 = 1..5. In (c) S1, leader of term 4, has replicated the entry of
 * term 2 at index 2 to a majority; it must not count that as committed, because in (d) S5 can still
 * win term 5 and overwrite it. Only once an entry of term 4 sits on a majority (e) is index 2 safe.
 * `core` is the `RaftNode` class to run: the real one, or a broken core's.
 */
function figure8(core: typeof RaftNode = RaftNode) {
  const c = new TestCluster(
    [1, 2, 3, 4, 5],
    {
      1: { terms: [1, 2], term: 3, commit: 1 }, // (a) S1 led term 2 and appended index 2
      2: { terms: [1], term: 3, commit: 1 },
      3: { terms: [1], term: 3, commit: 1 },
      4: { terms: [1], term: 3, commit: 1 },
      5: { terms: [1, 3], term: 4, commit: 1 }, // (b) S5 led term 3 and appended index 2
    },
    { maxEntriesPerMsg: 1 },
    core,
  );
  // (c) S1 wins term 4 with S2 and S3 (S4 and S5 are down) and copies index 2 to them, but its
  // own entry of term 4 (index 3) does not get out before it crashes.
  c.campaign(1);
  // The network carries index 3 only where it will be rejected (the follower lacks index 2).
  const index3Lost = (m: Message) =>
    within(1, 2, 3)(m) &&
    !(m.type === "app" && m.entries.some((e) => e.index >= 3) &&
      c.node(m.to).termAt(m.prevIndex) === m.prevTerm);
  c.run(index3Lost);
  c.tickAll(3, index3Lost);
  return c;
}

Deno.test("figure 8 (c)-(d): an old term's entry on a majority is not committed by counting", () => {
  const c = figure8();
  assertEquals(c.node(1).status().role, "leader");
  assertEquals(c.node(1).status().term, 4);
  for (const id of [1, 2, 3]) {
    assertEquals(c.node(id).termAt(2), 2, `S${id} holds index 2 of term 2`);
  }
  assertEquals(c.node(1).status().commit, 1, "index 2 is on a majority but must not be committed");
  // (d) S1 crashes; S5 wins term 5 with S2, S3, S4 and overwrites index 2 everywhere: allowed,
  // since index 2 was never committed.
  c.inFlight = [];
  c.campaign(5);
  c.run(within(2, 3, 4, 5));
  assertEquals(c.node(5).status().role, "leader");
  for (const id of [2, 3, 4, 5]) assertEquals(c.node(id).termAt(2), 3);
});

Deno.test("figure 8 (e): once an entry of the current term is on a majority, index 2 commits", () => {
  const c = figure8();
  c.run(within(1, 2, 3)); // index 3 (term 4) now reaches S2 and S3
  c.tickAll(1, within(1, 2, 3));
  assertEquals(c.node(1).status().commit, 3);
  // S5 can no longer win: S2 and S3 hold a later last term than S5's.
  c.campaign(5);
  c.run(within(2, 3, 4, 5));
  assert(c.node(5).status().role !== "leader");
});

Deno.test("figure 8 on a core that commits by counting: an old entry is lost once applied", async () => {
  await using broken = await brokenCore("commitPreviousTermByCount");
  const c = figure8(broken.raft.RaftNode);
  assertEquals(c.node(1).status().commit, 2, "the buggy leader commits index 2 by counting");
  assertEquals(c.applied.get(1)!.at(-1)?.index, 2, "and applies it");
  c.inFlight = [];
  c.campaign(5);
  c.run(within(2, 3, 4, 5));
  // S5 leads term 5 without the entry S1 applied at index 2: leader completeness (§5.4) is
  // broken, the violation the simulator reports.
  assertEquals(c.node(5).status().role, "leader");
  assertEquals(c.applied.get(1)!.at(-1)?.term, 2);
  assertEquals(c.node(5).termAt(2), 3);
});
