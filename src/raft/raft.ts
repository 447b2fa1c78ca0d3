/**
 * The Raft consensus core: a deterministic state machine in the style of etcd-io/raft.
 *
 * Inputs: `tick()` (the only clock), `step(message)`, and client calls (`propose`, `readIndex`,
 * `proposeConfChange`, `transferLeadership`). Output: one `Ready` value at a time, which the shell
 * persists, sends and applies before calling `advance()`. The core does no I/O, reads no clock and
 * draws randomness only from the injected `random`.
 *
 * Between `ready()` and `advance()` the node takes no input: everything that arrives meanwhile
 * waits, and goes out in the next `Ready` as one batch (group commit for free).
 *
 * Section references: "§" is the Raft paper (Ongaro & Ousterhout, 2014); "thesis §" is Ongaro's
 * dissertation (2014).
 */
import { leaseTicks, type RaftConfig, resolveConfig, type ResolvedConfig } from "./config.ts";
import { assert } from "./errors.ts";
import { RaftLog } from "./entry_log.ts";
import {
  applyConfChange,
  type ConfChange,
  confChangeError,
  decodeConfEntry,
  encodeConfEntry,
  quorumMatchIndex,
  quorumSize,
} from "./membership.ts";
import { Progress } from "./progress.ts";
import {
  type AppendRequest,
  type AppendResponse,
  type ConfState,
  type Entry,
  type HardState,
  type Heartbeat,
  type HeartbeatResponse,
  type Message,
  type NodeId,
  NONE,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotChunk,
  type SnapshotResponse,
  type SoftState,
  type VoteRequest,
  type VoteResponse,
} from "./types.ts";

/** The answer to a client call: accepted (with where the entry went), or why not. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: RejectReason; readonly leader: NodeId };

export type RejectReason =
  | "notLeader"
  | "transferring"
  | "confChangePending"
  | "noOwnTermCommit"
  | "invalidConfChange"
  | "learnerBehind"
  | "tooManyReads";

/** A snapshot of the node's state for the shell's status pages and the simulator's checks. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly conf: ConfState;
}

interface PendingRead {
  readonly ctx: string;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

interface SnapshotAssembly {
  readonly meta: Snapshot["meta"];
  readonly totalBytes: number;
  readonly chunks: Uint8Array[];
  bytes: number;
}

const EMPTY = new Uint8Array(0);

export class RaftNode {
  readonly id: NodeId;
  readonly #cfg: ResolvedConfig;
  readonly #log: RaftLog;

  #term = 0;
  #vote: NodeId = NONE;
  #role: Role = "follower";
  #leader: NodeId = NONE;

  #conf: ConfState;
  /** Configuration of the log's base (snapshot) and of each conf entry after it, in log order. */
  #baseConf: ConfState;
  #confEntries: { index: number; conf: ConfState }[] = [];

  #progress = new Map<NodeId, Progress>();
  #votes = new Map<NodeId, boolean>();

  #tickCount = 0;
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTicks = 0;

  #transferee: NodeId = NONE;
  #transferElapsed = 0;
  /** The term in which this leader sent TimeoutNow: no lease reads for the rest of it. */
  #leaseForfeitTerm = 0;

  #pendingReads: PendingRead[] = [];
  #readsAwaitingOwnTermCommit: string[] = [];
  #readStates: ReadState[] = [];

  #msgs: Message[] = [];
  #needsAppendFlush = false;
  #snapshotAssembly: SnapshotAssembly | undefined;

  #prevHardState: HardState;
  #prevSoftState: SoftState;
  #outstanding: Ready | undefined;

  constructor(config: RaftConfig) {
    this.#cfg = resolveConfig(config);
    this.id = this.#cfg.id;
    const storage = this.#cfg.storage;
    const { hardState, conf } = storage.initialState();
    const snapshotIndex = storage.firstIndex() - 1;
    const applied = Math.max(this.#cfg.appliedIndex, snapshotIndex);
    assert(
      applied <= hardState.commit || applied === snapshotIndex,
      `applied index ${applied} is beyond the persisted commit ${hardState.commit}`,
    );
    this.#log = new RaftLog(storage, Math.max(hardState.commit, applied), applied);
    this.#term = hardState.term;
    this.#vote = hardState.vote;
    this.#baseConf = conf;
    this.#conf = conf;
    this.#loadConfEntries();
    this.#prevHardState = hardState;
    this.#prevSoftState = { leader: NONE, role: "follower" };
    this.#resetElectionTimer();
  }

  // ---------------------------------------------------------------- inputs

  /** One clock tick (thesis §3.4: all timing is counted in ticks). */
  tick(): void {
    this.#assertNoReadyOutstanding();
    this.#tickCount++;
    if (this.#role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /** Takes one message from a peer. */
  step(m: Message): void {
    this.#assertNoReadyOutstanding();
    if (m.to !== this.id) return;
    if (m.term > this.#term) {
      if ((m.type === "vote" || m.type === "preVote") && !m.transfer && this.#inLease()) {
        // thesis §4.2.3: a server that heard from a current leader within the minimum election
        // timeout does not grant (or even look at) votes, so removed or partitioned servers
        // cannot disrupt the cluster.
        return;
      }
      if (m.type === "preVote") {
        // A pre-vote carries a future term; it does not change ours (thesis §9.6).
      } else if (m.type === "preVoteResp" && !m.reject) {
        // A granted pre-vote echoes the future term we asked with.
      } else {
        const fromLeader = m.type === "app" || m.type === "heartbeat" || m.type === "snap";
        this.#becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.#term) {
      if (
        (this.#cfg.checkQuorum || this.#cfg.preVote) && (m.type === "app" || m.type === "heartbeat")
      ) {
        // Tell a stale leader about the newer term; with pre-vote or check-quorum it might
        // otherwise never learn it, because nobody with a higher term campaigns against it.
        this.#send<AppendResponse>({
          type: "appResp",
          from: this.id,
          to: m.from,
          term: this.#term,
          reject: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === "preVote") {
        this.#send<VoteResponse>({
          type: "preVoteResp",
          from: this.id,
          to: m.from,
          term: this.#term,
          reject: true,
        });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.#handleVoteRequest(m);
      return;
    }
    switch (this.#role) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "preCandidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
    }
  }

  /** Appends a client command (leader only). Committed once a majority holds it (§5.3). */
  propose(data: Uint8Array): ProposeResult {
    this.#assertNoReadyOutstanding();
    const refusal = this.#refuseProposal();
    if (refusal) return refusal;
    return this.#appendOwn("normal", data);
  }

  /** Proposes one membership change (see membership.ts for the rules). */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.#assertNoReadyOutstanding();
    const refusal = this.#refuseProposal();
    if (refusal) return refusal;
    if (!this.#committedInOwnTerm()) return this.#reject("noOwnTermCommit");
    if (this.#lastConfIndex() > this.#log.committed) return this.#reject("confChangePending");
    if (confChangeError(this.#conf, change) !== undefined) return this.#reject("invalidConfChange");
    if (change.op === "addVoter") {
      const pr = this.#progress.get(change.node);
      if (!pr || pr.match + this.#cfg.learnerCatchUpEntries < this.#log.committed) {
        return this.#reject("learnerBehind");
      }
    }
    const conf = applyConfChange(this.#conf, change);
    return this.#appendOwn("conf", encodeConfEntry({ change, conf }));
  }

  /**
   * Asks for a linearizable read (thesis §6.4). When `ctx` appears in `Ready.readStates` with an
   * index, the shell serves the read once its state machine has applied that index.
   */
  readIndex(ctx: string): ProposeResult {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader") return this.#reject("notLeader");
    const queued = this.#pendingReads.length + this.#readsAwaitingOwnTermCommit.length;
    if (queued >= this.#cfg.maxPendingReads) return this.#reject("tooManyReads");
    if (!this.#committedInOwnTerm()) {
      // thesis §6.4 step 1: a new leader does not know the commit index until it has committed
      // an entry of its term (its empty entry); reads wait for that.
      this.#readsAwaitingOwnTermCommit.push(ctx);
    } else {
      this.#startRead(ctx);
    }
    return { ok: true, index: this.#log.committed, term: this.#term };
  }

  /** Hands leadership to `to` (thesis §3.10); refused proposals meanwhile. */
  transferLeadership(to: NodeId): ProposeResult {
    this.#assertNoReadyOutstanding();
    if (this.#role !== "leader") return this.#reject("notLeader");
    if (to === this.id || !this.#conf.voters.includes(to)) return this.#reject("invalidConfChange");
    this.#transferee = to;
    this.#transferElapsed = 0;
    const pr = this.#progress.get(to);
    assert(pr !== undefined, `no progress for voter ${to}`);
    if (pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(to);
    else this.#sendAppend(to, true);
    return { ok: true, index: this.#log.lastIndex(), term: this.#term };
  }

  // ---------------------------------------------------------------- output

  /** Whether `ready()` has anything. */
  hasReady(): boolean {
    if (this.#outstanding) return false;
    return this.#msgs.length > 0 || this.#needsAppendFlush || this.#log.hasUnstable() ||
      this.#log.hasNextCommitted() || this.#readStates.length > 0 || this.#hardStateChanged() ||
      this.#softStateChanged();
  }

  /** What to persist, send and apply now (see `Ready`). Call `advance()` when done. */
  ready(): Ready {
    this.#assertNoReadyOutstanding();
    this.#flushAppends();
    assert(this.#log.committed <= this.#log.lastIndex(), "commit ≤ last index");
    assert(this.#log.applied <= this.#log.committed, "applied ≤ commit");
    const unstable = this.#log.unstable();
    const entries = unstable.entries;
    const storageLast = this.#log.storage.lastIndex();
    const hardState = this.#hardState();
    const softState: SoftState = { leader: this.#leader, role: this.#role };
    const rd: Ready = {
      softState: this.#softStateChanged() ? softState : undefined,
      hardState: this.#hardStateChanged() ? hardState : undefined,
      snapshot: unstable.snapshot,
      truncateFrom: entries.length > 0 && entries[0].index <= storageLast
        ? entries[0].index
        : undefined,
      entries,
      messages: this.#msgs,
      committed: this.#log.nextCommitted(this.#cfg.maxApplyBytes),
      readStates: this.#readStates,
    };
    this.#msgs = [];
    this.#readStates = [];
    this.#outstanding = rd;
    return rd;
  }

  /** The shell has persisted, sent and applied the last `Ready`. */
  advance(): void {
    const rd = this.#outstanding;
    assert(rd !== undefined, "advance() without ready()");
    this.#outstanding = undefined;
    if (rd.entries.length > 0 || rd.snapshot) this.#log.stableAll();
    if (rd.committed.length > 0) {
      const last = rd.committed[rd.committed.length - 1].index;
      assert(last > this.#log.applied, "applied index goes forward");
      this.#log.applied = last;
    }
    if (rd.hardState) this.#prevHardState = rd.hardState;
    if (rd.softState) this.#prevSoftState = rd.softState;
    if (this.#role === "leader") {
      // The leader's own log counts toward a majority only once it is on disk, like anyone's.
      const self = this.#progress.get(this.id);
      if (self && self.maybeUpdate(this.#log.stableLastIndex()) && this.#maybeCommit()) {
        this.#bcastAppend();
      }
    }
  }

  // ---------------------------------------------------------------- queries

  status(): Status {
    return {
      id: this.id,
      role: this.#role,
      leader: this.#leader,
      term: this.#term,
      vote: this.#vote,
      commit: this.#log.committed,
      applied: this.#log.applied,
      firstIndex: this.#log.firstIndex(),
      lastIndex: this.#log.lastIndex(),
      conf: this.#conf,
    };
  }

  /**
   * On a leader, what it knows of each member's log (match index, next index, progress state);
   * empty on other roles. For status pages and choosing a transfer target.
   */
  replication(): ReadonlyMap<NodeId, { match: number; next: number; state: string }> {
    const out = new Map<NodeId, { match: number; next: number; state: string }>();
    if (this.#role !== "leader") return out;
    for (const [id, pr] of this.#progress) {
      out.set(id, { match: pr.match, next: pr.next, state: pr.state });
    }
    return out;
  }

  /** The term of entry `index` in this node's log, or undefined if compacted or absent. */
  termAt(index: number): number | undefined {
    return this.#log.term(index);
  }

  // ---------------------------------------------------------------- roles

  #becomeFollower(term: number, leader: NodeId): void {
    this.#setTerm(term);
    this.#role = "follower";
    this.#leader = leader;
    this.#resetRoleState();
  }

  #becomePreCandidate(): void {
    // thesis §9.6: no term change and no vote; only the role.
    this.#role = "preCandidate";
    this.#leader = NONE;
    this.#resetRoleState();
  }

  #becomeCandidate(): void {
    this.#setTerm(this.#term + 1);
    this.#vote = this.id;
    this.#role = "candidate";
    this.#leader = NONE;
    this.#resetRoleState();
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "only a candidate becomes leader");
    this.#role = "leader";
    this.#leader = this.id;
    this.#resetRoleState();
    const last = this.#log.lastIndex();
    for (const id of [...this.#conf.voters, ...this.#conf.learners]) {
      const pr = new Progress(
        last + 1,
        this.#conf.learners.includes(id),
        this.#cfg.maxInflightMsgs,
      );
      pr.recentActive = true;
      this.#progress.set(id, pr);
    }
    const self = this.#ensureSelfProgress();
    self.match = this.#log.stableLastIndex();
    self.becomeReplicate();
    // §5.4.2 / thesis §6.4: the empty entry lets the leader commit, and so learn the commit
    // index, in its own term.
    this.#appendOwn("noop", EMPTY);
  }

  #resetRoleState(): void {
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#resetElectionTimer();
    this.#votes.clear();
    this.#transferee = NONE;
    this.#transferElapsed = 0;
    this.#pendingReads = [];
    this.#readsAwaitingOwnTermCommit = [];
    this.#needsAppendFlush = false;
    if (this.#role !== "leader") this.#progress.clear();
  }

  #setTerm(term: number): void {
    assert(term >= this.#term, `term goes back from ${this.#term} to ${term}`);
    if (term > this.#term) {
      this.#term = term;
      this.#vote = NONE;
    }
  }

  #resetElectionTimer(): void {
    // §5.2: randomized timeouts in [T, 2T) make split votes rare.
    const jitter = Math.floor(this.#cfg.random() * this.#cfg.electionTicks);
    this.#randomizedElectionTicks = this.#cfg.electionTicks + jitter;
  }

  // ---------------------------------------------------------------- ticks

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTicks) {
      this.#electionElapsed = 0;
      this.#campaign(this.#cfg.preVote ? "pre" : "real", false);
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#cfg.electionTicks) {
      this.#electionElapsed = 0;
      // thesis §6.2: a leader that heard from no quorum for an election timeout steps down,
      // so clients can find the real leader and its reads cannot go stale.
      if (this.#cfg.checkQuorum && !this.#quorumActive()) {
        this.#becomeFollower(this.#term, NONE);
        return;
      }
    }
    if (this.#transferee !== NONE && ++this.#transferElapsed >= this.#cfg.electionTicks) {
      this.#transferee = NONE;
    }
    if (this.#heartbeatElapsed >= this.#cfg.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      const last = this.#pendingReads[this.#pendingReads.length - 1];
      this.#bcastHeartbeat(last ? last.ctx : "");
    }
  }

  #quorumActive(): boolean {
    let active = 0;
    for (const id of this.#conf.voters) {
      const pr = this.#progress.get(id);
      if (id === this.id || pr?.recentActive) active++;
    }
    for (const [id, pr] of this.#progress) {
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= quorumSize(this.#conf.voters.length);
  }

  /** Whether a follower heard from a leader within the election timeout (thesis §4.2.3). */
  #inLease(): boolean {
    if (!this.#cfg.checkQuorum) return false;
    // A restarted node cannot know whether it acknowledged a leader just before it crashed, so
    // it keeps out of elections for a first election timeout (this keeps leader leases sound).
    if (this.#tickCount < this.#cfg.electionTicks) return true;
    return this.#leader !== NONE && this.#electionElapsed < this.#cfg.electionTicks;
  }

  // ---------------------------------------------------------------- elections

  #campaign(kind: "pre" | "real", transfer: boolean): void {
    if (!this.#promotable()) return;
    if (kind === "pre") this.#becomePreCandidate();
    else this.#becomeCandidate();
    const voteTerm = kind === "pre" ? this.#term + 1 : this.#term;
    this.#votes.set(this.id, true);
    if (this.#tallyVotes() === "won") {
      if (kind === "pre") this.#campaign("real", false);
      else this.#becomeLeader();
      return;
    }
    for (const id of this.#conf.voters) {
      if (id === this.id) continue;
      this.#send<VoteRequest>({
        type: kind === "pre" ? "preVote" : "vote",
        from: this.id,
        to: id,
        term: voteTerm,
        lastIndex: this.#log.lastIndex(),
        lastTerm: this.#log.lastTerm(),
        transfer,
      });
    }
  }

  #handleVoteRequest(m: VoteRequest): void {
    const pre = m.type === "preVote";
    // §5.2, §5.4.1: one vote per term, and only for a log at least as up to date as ours.
    const canVote = this.#vote === m.from || (this.#vote === NONE && this.#leader === NONE) ||
      (pre && m.term > this.#term);
    const grant = canVote && this.#log.isUpToDate(m.lastIndex, m.lastTerm);
    this.#send<VoteResponse>({
      type: pre ? "preVoteResp" : "voteResp",
      from: this.id,
      to: m.from,
      term: grant ? m.term : this.#term,
      reject: !grant,
    });
    if (grant && !pre) {
      assert(this.#vote === NONE || this.#vote === m.from, `second vote in term ${this.#term}`);
      this.#electionElapsed = 0;
      // The vote reaches the hard state of this Ready, so it is on disk before the answer leaves
      // (§5.1 Figure 2).
      this.#vote = m.from;
    }
  }

  #tallyVotes(): "won" | "lost" | "pending" {
    let granted = 0;
    let rejected = 0;
    for (const id of this.#conf.voters) {
      const v = this.#votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = quorumSize(this.#conf.voters.length);
    if (granted >= q) return "won";
    if (this.#conf.voters.length - rejected < q) return "lost";
    return "pending";
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case "app":
      case "heartbeat":
      case "snap":
        // §5.2: a candidate that hears from a leader of its term returns to follower.
        this.#becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        return;
      case "voteResp":
      case "preVoteResp": {
        const mine = (m.type === "preVoteResp") === (this.#role === "preCandidate");
        if (!mine) return;
        this.#votes.set(m.from, !m.reject);
        const result = this.#tallyVotes();
        if (result === "won") {
          if (this.#role === "preCandidate") this.#campaign("real", false);
          else this.#becomeLeader();
        } else if (result === "lost") {
          this.#becomeFollower(this.#term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  #promotable(): boolean {
    return this.#conf.voters.includes(this.id) && this.#log.unstable().snapshot === undefined;
  }

  // ---------------------------------------------------------------- follower

  #stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleAppend(m);
        return;
      case "heartbeat":
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleHeartbeat(m);
        return;
      case "snap":
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleSnapshotChunk(m);
        return;
      case "timeoutNow":
        // thesis §3.10: start an election now, past pre-vote and the leader lease.
        this.#campaign("real", true);
        return;
      default:
        return;
    }
  }

  #handleAppend(m: AppendRequest): void {
    const reply = (reject: boolean, index: number, hintIndex = 0, hintTerm = 0) =>
      this.#send<AppendResponse>({
        type: "appResp",
        from: this.id,
        to: m.from,
        term: this.#term,
        reject,
        index,
        hintIndex,
        hintTerm,
      });
    if (m.prevIndex < this.#log.committed) {
      reply(false, this.#log.committed);
      return;
    }
    if (!this.#log.matchTerm(m.prevIndex, m.prevTerm)) {
      // §5.3: reject, with a hint that lets the leader skip every entry of a conflicting term.
      const hint = this.#log.findConflictByTerm(
        Math.min(m.prevIndex, this.#log.lastIndex()),
        m.prevTerm,
      );
      reply(true, m.prevIndex, hint.index, hint.term);
      return;
    }
    const lastNew = m.prevIndex + m.entries.length;
    let conflict: number | undefined;
    for (const entry of m.entries) {
      if (!this.#log.matchTerm(entry.index, entry.term)) {
        conflict = entry.index;
        break;
      }
    }
    if (conflict !== undefined) {
      assert(conflict > this.#log.committed, `leader overwrites committed entry ${conflict}`);
      this.#appendToLog(m.entries.slice(conflict - m.prevIndex - 1));
    }
    // §5.3 receiver step 5: commit up to the last entry this message vouches for.
    this.#log.commitTo(Math.min(m.commit, lastNew));
    reply(false, lastNew);
  }

  #handleHeartbeat(m: Heartbeat): void {
    // The leader sends min(match, commit), so this never commits past what it vouched for.
    this.#log.commitTo(Math.min(m.commit, this.#log.lastIndex()));
    this.#send<HeartbeatResponse>({
      type: "heartbeatResp",
      from: this.id,
      to: m.from,
      term: this.#term,
      ctx: m.ctx,
      sentTick: m.sentTick,
    });
  }

  #handleSnapshotChunk(m: SnapshotChunk): void {
    const reply = (nextOffset: number, done: boolean) =>
      this.#send<SnapshotResponse>({
        type: "snapResp",
        from: this.id,
        to: m.from,
        term: this.#term,
        index: m.meta.index,
        nextOffset,
        done,
      });
    if (m.meta.index <= this.#log.committed) {
      reply(m.totalBytes, true);
      return;
    }
    let asm = this.#snapshotAssembly;
    if (!asm || asm.meta.index !== m.meta.index || asm.meta.term !== m.meta.term) {
      if (m.offset !== 0) {
        reply(0, false);
        return;
      }
      asm = { meta: m.meta, totalBytes: m.totalBytes, chunks: [], bytes: 0 };
      this.#snapshotAssembly = asm;
    }
    if (m.offset === asm.bytes && m.data.byteLength > 0) {
      asm.chunks.push(m.data);
      asm.bytes += m.data.byteLength;
    }
    if (asm.bytes < asm.totalBytes) {
      reply(asm.bytes, false);
      return;
    }
    this.#snapshotAssembly = undefined;
    const data = new Uint8Array(asm.bytes);
    let at = 0;
    for (const chunk of asm.chunks) {
      data.set(chunk, at);
      at += chunk.byteLength;
    }
    this.#restore({ meta: asm.meta, data });
    reply(asm.bytes, true);
  }

  /** §7 receiver steps 6–8: keep a matching log suffix, otherwise replace the log. */
  #restore(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    if (this.#log.matchTerm(index, term)) {
      this.#log.commitTo(index);
      return;
    }
    this.#log.restore(snapshot);
    this.#baseConf = snapshot.meta.conf;
    this.#confEntries = [];
    this.#conf = snapshot.meta.conf;
  }

  // ---------------------------------------------------------------- leader

  #stepLeader(m: Message): void {
    switch (m.type) {
      case "appResp":
        this.#handleAppendResponse(m);
        return;
      case "heartbeatResp":
        this.#handleHeartbeatResponse(m);
        return;
      case "snapResp":
        this.#handleSnapshotResponse(m);
        return;
      case "app":
      case "heartbeat":
      case "snap":
        assert(false, `two leaders in term ${this.#term}: ${this.id} and ${m.from}`);
        return;
      default:
        return;
    }
  }

  #handleAppendResponse(m: AppendResponse): void {
    const pr = this.#progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.reject) {
      const hint = m.hintTerm > 0
        ? this.#log.findConflictByTerm(m.hintIndex, m.hintTerm).index
        : m.hintIndex;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppend(m.from, true);
      }
      return;
    }
    if (pr.maybeUpdate(m.index)) {
      if (pr.state === "probe") pr.becomeReplicate();
      else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
      else if (pr.state === "replicate") pr.freeInflightsTo(m.index);
      if (this.#maybeCommit()) this.#bcastAppend();
      while (this.#sendAppend(m.from, false));
      if (m.from === this.#transferee && pr.match === this.#log.lastIndex()) {
        this.#sendTimeoutNow(m.from);
      }
    } else if (pr.state === "replicate") {
      pr.freeInflightsTo(m.index);
    }
  }

  #handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.#progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.probeSent = false;
    pr.leaseAckTick = Math.max(pr.leaseAckTick, m.sentTick);
    if (pr.state === "replicate" && pr.inflights.length >= pr.inflightMax) pr.inflights.shift();
    if (pr.state === "snapshot") this.#sendSnapshotChunk(m.from, pr);
    else if (pr.match < this.#log.lastIndex()) this.#sendAppend(m.from, true);
    if (m.ctx !== "") this.#ackRead(m.from, m.ctx);
  }

  #handleSnapshotResponse(m: SnapshotResponse): void {
    const pr = this.#progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (pr.state !== "snapshot" || m.index !== pr.pendingSnapshot) return;
    if (m.done) {
      pr.maybeUpdate(m.index);
      pr.becomeReplicate();
      while (this.#sendAppend(m.from, false));
      return;
    }
    pr.snapshotOffset = m.nextOffset;
    this.#sendSnapshotChunk(m.from, pr);
  }

  /** §5.3/§5.4.2: commit the largest index a majority holds, if it is of the current term. */
  #maybeCommit(): boolean {
    const matches: number[] = [];
    for (const id of this.#conf.voters) matches.push(this.#progress.get(id)?.match ?? 0);
    const index = quorumMatchIndex(matches);
    if (index <= this.#log.committed) return false;
    // §5.4.2 (Figure 8): counting replicas commits only entries of the leader's own term;
    // earlier entries commit indirectly, with it.
    if (this.#log.term(index) !== this.#term) return false;
    this.#log.commitTo(index);
    this.#onLeaderCommit();
    return true;
  }

  #onLeaderCommit(): void {
    if (this.#committedInOwnTerm() && this.#readsAwaitingOwnTermCommit.length > 0) {
      const waiting = this.#readsAwaitingOwnTermCommit;
      this.#readsAwaitingOwnTermCommit = [];
      for (const ctx of waiting) this.#startRead(ctx);
    }
    // thesis §4.2.2: a leader removed from the configuration steps down once the removal commits.
    if (!this.#conf.voters.includes(this.id) && this.#lastConfIndex() <= this.#log.committed) {
      this.#becomeFollower(this.#term, NONE);
    }
  }

  #committedInOwnTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  #refuseProposal(): ProposeResult | undefined {
    if (this.#role !== "leader") return this.#reject("notLeader");
    if (this.#transferee !== NONE) return this.#reject("transferring");
    return undefined;
  }

  #reject(reason: RejectReason): ProposeResult {
    return { ok: false, reason, leader: this.#leader };
  }

  #appendOwn(kind: Entry["kind"], data: Uint8Array): ProposeResult {
    const index = this.#log.lastIndex() + 1;
    this.#appendToLog([{ index, term: this.#term, kind, data }]);
    this.#needsAppendFlush = true;
    return { ok: true, index, term: this.#term };
  }

  #flushAppends(): void {
    if (!this.#needsAppendFlush) return;
    this.#needsAppendFlush = false;
    if (this.#role !== "leader") return;
    for (const id of this.#progress.keys()) {
      if (id !== this.id) { while (this.#sendAppend(id, false)); }
    }
  }

  #bcastAppend(): void {
    for (const id of this.#progress.keys()) {
      if (id !== this.id) this.#sendAppend(id, true);
    }
  }

  #bcastHeartbeat(ctx: string): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue;
      this.#send<Heartbeat>({
        type: "heartbeat",
        from: this.id,
        to: id,
        term: this.#term,
        commit: Math.min(pr.match, this.#log.committed),
        ctx,
        sentTick: this.#tickCount,
      });
    }
  }

  /**
   * Sends the next AppendEntries to `to` unless its progress is paused. Batches up to
   * `maxEntriesPerMsg` entries and `maxBytesPerMsg` bytes. Returns whether it sent entries
   * (or an empty message when `sendIfEmpty`).
   */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.#log.term(prevIndex);
    const entries = this.#log.slice(
      pr.next,
      this.#log.lastIndex() + 1,
      this.#cfg.maxEntriesPerMsg,
      this.#cfg.maxBytesPerMsg,
    );
    if (prevTerm === undefined || entries === undefined) {
      // §7: the entries it needs are compacted away; send the snapshot instead.
      const snapshot = this.#log.storage.snapshot();
      pr.becomeSnapshot(snapshot.meta.index);
      this.#sendSnapshotChunk(to, pr);
      return false;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send<AppendRequest>({
      type: "app",
      from: this.id,
      to,
      term: this.#term,
      prevIndex,
      prevTerm,
      entries,
      commit: this.#log.committed,
    });
    pr.sentEntries(entries.length, prevIndex + entries.length);
    return entries.length > 0;
  }

  /** InstallSnapshot in bounded chunks (§7), one chunk in flight at a time. */
  #sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const snapshot = this.#log.storage.snapshot();
    if (snapshot.meta.index !== pr.pendingSnapshot) pr.becomeSnapshot(snapshot.meta.index);
    assert(snapshot.meta.index > 0, "a follower needs a snapshot but storage has none");
    const offset = Math.min(pr.snapshotOffset, snapshot.data.byteLength);
    this.#send<SnapshotChunk>({
      type: "snap",
      from: this.id,
      to,
      term: this.#term,
      meta: snapshot.meta,
      offset,
      totalBytes: snapshot.data.byteLength,
      data: snapshot.data.subarray(offset, offset + this.#cfg.snapshotChunkBytes),
    });
  }

  #sendTimeoutNow(to: NodeId): void {
    // The target's election skips the followers' leader lease, so this leader's lease is void.
    this.#leaseForfeitTerm = this.#term;
    this.#send({ type: "timeoutNow", from: this.id, to, term: this.#term });
  }

  // ---------------------------------------------------------------- reads (thesis §6.4)

  #startRead(ctx: string): void {
    const index = this.#log.committed;
    if (this.#conf.voters.length === 1 && this.#conf.voters[0] === this.id) {
      this.#readStates.push({ ctx, index });
      return;
    }
    if (this.#cfg.readMode === "lease" && this.#leaseValid()) {
      this.#readStates.push({ ctx, index });
      return;
    }
    this.#pendingReads.push({ ctx, index, acks: new Set([this.id]) });
    this.#bcastHeartbeat(ctx);
  }

  #ackRead(from: NodeId, ctx: string): void {
    const at = this.#pendingReads.findIndex((r) => r.ctx === ctx);
    if (at < 0) return;
    const read = this.#pendingReads[at];
    read.acks.add(from);
    let acks = 0;
    for (const id of this.#conf.voters) if (read.acks.has(id)) acks++;
    if (acks < quorumSize(this.#conf.voters.length)) return;
    // A quorum confirmed leadership after every earlier request was queued: release them too.
    for (const r of this.#pendingReads.splice(0, at + 1)) {
      this.#readStates.push({ ctx: r.ctx, index: r.index });
    }
  }

  /**
   * thesis §6.4.1: the lease holds while a quorum acknowledged a heartbeat sent less than
   * `leaseTicks` ago; those followers refuse votes for an election timeout after receiving it.
   */
  #leaseValid(): boolean {
    if (this.#leaseForfeitTerm === this.#term || this.#transferee !== NONE) return false;
    const acks: number[] = [];
    for (const id of this.#conf.voters) {
      acks.push(
        id === this.id ? this.#tickCount : this.#progress.get(id)?.leaseAckTick ?? -Infinity,
      );
    }
    const oldestOfQuorum = quorumMatchIndex(acks);
    return this.#tickCount - oldestOfQuorum < leaseTicks(this.#cfg);
  }

  // ---------------------------------------------------------------- log and configuration

  /** Appends to the log and applies configuration entries at once (thesis §4.1). */
  #appendToLog(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    assert(
      this.#role !== "leader" || first === this.#log.lastIndex() + 1,
      "a leader never overwrites its log (§5.3 Leader Append-Only)",
    );
    const truncates = first <= this.#log.lastIndex();
    this.#log.append(entries);
    let changed = false;
    if (truncates) {
      const before = this.#confEntries.length;
      this.#confEntries = this.#confEntries.filter((c) => c.index < first);
      changed = before !== this.#confEntries.length;
    }
    for (const entry of entries) {
      if (entry.kind === "conf") {
        this.#confEntries.push({ index: entry.index, conf: decodeConfEntry(entry).conf });
        changed = true;
      }
    }
    if (changed) this.#setConf(this.#currentConf());
  }

  #currentConf(): ConfState {
    const last = this.#confEntries[this.#confEntries.length - 1];
    return last ? last.conf : this.#baseConf;
  }

  #lastConfIndex(): number {
    const last = this.#confEntries[this.#confEntries.length - 1];
    return last ? last.index : 0;
  }

  #setConf(conf: ConfState): void {
    this.#conf = conf;
    if (this.#role !== "leader") return;
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const id of this.#progress.keys()) {
      if (id !== this.id && !members.has(id)) this.#progress.delete(id);
    }
    for (const id of members) {
      const pr = this.#progress.get(id);
      if (pr) pr.isLearner = conf.learners.includes(id);
      else {
        const fresh = new Progress(
          this.#log.lastIndex(),
          conf.learners.includes(id),
          this.#cfg.maxInflightMsgs,
        );
        fresh.recentActive = true;
        this.#progress.set(id, fresh);
      }
    }
    this.#ensureSelfProgress();
    if (this.#transferee !== NONE && !conf.voters.includes(this.#transferee)) {
      this.#transferee = NONE;
    }
  }

  #ensureSelfProgress(): Progress {
    let self = this.#progress.get(this.id);
    if (!self) {
      self = new Progress(this.#log.lastIndex() + 1, false, this.#cfg.maxInflightMsgs);
      this.#progress.set(this.id, self);
    }
    return self;
  }

  /** Rebuilds the configuration history from the stored log after a restart. */
  #loadConfEntries(): void {
    const storage = this.#log.storage;
    const last = storage.lastIndex();
    for (let lo = storage.firstIndex(); lo <= last;) {
      const batch = storage.entries(lo, last + 1, 4 << 20);
      for (const entry of batch) {
        if (entry.kind === "conf") {
          this.#confEntries.push({ index: entry.index, conf: decodeConfEntry(entry).conf });
        }
      }
      lo += batch.length;
    }
    this.#conf = this.#currentConf();
  }

  // ---------------------------------------------------------------- helpers

  #send<M extends Message>(m: M): void {
    this.#msgs.push(m);
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed };
  }

  /** Whether the hard state differs from the one the last `Ready` handed out for persistence. */
  #hardStateChanged(): boolean {
    const p = this.#prevHardState;
    const h = this.#hardState();
    return p.term !== h.term || p.vote !== h.vote || p.commit !== h.commit;
  }

  #softStateChanged(): boolean {
    return this.#prevSoftState.leader !== this.#leader || this.#prevSoftState.role !== this.#role;
  }

  #assertNoReadyOutstanding(): void {
    assert(this.#outstanding === undefined, "input between ready() and advance()");
  }
}
