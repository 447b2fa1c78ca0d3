/**
 * The replicated log: the scheduler's `CommandLog` over the pure Raft core. One loop drives the
 * core (etcd's raft shell pattern): it feeds ticks, messages and proposals in, and for each
 * `Ready` persists the log (one transaction, one fsync), sends messages, applies committed
 * entries to the node's state machine (one transaction), and calls `advance()`.
 *
 * Proposals that arrive while a round is being persisted wait and go into the next round as one
 * entry (group commit). A proposal resolves when its entry is applied, with the results of its
 * commands; if leadership is lost before that, it rejects with `NotLeaderError` (the outcome is
 * then unknown: the entry may still commit under the next leader, which idempotency keys make
 * safe to retry).
 *
 * Entry data is JSON: `{"c": Command[][]}` (proposals, each applied in order) or `{"m": member}`
 * (the replicated address book of the cluster's nodes).
 */
import type { InStatement } from "@libsql/client/node";
import type { Database } from "../db/open.ts";
import type { Logger } from "../logger.ts";
import { InvariantError } from "../raft/errors.ts";
import type { ConfChange } from "../raft/membership.ts";
import { decodeConfEntry } from "../raft/membership.ts";
import { type ProposeResult, RaftNode, type Status } from "../raft/raft.ts";
import type { ConfState, Entry, Message, NodeId, Ready } from "../raft/types.ts";
import {
  type CommandLog,
  LogFailedError,
  LogRefusedError,
  NotLeaderError,
} from "../log/command_log.ts";
import type { LogObserver } from "../log/local_log.ts";
import { type Proposal, ProposalQueue } from "../log/proposal_queue.ts";
import type { ApplyResult, StateMachine, TypedCommand } from "../log/state_machine.ts";
import { decodeEntryData, encodeEntryData, type EntryData, type Member } from "./entry_codec.ts";
import type { SqliteRaftStorage } from "./raft_storage.ts";
import type { FaultHook } from "../faults.ts";

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

export interface RaftLogOptions<C extends TypedCommand, E> {
  id: NodeId;
  storage: SqliteRaftStorage;
  /** The node's state machine, which committed commands are applied to. */
  machine: StateMachine<C, E>;
  /** The state machine's tables; the applied index is stored with them. */
  stateDb: Database;
  send: (messages: readonly Message[]) => void;
  random: () => number;
  tick_ms: number;
  election_ticks: number;
  heartbeat_ticks: number;
  /** Most commands in one entry (the group commit bound). */
  batch_max: number;
  /** Most commands waiting to be proposed; more get `LogOverloadedError`. */
  queue_max: number;
  /** A snapshot of the state is taken after this many applied entries. */
  snapshot_every_entries: number;
  logger: Logger;
  observer?: LogObserver;
  /** The state machine's snapshot: bytes of its tables at the applied index. */
  takeSnapshot: () => Promise<Uint8Array>;
  /** Replaces the state machine's tables with a snapshot's bytes and reloads it. */
  installSnapshot: (data: Uint8Array) => Promise<void>;
  /** Called after every round (role, leader, commit or applied index may have moved). */
  onStatus?: () => void;
  onMembers?: (members: ReadonlyMap<NodeId, Member>) => void;
  /** Called once when the loop stops on an error; the node must stop. */
  onFatal?: (error: Error) => void;
  /** Test-only fault injection at `raft.round`. */
  fault?: FaultHook;
}

/** Proposal entries in flight (appended, not yet applied) before new proposals wait. */
const UNCOMMITTED_ENTRIES_MAX = 2;

export class ReplicatedLog<C extends TypedCommand, E> implements CommandLog<C, E> {
  readonly node: RaftNode;
  readonly #o: RaftLogOptions<C, E>;
  #applied_index: number;
  #ticks = 0;
  #inbox: Message[] = [];
  readonly #queue: ProposalQueue<C>;
  #pending = new Map<number, { term: number; proposals: Proposal<C>[] }>();
  #reads = new Map<string, Waiter<void>>();
  #readIndexes: { ctx: string; index: number }[] = [];
  #calls: { run: () => void; reject: (error: Error) => void }[] = [];
  #listeners: ((effects: E[]) => void)[] = [];
  #members = new Map<NodeId, Member>();
  #status: Status;
  #wake: (() => void) | null = null;
  #running = false;
  #stopped: Promise<void> = Promise.resolve();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #failed: Error | null = null;
  #snapshot_index: number;
  #conf: ConfState;
  #read_counter = 0;

  constructor(options: RaftLogOptions<C, E>, applied_index: number, members: Member[]) {
    this.#o = options;
    this.#queue = new ProposalQueue(options.queue_max, (n) => options.observer?.queued(n));
    this.#applied_index = applied_index;
    this.node = new RaftNode({
      id: options.id,
      storage: options.storage,
      random: options.random,
      appliedIndex: applied_index,
      electionTicks: options.election_ticks,
      heartbeatTicks: options.heartbeat_ticks,
    });
    for (const m of members) this.#members.set(m.id, m);
    this.#status = this.node.status();
    this.#conf = this.#status.conf;
    this.#snapshot_index = options.storage.snapshot().meta.index;
  }

  /** Starts ticking and processing. */
  start(): void {
    this.#running = true;
    this.#ticker = setInterval(() => {
      this.#ticks++;
      this.#kick();
    }, this.#o.tick_ms);
    this.#stopped = this.#loop();
    this.#o.onMembers?.(this.#members);
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#ticker);
    this.#kick();
    await this.#stopped;
    this.#rejectAll(new LogFailedError("the node is stopping"));
  }

  get applied_index(): number {
    return this.#applied_index;
  }

  get queued_commands(): number {
    return this.#queue.queued_commands;
  }

  /** The core's view: role, leader, term, commit, applied, configuration. */
  status(): Status {
    return this.#status;
  }

  /** The replicated address book. */
  get members(): ReadonlyMap<NodeId, Member> {
    return this.#members;
  }

  /** The current configuration (voters and learners). */
  get conf(): ConfState {
    return this.#conf;
  }

  /** Leader now, and its loop runs (a failed log leads nothing). */
  isLeader(): boolean {
    return this.#failed === null && this.#status.role === "leader";
  }

  /** Leader whose term has a committed entry: it knows the commit index and may fire. */
  canFire(): boolean {
    const s = this.#status;
    return this.#failed === null && s.role === "leader" &&
      this.node.termAt(s.commit) === s.term;
  }

  onEffects(listener: (effects: E[]) => void): () => void {
    this.#listeners.push(listener);
    return () => this.#listeners = this.#listeners.filter((l) => l !== listener);
  }

  /**
   * Adds addresses learned outside the log (the join answer) for members this node does not
   * know yet; the replicated address book replaces them as the node catches up.
   */
  learnMembers(members: readonly Member[]): void {
    let added = false;
    for (const m of members) {
      if (this.#members.has(m.id)) continue;
      this.#members.set(m.id, m);
      added = true;
    }
    if (added) this.#o.onMembers?.(this.#members);
  }

  /** Hands messages from peers to the core. */
  receive(messages: readonly Message[]): void {
    if (!this.#running) return;
    for (const m of messages) this.#inbox.push(m);
    this.#kick();
  }

  propose(commands: C[]): Promise<ApplyResult[]> {
    if (this.#failed !== null) {
      return Promise.reject(new LogFailedError(`storage failed: ${this.#failed.message}`));
    }
    if (!this.isLeader()) return Promise.reject(this.#notLeader());
    try {
      this.#o.machine.check(commands);
    } catch (error) {
      return Promise.reject(error);
    }
    const queued = this.#queue.push(commands);
    this.#kick();
    return queued;
  }

  /**
   * Waits until this node may serve a linearizable read: it is the leader, a quorum confirmed it
   * after the read began, and its state has applied the commit index of that moment (ReadIndex,
   * thesis §6.4).
   */
  readBarrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#call(() => {
        const ctx = `${this.#o.id}-${++this.#read_counter}`;
        const result = this.node.readIndex(ctx);
        if (!result.ok) reject(this.#refusal(result));
        else this.#reads.set(ctx, { resolve, reject });
      }, reject);
    });
  }

  /** Proposes a membership change; resolves once it is applied. */
  changeMembership(change: ConfChange): Promise<void> {
    return this.#proposeSpecial((node) => node.proposeConfChange(change));
  }

  /** Replicates an address book entry (before the node is added to the configuration). */
  setMember(member: Member): Promise<void> {
    let data: Uint8Array;
    try {
      data = encodeEntryData({ m: member });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#proposeSpecial((node) => node.propose(data));
  }

  /** Asks the core to hand leadership to `to`. */
  transferLeadership(to: NodeId): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#call(() => {
        const result = this.node.transferLeadership(to);
        if (result.ok) resolve();
        else reject(this.#refusal(result));
      }, reject);
    });
  }

  #proposeSpecial(make: (node: RaftNode) => ProposeResult): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#call(() => {
        const result = make(this.node);
        if (!result.ok) {
          reject(this.#refusal(result));
          return;
        }
        this.#pending.set(result.index, {
          term: result.term,
          proposals: [{ commands: [], resolve: () => resolve(), reject }],
        });
      }, reject);
    });
  }

  #refusal(result: Extract<ProposeResult, { ok: false }>): Error {
    if (result.reason === "notLeader") return this.#notLeader();
    return new ClusterRefusalError(result.reason);
  }

  #notLeader(): NotLeaderError {
    const leader = this.#members.get(this.#status.leader);
    return new NotLeaderError(
      leader === undefined
        ? "this node is not the leader and no leader is known yet; retry shortly"
        : `this node is not the leader; the leader is ${leader.name} at ${leader.address}`,
      leader?.name ?? null,
      leader?.address ?? null,
    );
  }

  /**
   * Runs `run` inside the loop, between rounds (the core takes no calls while a Ready is out);
   * `reject` is called instead when the loop has stopped or stops before running it.
   */
  #call(run: () => void, reject: (error: Error) => void): void {
    if (this.#failed !== null || !this.#running) {
      reject(new LogFailedError("the Raft loop has stopped"));
      return;
    }
    this.#calls.push({ run, reject });
    this.#kick();
  }

  #kick(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #loop(): Promise<void> {
    while (this.#running && this.#failed === null) {
      try {
        this.#feed();
        if (!this.node.hasReady()) {
          await new Promise<void>((resolve) => this.#wake = resolve);
          continue;
        }
        await this.#round(this.node.ready());
      } catch (error) {
        this.#fail(error as Error);
      }
    }
  }

  #feed(): void {
    for (; this.#ticks > 0; this.#ticks--) this.node.tick();
    const messages = this.#inbox;
    this.#inbox = [];
    for (const m of messages) this.node.step(m);
    const calls = this.#calls;
    this.#calls = [];
    for (const call of calls) call.run();
    if (!this.#queue.empty) this.#proposeQueued();
  }

  #proposeQueued(): void {
    if (this.node.status().role !== "leader") {
      this.#queue.rejectAll(this.#notLeader());
      return;
    }
    // Group commit across the network: while entries are on their way to a quorum, new
    // proposals wait and go out together as one entry when one commits.
    if (this.#pending.size >= UNCOMMITTED_ENTRIES_MAX) return;
    while (!this.#queue.empty && this.#pending.size < UNCOMMITTED_ENTRIES_MAX) {
      const batch = this.#queue.take(this.#o.batch_max);
      const data: EntryData<C> = { c: batch.map((p) => p.commands) };
      let encoded: Uint8Array;
      try {
        encoded = encodeEntryData(data);
      } catch (error) {
        for (const p of batch) p.reject(error as Error);
        continue;
      }
      const result = this.node.propose(encoded);
      if (!result.ok) {
        const error = this.#refusal(result);
        for (const p of batch) p.reject(error);
        continue;
      }
      this.#pending.set(result.index, { term: result.term, proposals: batch });
    }
  }

  async #round(rd: Ready): Promise<void> {
    this.#o.fault?.("raft.round");
    const started_ms = performance.now();
    await this.#o.storage.persist(rd);
    if (rd.messages.length > 0) this.#o.send(rd.messages);
    if (rd.snapshot !== undefined && rd.snapshot.meta.index > this.#applied_index) {
      await this.#o.installSnapshot(rd.snapshot.data);
      this.#applied_index = rd.snapshot.meta.index;
      this.#snapshot_index = rd.snapshot.meta.index;
      this.#conf = rd.snapshot.meta.conf;
      await this.#loadMembers();
      this.#o.logger.info("snapshot installed", {
        index: rd.snapshot.meta.index,
        bytes: rd.snapshot.data.byteLength,
      });
    }
    const commands = rd.committed.length > 0 ? await this.#apply(rd.committed) : 0;
    for (const rs of rd.readStates) this.#readIndexes.push(rs);
    this.node.advance();
    const before = this.#status;
    this.#status = this.node.status();
    this.#conf = this.#status.conf;
    if (before.role !== this.#status.role || before.leader !== this.#status.leader) {
      this.#o.logger.info("raft role", {
        role: this.#status.role,
        term: this.#status.term,
        leader: this.#members.get(this.#status.leader)?.name ?? this.#status.leader,
      });
      if (this.#status.role !== "leader") this.#failPending(this.#notLeader());
    }
    this.#o.onStatus?.();
    this.#serveReads();
    if (rd.committed.length > 0) {
      this.#o.observer?.committed(
        commands,
        performance.now() - started_ms,
        this.#applied_index,
      );
      await this.#maybeSnapshot();
    }
  }

  /** Applies committed entries in one state transaction; returns the commands applied. */
  async #apply(entries: readonly Entry[]): Promise<number> {
    let commands = 0;
    const statements: InStatement[] = [];
    const effects: E[] = [];
    const resolutions: (() => void)[] = [];
    let membersChanged = false;
    for (const entry of entries) {
      const pending = this.#pending.get(entry.index);
      if (pending !== undefined) this.#pending.delete(entry.index);
      const mine = pending !== undefined && pending.term === entry.term ? pending : undefined;
      if (pending !== undefined && mine === undefined) {
        for (const p of pending.proposals) p.reject(this.#notLeader());
      }
      if (entry.kind === "conf") {
        this.#conf = decodeConfEntry(entry).conf;
        if (mine !== undefined) resolutions.push(() => mine.proposals[0].resolve([]));
        continue;
      }
      if (entry.kind !== "normal") continue;
      let data: EntryData<C>;
      try {
        data = decodeEntryData(entry.data, (c) => this.#o.machine.check(c));
      } catch (error) {
        // Deterministic: every node refuses the same bytes, at every replay.
        this.#o.logger.error("a committed entry does not decode; no node applies it", {
          index: entry.index,
          error: (error as Error).message,
        });
        for (const p of mine?.proposals ?? []) resolutions.push(() => p.reject(error as Error));
        continue;
      }
      if ("m" in data) {
        this.#members.set(data.m.id, data.m);
        statements.push({
          sql:
            "INSERT INTO members (id, name, address) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address",
          args: [data.m.id, data.m.name, data.m.address],
        });
        membersChanged = true;
        if (mine !== undefined) resolutions.push(() => mine.proposals[0].resolve([]));
        continue;
      }
      data.c.forEach((proposed, i) => {
        commands += proposed.length;
        const results = proposed.map((command) => {
          const applied = this.#o.machine.apply(command);
          statements.push(...applied.statements);
          effects.push(...applied.effects);
          return applied.result;
        });
        const proposal = mine?.proposals[i];
        if (proposal !== undefined) resolutions.push(() => proposal.resolve(results));
      });
    }
    const last = entries[entries.length - 1].index;
    statements.push({
      sql:
        "INSERT INTO meta (key, value) VALUES ('applied_index', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      args: [String(last)],
    });
    await this.#o.stateDb.write(statements);
    this.#applied_index = last;
    for (const resolve of resolutions) resolve();
    if (membersChanged) this.#o.onMembers?.(this.#members);
    if (effects.length > 0) { for (const listener of this.#listeners) listener(effects); }
    return commands;
  }

  async #loadMembers(): Promise<void> {
    const rows = await this.#o.stateDb.client.execute("SELECT id, name, address FROM members");
    this.#members.clear();
    for (const row of rows.rows) {
      this.#members.set(Number(row.id), {
        id: Number(row.id),
        name: String(row.name),
        address: String(row.address),
      });
    }
    this.#o.onMembers?.(this.#members);
  }

  #serveReads(): void {
    if (this.#readIndexes.length === 0) return;
    const waiting: { ctx: string; index: number }[] = [];
    for (const rs of this.#readIndexes) {
      if (rs.index > this.#applied_index) {
        waiting.push(rs);
        continue;
      }
      this.#reads.get(rs.ctx)?.resolve();
      this.#reads.delete(rs.ctx);
    }
    this.#readIndexes = waiting;
  }

  async #maybeSnapshot(): Promise<void> {
    if (this.#applied_index - this.#snapshot_index < this.#o.snapshot_every_entries) return;
    const index = this.#applied_index;
    const term = this.node.termAt(index);
    if (term === undefined) return;
    const data = await this.#o.takeSnapshot();
    await this.#o.storage.compact({ index, term, conf: this.#conf }, data);
    this.#snapshot_index = index;
    this.#o.logger.info("snapshot taken", { index, bytes: data.byteLength });
  }

  #failPending(error: Error): void {
    for (const { proposals } of this.#pending.values()) for (const p of proposals) p.reject(error);
    this.#pending.clear();
    for (const waiter of this.#reads.values()) waiter.reject(error);
    this.#reads.clear();
    this.#readIndexes = [];
  }

  #rejectAll(error: Error): void {
    this.#failPending(error);
    this.#queue.rejectAll(error);
    for (const call of this.#calls) call.reject(error);
    this.#calls = [];
  }

  #fail(error: Error): void {
    this.#failed = error;
    this.#running = false;
    clearInterval(this.#ticker);
    const what = error instanceof InvariantError ? "raft invariant violated" : "raft log failed";
    this.#o.logger.error(`${what}; the node stops`, { error: error.message });
    this.#rejectAll(new LogFailedError(`${what}: ${error.message}`));
    this.#o.onFatal?.(error);
  }
}

/** The core refused a cluster operation (a change pending, a learner behind, …). */
export class ClusterRefusalError extends LogRefusedError {
  constructor(readonly reason: string) {
    super(REFUSALS[reason] ?? `refused: ${reason}`);
  }
}

const REFUSALS: Record<string, string> = {
  transferring: "a leadership transfer is under way; retry shortly",
  confChangePending: "another membership change is not committed yet; retry shortly",
  noOwnTermCommit: "the new leader has not committed an entry of its term yet; retry shortly",
  invalidConfChange: "that membership change does not fit the current configuration",
  learnerBehind: "the learner has not caught up with the log yet; retry shortly",
  tooManyReads: "too many linearizable reads are waiting; retry shortly",
};
