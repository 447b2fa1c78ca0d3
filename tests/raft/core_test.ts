/**
 * The core's contract with the shell, one behaviour per test.
 */
import { InvariantError, RaftConfigError } from "../../src/raft/errors.ts";
import { sfc32 } from "../../src/prng.ts";
import { RaftNode } from "../../src/raft/raft.ts";
import { MemoryStorage } from "../../src/raft/storage.ts";
import type { Message } from "../../src/raft/types.ts";
import { assert, assertEquals } from "./assert.ts";
import { TestCluster, within } from "./harness.ts";

const data = (s: string) => new TextEncoder().encode(s);
const onlyVotes = (m: Message) => m.type === "vote" || m.type === "voteResp";

Deno.test("a single node elects itself after a timeout and commits its proposals", () => {
  const c = new TestCluster([1], {}, { preVote: true, checkQuorum: true });
  c.tickAll(25);
  assertEquals(c.node(1).status().role, "leader");
  const r = c.node(1).propose(data("x"));
  assert(r.ok);
  c.run();
  assertEquals(c.node(1).status().commit, r.index);
  assertEquals(c.applied.get(1)!.at(-1)?.data, data("x"));
});

Deno.test("a vote leaves only in a Ready that persists it", () => {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.flush();
  const request = c.inFlight.find((m) => m.type === "vote" && m.to === 2)!;
  const voter = c.node(2);
  voter.step(request);
  const rd = voter.ready();
  const answer = rd.messages.find((m) => m.type === "voteResp");
  assert(answer && answer.type === "voteResp" && !answer.reject);
  assertEquals(rd.hardState?.vote, 1, "the vote is in the same Ready as its answer");
  assertEquals(rd.hardState?.term, answer.term);
});

Deno.test("no input between ready() and advance()", () => {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.node(1).ready();
  let threw = false;
  try {
    c.node(1).tick();
  } catch (err) {
    threw = err instanceof InvariantError;
  }
  assert(threw);
});

Deno.test("the leader counts its own entry only once persisted", () => {
  const c = new TestCluster([1]);
  c.campaign(1);
  c.run();
  const r = c.node(1).propose(data("y"));
  assert(r.ok);
  const rd = c.node(1).ready();
  assertEquals(rd.entries.map((e) => e.index), [r.index]);
  assert(rd.committed.every((e) => e.index < r.index), "not committed before it is on disk");
  assertEquals(c.node(1).status().commit < r.index, true);
});

Deno.test("batching: many proposals go out in few messages", () => {
  const c = new TestCluster([1, 2, 3], {}, { maxEntriesPerMsg: 100, maxInflightMsgs: 4 });
  c.campaign(1);
  c.run();
  const before = c.sent.length;
  for (let i = 0; i < 300; i++) c.node(1).propose(data(`p${i}`));
  c.run();
  const apps = c.sent.slice(before).filter((m) => m.type === "app" && m.entries.length > 0);
  assert(apps.length <= 8, `${apps.length} appends for 300 entries to 2 followers`);
  assertEquals(c.node(3).status().commit, c.node(1).status().commit);
});

Deno.test("a follower far behind catches up by snapshot, sent in bounded chunks", () => {
  const c = new TestCluster([1, 2, 3], {}, { snapshotChunkBytes: 8 });
  c.campaign(1);
  c.run();
  for (let i = 0; i < 50; i++) c.node(1).propose(data(`v${i}`));
  c.run(within(1, 2));
  const leaderStorage = c.storages.get(1)!;
  const applied = c.node(1).status().applied;
  leaderStorage.createSnapshot(
    applied,
    c.node(1).status().conf,
    data("state-machine-bytes-0123456789"),
  );
  leaderStorage.compact(applied);
  c.tickAll(3);
  const chunks = c.sent.filter((m) => m.type === "snap");
  assert(chunks.length >= 4, `${chunks.length} chunks`);
  assert(chunks.every((m) => m.type === "snap" && m.data.byteLength <= 8));
  assertEquals(c.storages.get(3)!.snapshot().meta.index, applied);
  assertEquals(c.node(3).status().commit, c.node(1).status().commit);
});

Deno.test("learners catch up, then get promoted; conf changes wait for an own-term commit", () => {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.run(onlyVotes);
  assertEquals(c.node(1).proposeConfChange({ op: "addLearner", node: 4 }), {
    ok: false,
    reason: "noOwnTermCommit",
    leader: 1,
  });
  c.tickAll(1);
  c.addEmptyNode(4);
  assert(c.node(1).proposeConfChange({ op: "addLearner", node: 4 }).ok);
  assertEquals(c.node(1).proposeConfChange({ op: "addVoter", node: 4 }).ok, false, "one at a time");
  c.run();
  assertEquals(c.node(4).status().conf.learners, [4]);
  assertEquals(c.node(4).status().commit, c.node(1).status().commit);
  assert(c.node(1).proposeConfChange({ op: "addVoter", node: 4 }).ok);
  c.run();
  assertEquals(c.node(2).status().conf.voters, [1, 2, 3, 4]);
});

Deno.test("a removed leader steps down once its removal commits", () => {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.run();
  assert(c.node(1).proposeConfChange({ op: "remove", node: 1 }).ok);
  c.run();
  assertEquals(c.node(1).status().role, "follower");
  assertEquals(c.node(2).status().conf.voters, [2, 3]);
});

Deno.test("leadership transfer hands over to a caught-up follower", () => {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.run();
  assert(c.node(1).transferLeadership(3).ok);
  assertEquals(c.node(1).propose(data("z")).ok, false, "proposals wait during a transfer");
  c.run();
  assertEquals(c.node(3).status().role, "leader");
  assertEquals(c.node(1).status().role, "follower");
});

Deno.test("ReadIndex: a new leader answers no read before its own-term commit", () => {
  const c = new TestCluster([1, 2, 3]);
  c.campaign(1);
  c.run();
  c.campaign(3);
  c.run(onlyVotes);
  assertEquals(c.node(3).status().role, "leader");
  assert(c.node(3).readIndex("r1").ok);
  c.flush();
  assertEquals(c.readStates.get(3), [], "no read before the empty entry of term 2 commits");
  c.tickAll(2);
  assertEquals(c.readStates.get(3)!.map((r) => r.ctx), ["r1"]);
  assert(c.readStates.get(3)![0].index >= c.node(3).status().commit - 1);
});

Deno.test("lease reads need check-quorum", () => {
  let threw = false;
  try {
    new RaftNode({
      id: 1,
      storage: new MemoryStorage({ voters: [1], learners: [] }),
      random: sfc32(1),
      checkQuorum: false,
      readMode: "lease",
    });
  } catch (err) {
    threw = err instanceof RaftConfigError;
  }
  assert(threw);
});

Deno.test("check-quorum: a leader that hears from no quorum steps down", () => {
  const c = new TestCluster([1, 2, 3], {}, { checkQuorum: true });
  c.tickAll(12);
  c.campaign(1);
  c.run();
  assertEquals(c.node(1).status().role, "leader");
  for (let i = 0; i < 25; i++) {
    c.node(1).tick();
    c.run(() => false);
  }
  assertEquals(c.node(1).status().role, "follower");
});
