/**
 * A hand-driven cluster for scenario tests: every node persists to its own `MemoryStorage`, and
 * messages move only when a test says so, through a filter that plays the network.
 */
import type { RaftConfig } from "../../src/raft/config.ts";
import { sfc32 } from "../../src/prng.ts";
import { RaftNode } from "../../src/raft/raft.ts";
import { MemoryStorage } from "../../src/raft/storage.ts";
import type { Entry, Message, NodeId, ReadState } from "../../src/raft/types.ts";

export type Filter = (m: Message) => boolean;

export const everything: Filter = () => true;

export interface NodeSetup {
  /** Terms of the entries at indexes 1, 2, … */
  terms?: number[];
  term?: number;
  commit?: number;
}

export class TestCluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Messages sent and not yet delivered or dropped. */
  inFlight: Message[] = [];
  /** Every message ever sent, for assertions about what went over the wire. */
  readonly sent: Message[] = [];
  /** The `RaftNode` class the nodes are made of: the real one, or a broken core's. */
  readonly #core: typeof RaftNode;

  constructor(
    ids: NodeId[],
    setup: Record<NodeId, NodeSetup> = {},
    readonly options: Partial<RaftConfig> = {},
    core: typeof RaftNode = RaftNode,
  ) {
    this.#core = core;
    const random = sfc32(7);
    for (const id of ids) {
      const storage = new MemoryStorage({ voters: ids, learners: [] });
      const s = setup[id] ?? {};
      const terms = s.terms ?? [];
      storage.append(terms.map((term, i) => entry(i + 1, term)));
      storage.setHardState({
        term: s.term ?? terms[terms.length - 1] ?? 0,
        vote: 0,
        commit: s.commit ?? 0,
      });
      this.storages.set(id, storage);
      this.applied.set(id, []);
      this.readStates.set(id, []);
      this.nodes.set(
        id,
        new core({ preVote: false, checkQuorum: false, ...options, id, storage, random }),
      );
    }
  }

  node(id: NodeId): RaftNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  /** Adds a node with empty storage (a new learner joining). */
  addEmptyNode(id: NodeId): void {
    const storage = new MemoryStorage();
    this.storages.set(id, storage);
    this.applied.set(id, []);
    this.readStates.set(id, []);
    this.nodes.set(
      id,
      new this.#core({
        preVote: false,
        checkQuorum: false,
        ...this.options,
        id,
        storage,
        random: sfc32(9),
      }),
    );
  }

  /** Makes `id` start an election now (the way TimeoutNow does). */
  campaign(id: NodeId): void {
    const node = this.node(id);
    node.step({ type: "timeoutNow", from: id, to: id, term: node.status().term });
  }

  /** Runs every node's Ready cycle: persist, then queue its messages, then apply. */
  flush(): void {
    for (const [id, node] of this.nodes) {
      while (node.hasReady()) {
        const rd = node.ready();
        const storage = this.storages.get(id)!;
        if (rd.snapshot) storage.applySnapshot(rd.snapshot);
        storage.append(rd.entries);
        if (rd.hardState) storage.setHardState(rd.hardState);
        this.inFlight.push(...rd.messages);
        this.sent.push(...rd.messages);
        this.applied.get(id)!.push(...rd.committed);
        this.readStates.get(id)!.push(...rd.readStates);
        node.advance();
      }
    }
  }

  /** Delivers in-flight messages that pass `filter` (dropping the rest) until none are left. */
  run(filter: Filter = everything, rounds_max = 1000): void {
    this.flush();
    for (let round = 0; round < rounds_max && this.inFlight.length > 0; round++) {
      const batch = this.inFlight;
      this.inFlight = [];
      for (const m of batch) if (filter(m) && this.nodes.has(m.to)) this.node(m.to).step(m);
      this.flush();
    }
  }

  tickAll(ticks: number, filter: Filter = everything): void {
    for (let i = 0; i < ticks; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.run(filter);
    }
  }

  /** The terms of `id`'s log from its first index. */
  logTerms(id: NodeId): number[] {
    const s = this.node(id).status();
    const out: number[] = [];
    for (let i = s.firstIndex; i <= s.lastIndex; i++) out.push(this.node(id).termAt(i)!);
    return out;
  }
}

export function entry(index: number, term: number, kind: Entry["kind"] = "normal"): Entry {
  return { index, term, kind, data: new TextEncoder().encode(`e${index}/${term}`) };
}

/** Only messages between members of `group`. */
export function within(...group: NodeId[]): Filter {
  return (m) => group.includes(m.from) && group.includes(m.to);
}
