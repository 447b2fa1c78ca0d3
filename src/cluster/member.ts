/**
 * Cluster mode of a node: the Raft log on `raft.db`, the HTTP transport between members, the
 * replicated address book, joining and leaving, learner promotion, and the graceful hand-over
 * of leadership on shutdown.
 *
 * Members are named (`NODE_ID`); the core knows them by a numeric id derived from the name. The
 * address book (name, id, URL) is replicated through the log, so a node that joins later, or
 * installs a snapshot, learns every member's address from the cluster itself.
 */
import type { Hono } from "hono";
import type { Config } from "../config.ts";
import { envObject, pathExists, pathExistsSync } from "../runtime.ts";
import type { Database } from "../db/open.ts";
import { raftRoutes } from "./raft_routes.ts";
import type { Logger } from "../logger.ts";
import type { NodeId, Role } from "../raft/types.ts";
import { sfc32 } from "../prng.ts";
import { ConflictError, NotFoundError, ValidationError } from "../errors.ts";
import {
  discoverWithRetry,
  type Discovery,
  discoveryFromConfig,
  nodeNumericId,
  parsePeers,
} from "./discovery.ts";
import type { Member } from "./entry_codec.ts";
import { ClusterRefusalError, ReplicatedLog } from "./replicated_log.ts";
import { CLUSTER_AUTH_HEADER, RaftAuth } from "./auth.ts";
import { SqliteRaftStorage } from "./raft_storage.ts";
import { HttpTransport, type PeerStats } from "./transport.ts";
import type { FaultHook } from "../faults.ts";
import type { LogObserver } from "../log/local_log.ts";
import type { StateMachine, TypedCommand } from "../log/state_machine.ts";

/** How often the leader tries to promote caught-up learners. */
const PROMOTE_EVERY_MS = 250;
/** A learner is promoted once it acknowledged entries within this many of the commit index. */
const PROMOTE_LAG_MAX = 64;
/** Longest wait for a leadership transfer on shutdown. */
const TRANSFER_WAIT_MS = 5_000;

export interface ClusterOptions<C extends TypedCommand, E> {
  config: Config;
  stateDb: Database;
  /** The node's state machine; the replicated log applies committed commands to it. */
  machine: StateMachine<C, E>;
  logger: Logger;
  metrics: ClusterMetrics;
  /** Called when this node starts or stops being a leader that may fire. */
  onCanFire: (can: boolean) => void;
  onFatal: (error: Error) => void;
  /** Test-only fault injection into the Raft loop. */
  fault?: FaultHook;
}

/** What a cluster member reports for metrics. */
export interface ClusterMetrics extends LogObserver {
  raftUnauthorized: { inc(labels: { route: string }): void };
}

/** A follower's replication as the leader sees it. */
export interface FollowerView {
  id: string;
  address: string;
  role: "voter" | "learner";
  match_index: number | null;
  lag: number | null;
}

/**
 * What a member reports of the cluster. The node serves it as `GET /debug/cluster`, typed there
 * by `ClusterView` (src/http/schemas.ts), which this view must be assignable to.
 */
export interface MemberClusterView {
  node_id: string;
  role: Role;
  leader: string | null;
  term: number;
  commit_index: number;
  applied_index: number;
  last_index: number;
  members: FollowerView[];
  /** Transport statistics by peer name. */
  transport: Record<string, PeerStats>;
}

export class ClusterNode<C extends TypedCommand, E> {
  readonly log: ReplicatedLog<C, E>;
  readonly self: Member;
  readonly routes: Hono;
  readonly #o: ClusterOptions<C, E>;
  readonly #transport: HttpTransport;
  readonly #storage: SqliteRaftStorage;
  #promoter: ReturnType<typeof setInterval> | undefined;
  #canFire = false;

  private constructor(
    options: ClusterOptions<C, E>,
    self: Member,
    log: ReplicatedLog<C, E>,
    transport: HttpTransport,
    storage: SqliteRaftStorage,
  ) {
    this.#o = options;
    this.#storage = storage;
    this.self = self;
    this.log = log;
    this.#transport = transport;
    this.routes = raftRoutes({
      secret: options.config.cluster_secret,
      self: self.id,
      max_body_bytes: 64 << 20,
      onMessages: (messages) => log.receive(messages),
      onUnauthorized: (route) => options.metrics.raftUnauthorized.inc({ route }),
    });
  }

  /**
   * Opens the Raft log and starts the cluster member. On a node's first start it either
   * bootstraps a new cluster (CLUSTER_NODES, or the members fly/dns discovery sees once there are
   * BOOTSTRAP_EXPECT of them) or joins an existing one (JOIN_URL, or a discovered member that
   * already has a leader).
   */
  static async start<C extends TypedCommand, E>(
    options: ClusterOptions<C, E>,
  ): Promise<ClusterNode<C, E>> {
    const { config } = options;
    if (config.cluster_secret === "") {
      throw new ValidationError(
        "cluster mode needs CLUSTER_SECRET (--cluster-secret), the same on every node",
      );
    }
    const discovery = discoveryFromConfig({
      strategy: config.discovery_strategy,
      peers: config.peers,
      node_id: config.node_id,
      advertise_url: config.advertise_url,
      dns_service: config.dns_service,
      port: config.http_port,
    }, envObject());
    const self: Member = {
      id: nodeNumericId(discovery.self.name),
      name: discovery.self.name,
      address: discovery.self.address,
    };
    const fresh = !(await pathExists(`${config.data_dir}/raft.db`));
    const plan = fresh
      ? await firstStartPlan(config, discovery, self, options.logger)
      : { bootstrap: [], join_url: null };
    const bootstrap = plan.bootstrap;
    const storage = await SqliteRaftStorage.open(config.data_dir, {
      voters: bootstrap.map((m) => m.id).sort((a, b) => a - b),
      learners: [],
    });
    const appliedRow = await options.stateDb.client.execute(
      "SELECT value FROM meta WHERE key = 'applied_index'",
    );
    let applied = appliedRow.rows.length === 0 ? 0 : Number(appliedRow.rows[0].value);
    const snapshot = storage.snapshot();
    if (snapshot.meta.index > applied && snapshot.data.byteLength > 0) {
      // The node stopped after raft.db took a snapshot from the leader but before the state file
      // was replaced: the entries it needs are compacted away, so the state comes from there.
      await options.stateDb.replaceWith(snapshot.data);
      await options.machine.load(options.stateDb);
      applied = snapshot.meta.index;
      options.logger.info("state restored from the stored snapshot", { index: applied });
    }
    await storage.raiseCommit(applied);
    const stored = await options.stateDb.client.execute("SELECT id, name, address FROM members");
    const members: Member[] = stored.rows.length > 0
      ? stored.rows.map((r) => ({
        id: Number(r.id),
        name: String(r.name),
        address: String(r.address),
      }))
      : [...bootstrap, self];
    const transport = new HttpTransport(self.id, {
      secret: config.cluster_secret,
      timeout_ms: Math.max(1_000, config.raft_tick_ms * config.raft_election_ticks),
      queue_max_messages: 10_000,
      inflight_max: 8,
      logger: options.logger,
    });
    let node: ClusterNode<C, E> | null = null;
    const log = new ReplicatedLog<C, E>(
      {
        id: self.id,
        storage,
        machine: options.machine,
        stateDb: options.stateDb,
        send: (messages) => transport.send(messages),
        random: sfc32(crypto.getRandomValues(new Uint32Array(1))[0]),
        tick_ms: config.raft_tick_ms,
        election_ticks: config.raft_election_ticks,
        heartbeat_ticks: config.raft_heartbeat_ticks,
        batch_max: config.commit_batch_max,
        queue_max: config.proposal_queue_max,
        snapshot_every_entries: config.snapshot_entries,
        logger: options.logger,
        observer: options.metrics,
        takeSnapshot: () => options.stateDb.copyBytes(),
        installSnapshot: async (data) => {
          await options.stateDb.replaceWith(data);
          await options.machine.load(options.stateDb);
        },
        onMembers: (all) => {
          const peersById = new Map<NodeId, string>();
          for (const m of all.values()) if (m.id !== self.id) peersById.set(m.id, m.address);
          transport.setPeers(peersById);
        },
        onStatus: () => node !== null && node.#checkFiring(),
        onFatal: options.onFatal,
        fault: options.fault,
      },
      applied,
      members,
    );
    node = new ClusterNode(options, self, log, transport, storage);
    log.start();
    node.#promoter = setInterval(() => node!.#promoteLearners(), PROMOTE_EVERY_MS);
    if (plan.join_url !== null) void node.#joinThrough(plan.join_url);
    return node;
  }

  /** The member that leads now, if known. */
  leader(): Member | null {
    const id = this.log.status().leader;
    return id === 0 ? null : this.log.members.get(id) ?? null;
  }

  /**
   * Runs on the leader: adds `name` at `address` as a learner; it is promoted once caught up.
   * Answers with the address book, which the new node needs to answer anyone before it has
   * caught up with the log that replicates it.
   */
  async join(name: string, address: string): Promise<Member & { members: Member[] }> {
    const id = nodeNumericId(name);
    const existing = this.log.members.get(id);
    if (existing !== undefined && existing.name !== name) {
      throw new ConflictError(
        `node name ${name} maps to the same Raft id as ${existing.name}; choose another NODE_ID`,
      );
    }
    if (this.log.conf.voters.includes(id)) {
      // Only a node without Raft state asks to join: a voter doing so has lost its log, and a
      // voter with an empty log could elect a leader that lacks committed entries.
      throw new ConflictError(
        `node ${name} is already a voter; if it lost its data, remove it first (DELETE /cluster/members/${name}) and start it again`,
      );
    }
    const member: Member = { id, name, address };
    if (existing?.address !== address) await this.log.setMember(member);
    if (!this.log.conf.learners.includes(id)) {
      await this.#retryRefusals(() => this.log.changeMembership({ op: "addLearner", node: id }));
      this.#o.logger.info("member joined as learner", { member: name, address });
    }
    return { ...member, members: [...this.log.members.values()] };
  }

  /** Runs on the leader: removes a member (the leader itself steps down once it commits). */
  async remove(name: string): Promise<void> {
    const id = nodeNumericId(name);
    const conf = this.log.conf;
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) {
      throw new NotFoundError(`node ${name} is not a member of this cluster`);
    }
    await this.#retryRefusals(() => this.log.changeMembership({ op: "remove", node: id }));
    this.#o.logger.info("member removed", { member: name });
  }

  /**
   * Runs on the leader: hands leadership to `to` (a voter's name), or to the most caught-up
   * voter; resolves with the new leader's name once it leads.
   */
  async transferLeadership(to?: string): Promise<string> {
    const target = to === undefined ? this.#mostCaughtUp() : nodeNumericId(to);
    if (target === null) throw new ConflictError("no other voter to hand leadership to");
    if (!this.log.conf.voters.includes(target) || target === this.self.id) {
      throw new ValidationError(`${to} is not another voting member`);
    }
    await this.log.transferLeadership(target);
    const deadline = Date.now() + TRANSFER_WAIT_MS;
    while (Date.now() < deadline) {
      if (this.log.status().leader === target) return this.log.members.get(target)?.name ?? "";
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new ConflictError(`leadership did not move within ${TRANSFER_WAIT_MS} ms; retry`);
  }

  /** Members, roles, term, indexes and each follower's replication (on the leader). */
  view(): MemberClusterView {
    const s = this.log.status();
    const progress = s.role === "leader" ? this.log.node.replication() : new Map();
    const members: FollowerView[] = [];
    for (const id of [...s.conf.voters, ...s.conf.learners]) {
      const m = this.log.members.get(id);
      const p = progress.get(id);
      members.push({
        id: m?.name ?? String(id),
        address: m?.address ?? "",
        role: s.conf.voters.includes(id) ? "voter" : "learner",
        match_index: p?.match ?? null,
        lag: p === undefined ? null : Math.max(0, s.lastIndex - p.match),
      });
    }
    return {
      node_id: this.self.name,
      role: s.role,
      leader: this.leader()?.name ?? null,
      term: s.term,
      commit_index: s.commit,
      applied_index: this.log.applied_index,
      last_index: s.lastIndex,
      members,
      transport: Object.fromEntries(
        [...this.#transport.peerStats()].map((
          [id, stats],
        ) => [this.log.members.get(id)?.name ?? String(id), stats]),
      ),
    };
  }

  /**
   * Leaves gracefully: a leader hands leadership to the most caught-up voter and waits for it;
   * then the log and the transport stop.
   */
  async stop(): Promise<void> {
    clearInterval(this.#promoter);
    if (this.log.isLeader() && this.log.conf.voters.length > 1) {
      try {
        const to = await this.transferLeadership();
        this.#o.logger.info("leadership handed over", { to });
      } catch (error) {
        this.#o.logger.warn("leadership transfer failed", { error: (error as Error).message });
      }
    }
    await this.log.stop();
    await this.#transport.close();
    this.#storage.close();
  }

  /** After every round: start or stop firing as leadership (with an own-term commit) changes. */
  #checkFiring(): void {
    const can = this.log.canFire();
    if (can === this.#canFire) return;
    this.#canFire = can;
    this.#o.onCanFire(can);
    if (can) void this.#publishAddressBook();
  }

  /**
   * A new leader makes sure every member's address is in the replicated address book (members
   * from CLUSTER_NODES are known locally first), so nodes that join later can reach them all.
   */
  async #publishAddressBook(): Promise<void> {
    for (const member of this.log.members.values()) {
      try {
        await this.log.setMember(member);
      } catch (error) {
        this.#o.logger.debug("address book update failed", { error: (error as Error).message });
        return;
      }
    }
  }

  /** Promotes a learner to voter once the core says it has caught up (thesis §4.2.1). */
  #promoteLearners(): void {
    if (!this.log.isLeader()) return;
    const learner = this.log.conf.learners[0];
    if (learner === undefined) return;
    const progress = this.log.node.replication().get(learner);
    const commit = this.log.status().commit;
    if (
      progress === undefined || progress.match === 0 || commit - progress.match > PROMOTE_LAG_MAX
    ) {
      return;
    }
    this.log.changeMembership({ op: "addVoter", node: learner }).then(
      () =>
        this.#o.logger.info("learner promoted to voter", {
          member: this.log.members.get(learner)?.name ?? learner,
        }),
      () => {},
    );
  }

  #mostCaughtUp(): NodeId | null {
    const progress = this.log.node.replication();
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.log.conf.voters) {
      if (id === this.self.id) continue;
      const match = progress.get(id)?.match ?? -1;
      if (match > bestMatch) [best, bestMatch] = [id, match];
    }
    return best;
  }

  async #retryRefusals(run: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await run();
      } catch (error) {
        const retryable = error instanceof ClusterRefusalError &&
          ["confChangePending", "noOwnTermCommit", "transferring"].includes(error.reason);
        if (!retryable || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async #joinThrough(url: string): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        const body = new TextEncoder().encode(
          JSON.stringify({ node_id: this.self.name, address: this.self.address }),
        );
        const response = await fetch(`${url.replace(/\/$/, "")}/join`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            [CLUSTER_AUTH_HEADER]: new RaftAuth(this.#o.config.cluster_secret)
              .authorization("/join", body, Date.now()),
          },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        if (response.ok) {
          const body = JSON.parse(text) as { members?: Member[] };
          this.log.learnMembers(body.members ?? []);
          this.#o.logger.info("joined the cluster", { through: url });
          return;
        }
        this.#o.logger.warn("join refused; retrying", { status: response.status, body: text });
      } catch (error) {
        this.#o.logger.warn("join failed; retrying", { attempt, error: (error as Error).message });
      }
      if (this.log.status().leader !== 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * attempt)));
    }
  }
}

/** How a node with no Raft state starts: the voters to bootstrap with, or a member to join. */
async function firstStartPlan(
  config: Config,
  discovery: Discovery,
  self: Member,
  logger: Logger,
): Promise<{ bootstrap: Member[]; join_url: string | null }> {
  const asMember = (p: { name: string; address: string }): Member => ({
    id: nodeNumericId(p.name),
    name: p.name,
    address: p.address,
  });
  if (config.join_url !== "") return { bootstrap: [], join_url: config.join_url };
  if (discovery.strategy === "static") {
    return { bootstrap: parsePeers(config.peers).map(asMember), join_url: null };
  }
  const peers = await discoverWithRetry(discovery, {
    attempts: Math.max(1, Math.round(config.discovery_wait_ms / 2_000)),
    delay_ms: 2_000,
    min_peers: config.bootstrap_expect,
  });
  const deadline = Date.now() + config.discovery_wait_ms;
  for (;;) {
    let clusterSeen = false;
    for (const peer of peers) {
      if (peer.name === self.name) continue;
      const health = await peerHealth(peer.address);
      if (health?.mode !== "cluster") continue;
      if (typeof health.leader === "string") {
        logger.info("found a running cluster; joining", { through: peer.name });
        return { bootstrap: [], join_url: peer.address };
      }
      clusterSeen = true;
    }
    // Peers that run a cluster without a leader are electing one: wait rather than bootstrap a
    // second cluster beside theirs. With none, the discovered members bootstrap together.
    if (!clusterSeen || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  logger.info("bootstrapping a new cluster", { members: peers.map((p) => p.name) });
  return { bootstrap: peers.map(asMember), join_url: null };
}

async function peerHealth(
  address: string,
): Promise<{ mode?: string; leader?: string | null } | null> {
  try {
    const response = await fetch(`${address}/health`, { signal: AbortSignal.timeout(2_000) });
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * Whether the node runs in cluster mode: asked for by the configuration, or its data dir holds
 * Raft state already (a joined node restarted without JOIN_URL stays a member).
 */
export function clusterWanted(config: Config, env: Record<string, string | undefined>): boolean {
  if (config.peers !== "" || config.join_url !== "") return true;
  if (pathExistsSync(`${config.data_dir}/raft.db`)) return true;
  if (config.discovery_strategy === "fly" || config.discovery_strategy === "dns") return true;
  return config.discovery_strategy === "auto" && (env.FLY_APP_NAME ?? "") !== "";
}
