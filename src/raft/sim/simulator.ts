/**
 * Deterministic simulation of a Raft cluster: 1, 3 or 5 `RaftNode`s, a faulty network, crashing
 * nodes with slow disks, a client that proposes and reads, all driven by one seeded PRNG. Safety
 * is checked at every step; once faults stop, a liveness phase checks that a stable leader emerges
 * and that every pending proposal commits. A failure carries its seed and replays exactly.
 */
import type { RaftConfig } from "../config.ts";
import { InvariantError } from "../errors.ts";
import { decodeConfEntry } from "../membership.ts";
import { randomInt, sfc32 } from "../../prng.ts";
import { RaftNode } from "../raft.ts";
import { MemoryStorage } from "../storage.ts";
import type { ConfState, Entry, Message, NodeId, Ready, Snapshot } from "../types.ts";
import { Network } from "./network.ts";

/** How often each fault happens during the fault phase (probabilities per tick unless noted). */
export interface FaultProfile {
  /** Per message. */
  drop: number;
  /** Per message. */
  duplicate: number;
  delayMax_ticks: number;
  /** Start of a partition (symmetric, one-way, bridge or isolation), when none is active. */
  partition: number;
  partitionMax_ticks: number;
  crash: number;
  restartMax_ticks: number;
  /**
   * Per Ready that persisted something: crash right after the persist, before or after sending
   * (an even chance), and come back within 3 ticks. Fault points around fsync.
   */
  crashAfterPersist: number;
  /** Per Ready: persistence takes 1..persistMax_ticks ticks (a crash meanwhile loses it). */
  slowPersist: number;
  persistMax_ticks: number;
  churn: number;
  snapshot: number;
  transfer: number;
  /** Relative clock rate spread between nodes, percent (below the lease's drift bound). */
  clockDrift_percent: number;
}

export const DEFAULT_FAULTS: FaultProfile = {
  drop: 0.05,
  duplicate: 0.02,
  delayMax_ticks: 3,
  partition: 0.01,
  partitionMax_ticks: 80,
  crash: 0.004,
  restartMax_ticks: 40,
  crashAfterPersist: 0.005,
  slowPersist: 0.1,
  persistMax_ticks: 3,
  churn: 0.01,
  snapshot: 0.01,
  transfer: 0.002,
  clockDrift_percent: 5,
};

export interface SimOptions {
  seed: number;
  nodes: number;
  /** Ticks of the fault phase. */
  faultTicks: number;
  /** Ticks of the liveness phase. */
  livenessTicks: number;
  faults: FaultProfile;
  /** Proposals per tick (expected). */
  proposalRate: number;
  /** Reads per tick (expected). */
  readRate: number;
  /**
   * A partial partition kept through the liveness phase, while a quorum stays fully connected:
   * `cut` severs the leader from one follower both ways, `deaf` lets the leader send but hear
   * nobody; `random` picks one of never, cut and deaf.
   */
  partialPartitionInLiveness: "random" | "never" | "cut" | "deaf";
  raft: Partial<Omit<RaftConfig, "id" | "storage" | "random">>;
  /** Collect a readable trace of every event. */
  trace: boolean;
}

export const DEFAULT_OPTIONS: Omit<SimOptions, "seed"> = {
  nodes: 3,
  faultTicks: 1500,
  livenessTicks: 400,
  faults: DEFAULT_FAULTS,
  proposalRate: 0.5,
  readRate: 0.2,
  partialPartitionInLiveness: "random",
  raft: {
    electionTicks: 10,
    heartbeatTicks: 1,
    maxEntriesPerMsg: 4,
    maxBytesPerMsg: 256,
    maxInflightMsgs: 4,
    snapshotChunkBytes: 24,
  },
  trace: false,
};

export interface SimResult {
  seed: number;
  nodes: number;
  ok: boolean;
  failure?: string;
  ticks: number;
  steps: number;
  faults: Record<string, number>;
  committed: number;
  readsServed: number;
  elections: number;
  trace: string[];
}

/** A simulation stops at the first violation with this error. */
export class SimulationFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SimulationFailure";
  }
}

interface StateMachine {
  applied: number;
  hash: number;
  count: number;
  conf: ConfState;
}

interface SimNode {
  readonly id: NodeId;
  storage: MemoryStorage;
  raft: RaftNode | undefined;
  sm: StateMachine;
  inbox: Message[];
  pendingTicks: number;
  clockRate: number;
  clockAcc: number;
  busyUntil: number;
  pendingReady: Ready | undefined;
  restartAt: number;
  /** Reads made ready here, waiting for the state machine to reach their index. */
  reads: { ctx: string; index: number }[];
  lastCommit: number;
}

interface Command {
  readonly id: number;
  lastAttemptAt: number;
  /** Where the last accepted proposal went; index 0 when none was accepted. */
  attempt: { index: number; term: number };
  ackIndex: number;
}

interface Read {
  readonly ctx: string;
  readonly node: NodeId;
  readonly startedAt: number;
  /** The highest index of any write acknowledged before the read began. */
  readonly mustSee: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function fnv(hash: number, text: string): number {
  let h = hash ^ 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function entryKey(e: Entry): string {
  return e.kind === "normal"
    ? decoder.decode(e.data)
    : e.kind === "noop"
    ? "noop"
    : `conf:${e.data.byteLength}`;
}

/** Runs one seed to completion and reports what happened. Never throws on a violation. */
export function runSimulation(options: SimOptions): SimResult {
  const sim = new Simulation(options);
  return sim.run();
}

class Simulation {
  readonly #rng: () => number;
  readonly #net: Network;
  readonly #nodes: SimNode[] = [];
  #now = 0;
  #steps = 0;
  readonly #faultCounts: Record<string, number> = {
    partitions: 0,
    crashes: 0,
    slowPersists: 0,
    churn: 0,
    snapshots: 0,
    transfers: 0,
  };
  readonly #traceLines: string[] = [];
  #partitionEndsAt = -1;
  #inLiveness = false;

  // Checker state.
  readonly #leaderOfTerm = new Map<number, NodeId>();
  readonly #entryByIndexTerm = new Map<string, { prevTerm: number; key: string }>();
  readonly #appliedAt = new Map<number, { term: number; key: string; hash: number }>();
  #maxApplied = 0;
  #elections = 0;

  // Client state.
  readonly #commands = new Map<number, Command>();
  #nextCommand = 1;
  readonly #reads = new Map<string, Read>();
  #nextRead = 1;
  #maxAckedIndex = 0;
  #readsServed = 0;

  #leaderHistory: { at: number; leader: NodeId; term: number }[] = [];

  readonly #opt: SimOptions;

  constructor(opt: SimOptions) {
    this.#opt = opt;
    this.#rng = sfc32(opt.seed);
    this.#net = new Network(this.#rng, {
      drop: opt.faults.drop,
      duplicate: opt.faults.duplicate,
      delayMin_ticks: 1,
      delayMax_ticks: opt.faults.delayMax_ticks,
      reorder: true,
    });
    const voters = Array.from({ length: opt.nodes }, (_, i) => i + 1);
    for (const id of voters) {
      const conf: ConfState = { voters, learners: [] };
      const node: SimNode = {
        id,
        storage: new MemoryStorage(conf),
        raft: undefined,
        sm: { applied: 0, hash: 0, count: 0, conf },
        inbox: [],
        pendingTicks: 0,
        clockRate: 1,
        clockAcc: 0,
        busyUntil: 0,
        pendingReady: undefined,
        restartAt: 0,
        reads: [],
        lastCommit: 0,
      };
      this.#nodes.push(node);
      this.#start(node);
    }
  }

  run(): SimResult {
    let failure: string | undefined;
    const total = this.#opt.faultTicks + this.#opt.livenessTicks;
    try {
      for (this.#now = 1; this.#now <= total; this.#now++) {
        if (this.#now === this.#opt.faultTicks + 1) this.#enterLiveness();
        this.#tickOnce();
        if (this.#inLiveness) this.#checkLivenessProgress();
      }
      this.#checkLivenessEnd();
    } catch (err) {
      if (err instanceof SimulationFailure || err instanceof InvariantError) {
        failure = `${err.name}: ${err.message}`;
        this.#trace(`FAILURE ${failure}`);
      } else {
        throw err;
      }
    }
    return {
      seed: this.#opt.seed,
      nodes: this.#opt.nodes,
      ok: failure === undefined,
      failure,
      ticks: Math.min(this.#now, total),
      steps: this.#steps,
      faults: {
        ...this.#faultCounts,
        dropped: this.#net.counters.dropped,
        duplicated: this.#net.counters.duplicated,
        blocked: this.#net.counters.blocked,
      },
      committed: this.#maxApplied,
      readsServed: this.#readsServed,
      elections: this.#elections,
      trace: this.#traceLines,
    };
  }

  // ------------------------------------------------------------ the loop

  #tickOnce(): void {
    if (!this.#inLiveness) this.#injectFaults();
    for (const m of this.#net.due(this.#now)) {
      const node = this.#nodes[m.to - 1];
      if (node.raft) node.inbox.push(m);
    }
    for (const node of this.#nodes) {
      if (!node.raft) {
        if (this.#now >= node.restartAt) this.#start(node);
        continue;
      }
      node.clockAcc += node.clockRate;
      while (node.clockAcc >= 1) {
        node.clockAcc -= 1;
        node.pendingTicks++;
      }
    }
    this.#client();
    for (const node of this.#nodes) this.#process(node);
    this.#checkLeaders();
  }

  #process(node: SimNode): void {
    const raft = node.raft;
    if (!raft) return;
    if (node.pendingReady) {
      if (this.#now < node.busyUntil) return;
      const rd = node.pendingReady;
      node.pendingReady = undefined;
      this.#complete(node, rd);
      if (node.raft !== raft) return;
    }
    for (; node.pendingTicks > 0; node.pendingTicks--) {
      this.#steps++;
      raft.tick();
    }
    const inbox = node.inbox;
    node.inbox = [];
    for (const m of inbox) {
      this.#steps++;
      if (this.#opt.trace) this.#trace(`deliver ${describe(m)}`);
      raft.step(m);
    }
    for (let round = 0; round < 8 && node.raft === raft && raft.hasReady(); round++) {
      const rd = raft.ready();
      this.#steps++;
      this.#onReady(node, rd);
      if (!this.#inLiveness && this.#rng() < this.#opt.faults.slowPersist) {
        this.#faultCounts.slowPersists++;
        node.busyUntil = this.#now + randomInt(this.#rng, 1, this.#opt.faults.persistMax_ticks);
        node.pendingReady = rd;
        return;
      }
      this.#complete(node, rd);
    }
  }

  /** Checks run when a Ready is taken (its contents are the node's decisions). */
  #onReady(node: SimNode, rd: Ready): void {
    const status = node.raft!.status();
    if (status.commit < node.lastCommit) {
      throw new SimulationFailure(
        `n${node.id} commit went back from ${node.lastCommit} to ${status.commit}`,
      );
    }
    node.lastCommit = status.commit;
    if (rd.softState && this.#opt.trace) {
      this.#trace(
        `n${node.id} is ${rd.softState.role} (leader n${rd.softState.leader}, term ${status.term})`,
      );
    }
  }

  /** Persist, then send, then apply, then advance: the order `Ready` prescribes. */
  #complete(node: SimNode, rd: Ready): void {
    const raft = node.raft!;
    if (rd.snapshot) {
      // The log and the state machine take the snapshot in one atomic step (one transaction in
      // the shell), so a crash cannot leave one without the other.
      node.storage.applySnapshot(rd.snapshot);
      this.#installSnapshot(node, rd.snapshot);
    }
    if (rd.entries.length > 0) {
      this.#checkLogMatching(node, rd.entries);
      node.storage.append(rd.entries);
    }
    if (rd.hardState) {
      if (rd.hardState.commit < node.storage.hardStateNow().commit) {
        throw new SimulationFailure(`n${node.id} persisted commit goes back`);
      }
      node.storage.setHardState(rd.hardState);
    }
    const persisted = rd.hardState !== undefined || rd.entries.length > 0 ||
      rd.snapshot !== undefined;
    if (!this.#inLiveness && persisted && this.#rng() < this.#opt.faults.crashAfterPersist) {
      const afterSend = this.#rng() < 0.5;
      if (afterSend) { for (const m of rd.messages) this.#net.send(m, this.#now); }
      this.#trace(
        `n${node.id} crashes after persisting, ${afterSend ? "after" : "before"} sending`,
      );
      this.#crash(node, 3);
      return;
    }
    for (const m of rd.messages) this.#net.send(m, this.#now);
    for (const e of rd.committed) this.#apply(node, e);
    for (const rs of rd.readStates) node.reads.push(rs);
    this.#serveReads(node);
    raft.advance();
  }

  #start(node: SimNode): void {
    const drift = this.#opt.faults.clockDrift_percent / 100;
    node.clockRate = 1 - drift + this.#rng() * 2 * drift;
    node.clockAcc = 0;
    node.inbox = [];
    node.pendingTicks = 0;
    node.pendingReady = undefined;
    node.busyUntil = 0;
    node.reads = [];
    node.raft = new RaftNode({
      ...this.#opt.raft,
      id: node.id,
      storage: node.storage,
      random: this.#rng,
      appliedIndex: node.sm.applied,
    });
    node.lastCommit = node.raft.status().commit;
    this.#trace(`n${node.id} starts (term ${node.raft.status().term}, applied ${node.sm.applied})`);
  }

  #crash(node: SimNode, restartMax_ticks = this.#opt.faults.restartMax_ticks): void {
    node.raft = undefined;
    node.pendingReady = undefined;
    node.inbox = [];
    node.reads = [];
    node.restartAt = this.#now + randomInt(this.#rng, 1, restartMax_ticks);
    this.#faultCounts.crashes++;
    this.#trace(`n${node.id} crashes, restarts at ${node.restartAt}`);
  }

  // ------------------------------------------------------------ faults

  #injectFaults(): void {
    const f = this.#opt.faults;
    const n = this.#opt.nodes;
    if (this.#partitionEndsAt >= 0 && this.#now >= this.#partitionEndsAt) {
      this.#net.healAll();
      this.#partitionEndsAt = -1;
      this.#trace("partition heals");
    }
    if (n > 1 && this.#partitionEndsAt < 0 && this.#rng() < f.partition) this.#partition();
    if (n > 1 && this.#rng() < f.crash) {
      const alive = this.#nodes.filter((x) => x.raft);
      if (alive.length > 0) this.#crash(alive[Math.floor(this.#rng() * alive.length)]);
    }
    if (n > 1 && this.#rng() < f.churn) this.#churn();
    if (this.#rng() < f.snapshot) this.#snapshot();
    if (n > 1 && this.#rng() < f.transfer) this.#transfer();
  }

  #partition(): void {
    const ids = this.#shuffledIds();
    const kind = Math.floor(this.#rng() * 4);
    let what: string;
    if (kind === 0) {
      const cut = randomInt(this.#rng, 1, Math.floor(ids.length / 2));
      this.#net.split(ids.slice(0, cut), ids.slice(cut));
      what = `split ${ids.slice(0, cut)} | ${ids.slice(cut)}`;
    } else if (kind === 1) {
      this.#net.block(ids[0], ids[1]);
      what = `one-way ${ids[0]}↛${ids[1]}`;
    } else if (kind === 2 && ids.length >= 3) {
      const bridge = ids[0];
      const rest = ids.slice(1);
      const half = Math.ceil(rest.length / 2);
      this.#net.split(rest.slice(0, half), rest.slice(half));
      what = `bridge n${bridge} between ${rest.slice(0, half)} and ${rest.slice(half)}`;
    } else {
      const leader = this.#currentLeader();
      const target = leader ? leader.id : ids[0];
      for (const other of ids) if (other !== target) this.#net.block(other, target);
      what = `n${target} hears nobody`;
    }
    this.#partitionEndsAt = this.#now +
      randomInt(this.#rng, 5, this.#opt.faults.partitionMax_ticks);
    this.#faultCounts.partitions++;
    this.#trace(`partition: ${what} until ${this.#partitionEndsAt}`);
  }

  #churn(): void {
    const leader = this.#currentLeader();
    if (!leader?.raft || leader.pendingReady) return;
    const conf = leader.raft.status().conf;
    const all = this.#nodes.map((x) => x.id);
    const missing = all.filter((id) => !conf.voters.includes(id) && !conf.learners.includes(id));
    let change;
    if (missing.length > 0) change = { op: "addLearner" as const, node: missing[0] };
    else if (conf.learners.length > 0) change = { op: "addVoter" as const, node: conf.learners[0] };
    else if (conf.voters.length === this.#opt.nodes) {
      change = {
        op: "remove" as const,
        node: conf.voters[Math.floor(this.#rng() * conf.voters.length)],
      };
    }
    if (!change) return;
    const result = leader.raft.proposeConfChange(change);
    if (result.ok) {
      this.#faultCounts.churn++;
      this.#trace(`n${leader.id} proposes ${change.op} n${change.node} at ${result.index}`);
    }
  }

  #snapshot(): void {
    const candidates = this.#nodes.filter((x) =>
      x.raft && !x.pendingReady && x.sm.applied > x.storage.snapshot().meta.index
    );
    if (candidates.length === 0) return;
    const node = candidates[Math.floor(this.#rng() * candidates.length)];
    const data = encoder.encode(JSON.stringify(node.sm));
    node.storage.createSnapshot(node.sm.applied, node.sm.conf, data);
    const keep = randomInt(this.#rng, 0, 8);
    node.storage.compact(Math.max(node.storage.firstIndex() - 1, node.sm.applied - keep));
    this.#faultCounts.snapshots++;
    this.#trace(
      `n${node.id} snapshots at ${node.sm.applied}, log from ${node.storage.firstIndex()}`,
    );
  }

  #transfer(): void {
    const leader = this.#currentLeader();
    if (!leader?.raft || leader.pendingReady) return;
    const voters = leader.raft.status().conf.voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const to = voters[Math.floor(this.#rng() * voters.length)];
    if (leader.raft.transferLeadership(to).ok) {
      this.#faultCounts.transfers++;
      this.#trace(`n${leader.id} transfers leadership to n${to}`);
    }
  }

  #enterLiveness(): void {
    this.#inLiveness = true;
    this.#net.healAll();
    this.#partitionEndsAt = -1;
    this.#net.faults = {
      drop: 0,
      duplicate: 0,
      delayMin_ticks: 1,
      delayMax_ticks: 1,
      reorder: false,
    };
    for (const node of this.#nodes) if (!node.raft) this.#start(node);
    let mode = this.#opt.partialPartitionInLiveness;
    if (mode === "random") mode = (["never", "cut", "deaf"] as const)[Math.floor(this.#rng() * 3)];
    let what = "none";
    if (mode !== "never" && this.#opt.nodes >= 3 && this.#fullMembership()) {
      const ids = this.#shuffledIds();
      const target = this.#currentLeader()?.id ?? ids[0];
      if (mode === "cut") {
        const other = ids.find((id) => id !== target)!;
        this.#net.split([target], [other]);
        what = `cut n${target}–n${other}`;
      } else {
        for (const other of ids) if (other !== target) this.#net.block(other, target);
        what = `n${target} hears nobody`;
      }
    }
    this.#trace(`liveness phase: faults stop; stable partial partition: ${what}`);
  }

  /** Every node sees every node as a voter: a partial partition then leaves a connected quorum. */
  #fullMembership(): boolean {
    return this.#nodes.every((x) => x.raft?.status().conf.voters.length === this.#opt.nodes);
  }

  // ------------------------------------------------------------ the client

  #client(): void {
    const livenessQuiet = this.#inLiveness &&
      this.#now > this.#opt.faultTicks + this.#opt.livenessTicks - 150;
    if (!livenessQuiet && this.#rng() < this.#opt.proposalRate) {
      const id = this.#nextCommand++;
      this.#commands.set(id, {
        id,
        lastAttemptAt: -Infinity,
        attempt: { index: 0, term: 0 },
        ackIndex: 0,
      });
    }
    let budget = 4;
    for (const cmd of this.#commands.values()) {
      if (budget === 0) break;
      if (cmd.ackIndex !== 0 || !this.#shouldRetry(cmd)) continue;
      budget--;
      const target = this.#clientTarget();
      if (!target?.raft) break;
      cmd.lastAttemptAt = this.#now;
      const r = target.raft.propose(encoder.encode(`c${cmd.id}`));
      if (r.ok) {
        cmd.attempt = { index: r.index, term: r.term };
        if (this.#opt.trace) {
          this.#trace(`client: c${cmd.id} to n${target.id} at ${r.index}/${r.term}`);
        }
      }
    }
    if (this.#rng() < this.#opt.readRate) {
      const target = this.#clientTarget();
      if (target?.raft) {
        const ctx = `r${this.#nextRead++}`;
        if (target.raft.readIndex(ctx).ok) {
          this.#reads.set(ctx, {
            ctx,
            node: target.id,
            startedAt: this.#now,
            mustSee: this.#maxAckedIndex,
          });
          if (this.#opt.trace) {
            this.#trace(`client: read ${ctx} at n${target.id}, must see ${this.#maxAckedIndex}`);
          }
        }
      }
    }
  }

  /**
   * A client retries a proposal that was refused, that lost its slot to another entry, or that
   * waited long while leadership moved on (it may then commit twice: commands are not deduplicated).
   */
  #shouldRetry(cmd: Command): boolean {
    if (cmd.attempt.index === 0) return this.#now - cmd.lastAttemptAt >= 2;
    const applied = this.#appliedAt.get(cmd.attempt.index);
    if (applied) return applied.term !== cmd.attempt.term;
    const leader = this.#currentLeader()?.raft?.status();
    const retry_ticks = 4 * (this.#opt.raft.electionTicks ?? 10);
    return leader !== undefined && leader.term > cmd.attempt.term &&
      this.#now - cmd.lastAttemptAt >= retry_ticks;
  }

  /** The node a client talks to: usually the newest leader, sometimes anyone. Busy nodes wait. */
  #clientTarget(): SimNode | undefined {
    const pick = this.#rng() < 0.9
      ? this.#currentLeader()
      : this.#nodes[Math.floor(this.#rng() * this.#nodes.length)];
    return pick && pick.raft && !pick.pendingReady ? pick : undefined;
  }

  #currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.#nodes) {
      const s = node.raft?.status();
      if (s && s.role === "leader" && s.term > bestTerm) {
        best = node;
        bestTerm = s.term;
      }
    }
    return best;
  }

  #serveReads(node: SimNode): void {
    const waiting: { ctx: string; index: number }[] = [];
    for (const rs of node.reads) {
      if (node.sm.applied < rs.index) {
        waiting.push(rs);
        continue;
      }
      const read = this.#reads.get(rs.ctx);
      if (!read) continue;
      this.#reads.delete(rs.ctx);
      this.#readsServed++;
      // Linearizability of reads: the read index covers every write acknowledged before the
      // read began, so the state served (applied ≥ read index) contains them all.
      if (rs.index < read.mustSee) {
        throw new SimulationFailure(
          `stale read ${rs.ctx} at n${node.id}: read index ${rs.index} < ${read.mustSee}, ` +
            `acknowledged before the read began at tick ${read.startedAt}`,
        );
      }
    }
    node.reads = waiting;
  }

  // ------------------------------------------------------------ apply and checks

  #apply(node: SimNode, e: Entry): void {
    const sm = node.sm;
    if (e.index !== sm.applied + 1) {
      throw new SimulationFailure(`n${node.id} applies ${e.index} after ${sm.applied}`);
    }
    const key = entryKey(e);
    sm.applied = e.index;
    sm.hash = fnv(sm.hash, `${e.index}:${e.term}:${key}`);
    if (e.kind === "normal") sm.count++;
    if (e.kind === "conf") sm.conf = decodeConfEntry(e).conf;
    const seen = this.#appliedAt.get(e.index);
    if (seen) {
      if (seen.term !== e.term || seen.key !== key || seen.hash !== sm.hash) {
        throw new SimulationFailure(
          `n${node.id} applies ${key} (term ${e.term}) at ${e.index}; another node applied ` +
            `${seen.key} (term ${seen.term})`,
        );
      }
    } else {
      this.#appliedAt.set(e.index, { term: e.term, key, hash: sm.hash });
      this.#maxApplied = Math.max(this.#maxApplied, e.index);
    }
    if (e.kind === "normal") {
      const cmd = this.#commands.get(Number(key.slice(1)));
      if (cmd && cmd.ackIndex === 0) {
        cmd.ackIndex = e.index;
        this.#maxAckedIndex = Math.max(this.#maxAckedIndex, e.index);
      }
    }
  }

  #installSnapshot(node: SimNode, snap: Snapshot): void {
    const state = JSON.parse(decoder.decode(snap.data)) as StateMachine;
    if (state.applied !== snap.meta.index) {
      throw new SimulationFailure(
        `snapshot data at ${state.applied} ≠ meta index ${snap.meta.index}`,
      );
    }
    if (state.applied <= node.sm.applied) {
      throw new SimulationFailure(
        `n${node.id} installs snapshot ${state.applied} ≤ applied ${node.sm.applied}`,
      );
    }
    const seen = this.#appliedAt.get(state.applied);
    if (seen && seen.hash !== state.hash) {
      throw new SimulationFailure(
        `n${node.id} installs a snapshot whose state differs at ${state.applied}`,
      );
    }
    node.sm = { ...state, conf: snap.meta.conf };
    this.#trace(`n${node.id} installs snapshot at ${snap.meta.index}`);
  }

  /**
   * Log matching (§5.3), checked inductively: every (index, term) ever persisted anywhere carries
   * the same command and follows the same previous term, so equal (index, term) means equal prefixes.
   */
  #checkLogMatching(node: SimNode, entries: readonly Entry[]): void {
    const first = entries[0].index;
    const storage = node.storage;
    let prevTerm: number | undefined;
    if (first - 1 >= storage.firstIndex() - 1 && first - 1 <= storage.lastIndex()) {
      prevTerm = storage.term(first - 1);
    }
    for (const e of entries) {
      const k = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const seen = this.#entryByIndexTerm.get(k);
      if (seen) {
        if (
          seen.key !== key ||
          (prevTerm !== undefined && seen.prevTerm !== prevTerm && seen.prevTerm >= 0)
        ) {
          throw new SimulationFailure(`log matching violated at ${k} on n${node.id}`);
        }
      } else {
        this.#entryByIndexTerm.set(k, { prevTerm: prevTerm ?? -1, key });
      }
      prevTerm = e.term;
    }
  }

  /** At most one leader per term (§5.2), and leader completeness (§5.4) when one is elected. */
  #checkLeaders(): void {
    for (const node of this.#nodes) {
      const raft = node.raft;
      if (!raft) continue;
      const s = raft.status();
      if (s.role !== "leader") continue;
      const known = this.#leaderOfTerm.get(s.term);
      if (known === s.id) continue;
      if (known !== undefined) {
        throw new SimulationFailure(`two leaders in term ${s.term}: n${known} and n${s.id}`);
      }
      this.#leaderOfTerm.set(s.term, s.id);
      this.#elections++;
      this.#leaderHistory.push({ at: this.#now, leader: s.id, term: s.term });
      this.#trace(`n${s.id} elected leader of term ${s.term}`);
      for (let i = Math.max(s.firstIndex, 1); i <= this.#maxApplied; i++) {
        const committed = this.#appliedAt.get(i);
        if (committed && raft.termAt(i) !== committed.term) {
          throw new SimulationFailure(
            `leader completeness: n${s.id} (term ${s.term}) lacks committed entry ${i}/${committed.term}`,
          );
        }
      }
    }
  }

  // ------------------------------------------------------------ liveness

  #checkLivenessProgress(): void {
    const bound_ticks = 12 * (this.#opt.raft.electionTicks ?? 10);
    if (this.#now === this.#opt.faultTicks + bound_ticks && !this.#currentLeader()) {
      throw new SimulationFailure(`liveness: no leader ${bound_ticks} ticks after faults stopped`);
    }
  }

  #checkLivenessEnd(): void {
    if (this.#opt.livenessTicks === 0) return;
    const end = this.#opt.faultTicks + this.#opt.livenessTicks;
    const pending = [...this.#commands.values()].filter((c) => c.ackIndex === 0);
    if (pending.length > 0) {
      throw new SimulationFailure(
        `liveness: ${pending.length} proposals never committed (first c${pending[0].id})`,
      );
    }
    const half = end - Math.floor(this.#opt.livenessTicks / 2);
    const changes = this.#leaderHistory.filter((h) => h.at > half);
    if (changes.length > 0) {
      throw new SimulationFailure(
        `liveness: leadership still changing late in the liveness phase (n${changes[0].leader} ` +
          `elected in term ${changes[0].term} at tick ${changes[0].at})`,
      );
    }
  }

  // ------------------------------------------------------------ helpers

  #shuffledIds(): NodeId[] {
    const ids = this.#nodes.map((x) => x.id);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(this.#rng() * (i + 1));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    return ids;
  }

  #trace(line: string): void {
    if (this.#opt.trace) this.#traceLines.push(`t=${this.#now} ${line}`);
  }
}

/** One line per message, for traces. */
export function describe(m: Message): string {
  const head = `n${m.from}→n${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "vote":
    case "preVote":
      return `${head} last=${m.lastIndex}/${m.lastTerm}${m.transfer ? " transfer" : ""}`;
    case "voteResp":
    case "preVoteResp":
      return `${head} ${m.reject ? "rejected" : "granted"}`;
    case "app":
      return `${head} prev=${m.prevIndex}/${m.prevTerm} n=${m.entries.length} commit=${m.commit}`;
    case "appResp":
      return `${head} ${
        m.reject ? `reject ${m.index} hint=${m.hintIndex}/${m.hintTerm}` : `ok ${m.index}`
      }`;
    case "heartbeat":
      return `${head} commit=${m.commit}${m.ctx ? ` ctx=${m.ctx}` : ""}`;
    case "heartbeatResp":
      return `${head}${m.ctx ? ` ctx=${m.ctx}` : ""}`;
    case "snap":
      return `${head} snapshot ${m.meta.index}/${m.meta.term} bytes ${m.offset}+${m.data.byteLength}/${m.totalBytes}`;
    case "snapResp":
      return `${head} snapshot ${m.index} ${m.done ? "installed" : `next ${m.nextOffset}`}`;
    case "timeoutNow":
      return head;
  }
}
