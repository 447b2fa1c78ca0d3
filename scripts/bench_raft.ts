/**
 * Throughput of the consensus core alone: 3 nodes in one process, in-memory storage, messages
 * handed over directly, no I/O. Prints committed entries per second (committed on the leader and
 * applied by every node).
 *
 *   deno task bench:raft [--seconds 5] [--batch 1000] [--bytes 64]
 */
import { parseArgs } from "node:util";
import { sfc32 } from "../src/prng.ts";
import { RaftNode } from "../src/raft/raft.ts";
import { MemoryStorage } from "../src/raft/storage.ts";
import type { Message } from "../src/raft/types.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    batch: { type: "string", default: "1000" },
    bytes: { type: "string", default: "64" },
  },
});
const duration_ms = Number(values.seconds) * 1000;
const batch = Number(values.batch);
const payload = new Uint8Array(Number(values.bytes));

const ids = [1, 2, 3];
const random = sfc32(1);
const storages = new Map(ids.map((id) => [id, new MemoryStorage({ voters: ids, learners: [] })]));
const nodes = new Map(ids.map((id) => [
  id,
  new RaftNode({
    id,
    storage: storages.get(id)!,
    random,
    maxEntriesPerMsg: 4096,
    maxBytesPerMsg: 4 << 20,
    maxInflightMsgs: 16,
  }),
]));
const applied = new Map(ids.map((id) => [id, 0]));
let inbox: Message[] = [];

function drain(): void {
  for (const [id, node] of nodes) {
    while (node.hasReady()) {
      const rd = node.ready();
      const storage = storages.get(id)!;
      if (rd.snapshot) storage.applySnapshot(rd.snapshot);
      storage.append(rd.entries);
      if (rd.hardState) storage.setHardState(rd.hardState);
      for (const m of rd.messages) inbox.push(m);
      if (rd.committed.length > 0) applied.set(id, rd.committed[rd.committed.length - 1].index);
      node.advance();
    }
  }
}

function deliver(): void {
  while (inbox.length > 0) {
    const batchIn = inbox;
    inbox = [];
    for (const m of batchIn) nodes.get(m.to)!.step(m);
    drain();
  }
}

/** Keeps memory flat: snapshot and compact each node's log behind what it applied. */
function compact(): void {
  for (const [id, storage] of storages) {
    const index = applied.get(id)! - 1000;
    if (index > storage.snapshot().meta.index) {
      storage.createSnapshot(index, nodes.get(id)!.status().conf, new Uint8Array(0));
      storage.compact(index);
    }
  }
}

const leader = nodes.get(1)!;
for (let i = 0; i < 30 && leader.status().role !== "leader"; i++) {
  for (const node of nodes.values()) node.tick();
  drain();
  deliver();
}
if (leader.status().role !== "leader") {
  leader.step({ type: "timeoutNow", from: 1, to: 1, term: leader.status().term });
  drain();
  deliver();
}
const start_index = leader.status().commit;
const started = performance.now();
let rounds = 0;
while (performance.now() - started < duration_ms) {
  for (let i = 0; i < batch; i++) leader.propose(payload);
  drain();
  deliver();
  if (++rounds % 20 === 0) {
    for (const node of nodes.values()) node.tick();
    drain();
    deliver();
    compact();
  }
}
const elapsed_s = (performance.now() - started) / 1000;
const committed = Math.min(...applied.values()) - start_index;
console.log(JSON.stringify({
  nodes: 3,
  batch,
  payload_bytes: payload.byteLength,
  seconds: Number(elapsed_s.toFixed(2)),
  committed_entries: committed,
  committed_entries_per_s: Math.round(committed / elapsed_s),
}));
