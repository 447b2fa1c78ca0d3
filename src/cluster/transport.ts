/**
 * The sending half of the Raft transport: messages from the core go to peers as signed HTTP
 * POSTs to their `/raft/…` routes (served by `src/cluster/raft_routes.ts`), batched and pipelined.
 *
 * Per peer:
 * - one queue per route (append, vote, pre-vote, snapshot, timeout-now), bounded together by
 *   `queue_max_messages` and `queue_max_bytes`; overflow drops the OLDEST messages (Raft sends
 *   fresher state on the next heartbeat or probe, and an old message is the least useful);
 * - a request takes everything queued on the route whose head is oldest, up to
 *   `batch_max_bytes` (a single larger message goes alone), into one POST;
 * - up to `inflight_max` requests in flight (pipelining; Raft tolerates reordering and loss);
 * - a failed or timed-out request drops its batch (Raft retransmits) and puts the peer in
 *   exponential backoff (`backoff_min_ms` doubling to `backoff_max_ms`, reset by any success).
 *   During backoff, messages for the peer are dropped at once and counted, never queued; after
 *   it, one probe request at a time until one succeeds (half-open), then the full window.
 *
 * `send` is called from the run loop after persistence and only enqueues: the requests start in
 * a microtask, so all messages handed over in one turn of the loop share requests.
 *
 * @module
 */
import type { Logger } from "../logger.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { systemClock } from "../clock.ts";
import { RaftAuth } from "./auth.ts";
import { encodeMessages, messageBytes, RAFT_CONTENT_TYPE } from "./codec.ts";
import { RAFT_ROUTES, raftPath, type RaftRoute, routeOf } from "./route_table.ts";

/** Hooks for metrics: every message handed to `send` ends up in `sent` or `dropped`. */
export interface TransportObserver {
  /** A request to `peer` succeeded, carrying `messages` in a body of `bytes`. */
  sent(peer: NodeId, messages: number, bytes: number): void;
  /** A request to `peer` failed (network error, timeout, non-2xx); its batch is in `dropped`. */
  failed(peer: NodeId, error: string): void;
  /** `count` messages for `peer` were dropped: overflow, backoff, failed batch, unknown peer. */
  dropped(peer: NodeId, count: number): void;
}

/** Settings of an {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** The cluster secret requests are signed with (HMAC-SHA256; it never travels). */
  secret: string;
  /** A request not answered within this is aborted and counts as a failure. */
  timeout_ms: number;
  /** Most messages queued per peer; overflow drops the oldest. */
  queue_max_messages: number;
  /** Most requests in flight per peer. */
  inflight_max: number;
  logger: Logger;
  /** The fetch to use (tests); the global one by default. */
  fetch?: typeof fetch;
  observer?: TransportObserver;
  /** Most encoded bytes per request, unless one message alone is larger (default 1 MiB). */
  batch_max_bytes?: number;
  /** Most encoded bytes queued per peer; overflow drops the oldest (default 64 MiB). */
  queue_max_bytes?: number;
  /** First backoff after a failure (default 50 ms). */
  backoff_min_ms?: number;
  /** Longest backoff (default 2,000 ms). */
  backoff_max_ms?: number;
  /**
   * The clock requests are timestamped with for the receiver's replay window. Default: the
   * node's steady wall clock (`systemClock`), so a wall-clock step on this node does not cut it
   * off from its peers.
   */
  now_ms?: () => number;
}

/** What {@link HttpTransport.peerStats} shows of one peer. */
export interface PeerStats {
  /** Messages waiting for a request. */
  queued: number;
  /** Requests in flight. */
  inflight: number;
  /** Failed requests since the last success. */
  failures: number;
  /** The last failure since the last success, or null when healthy. */
  last_error: string | null;
  /** The current backoff period (0 when healthy). */
  backoff_ms: number;
}

interface Queued {
  readonly msg: Message;
  readonly bytes: number;
  /** Arrival order across the peer's route queues, to find the oldest. */
  readonly seq: number;
}

/** A FIFO with O(1) removal at the head. */
class Fifo {
  #items: (Queued | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  peek(): Queued | undefined {
    return this.#items[this.#head];
  }

  push(item: Queued): void {
    this.#items.push(item);
  }

  shift(): Queued | undefined {
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1_024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

class Peer {
  readonly queues = new Map<RaftRoute, Fifo>(RAFT_ROUTES.map((route) => [route, new Fifo()]));
  queued = 0;
  queued_bytes = 0;
  inflight = 0;
  failures = 0;
  last_error: string | null = null;
  backoff_ms = 0;
  /** When the current backoff period began (requests started before it do not escalate it). */
  backoff_since_ms = -Infinity;
  retry_at_ms = 0;
  pump_scheduled = false;
  readonly controllers = new Set<AbortController>();

  constructor(readonly id: NodeId, public url: string) {}

  /** The route queue whose head arrived first. */
  oldest(): Fifo | undefined {
    let oldest: Fifo | undefined;
    for (const q of this.queues.values()) {
      const head = q.peek();
      if (head !== undefined && (oldest === undefined || head.seq < oldest.peek()!.seq)) {
        oldest = q;
      }
    }
    return oldest;
  }

  /** Removes and returns all queued messages. */
  clear(): number {
    const count = this.queued;
    for (const q of this.queues.values()) q.clear();
    this.queued = 0;
    this.queued_bytes = 0;
    return count;
  }
}

/** An error's message with its causes ("fetch failed: … Connection refused"). */
function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e !== undefined && parts.length < 4; e = (e as Error).cause) {
    parts.push(e instanceof Error ? e.message : String(e));
    if (!(e instanceof Error)) break;
  }
  return parts.join(": ");
}

/** Sends Raft messages to peers over HTTP. See the module documentation for the policy. */
export class HttpTransport {
  readonly #self: NodeId;
  readonly #opts: Required<Omit<HttpTransportOptions, "observer" | "secret" | "now_ms">>;
  readonly #observer: TransportObserver | undefined;
  readonly #auth: RaftAuth;
  readonly #now_ms: () => number;
  readonly #peers = new Map<NodeId, Peer>();
  readonly #pending = new Set<Promise<void>>();
  #seq = 0;
  #closed = false;

  /** Throws RangeError for an empty secret or a non-positive bound. */
  constructor(self: NodeId, opts: HttpTransportOptions) {
    this.#self = self;
    this.#auth = new RaftAuth(opts.secret);
    this.#now_ms = opts.now_ms ?? (() => systemClock.now());
    this.#observer = opts.observer;
    this.#opts = {
      timeout_ms: opts.timeout_ms,
      queue_max_messages: opts.queue_max_messages,
      inflight_max: opts.inflight_max,
      logger: opts.logger,
      fetch: opts.fetch ?? fetch,
      batch_max_bytes: opts.batch_max_bytes ?? 1 << 20,
      queue_max_bytes: opts.queue_max_bytes ?? 64 << 20,
      backoff_min_ms: opts.backoff_min_ms ?? 50,
      backoff_max_ms: opts.backoff_max_ms ?? 2_000,
    };
    for (
      const key of [
        "timeout_ms",
        "queue_max_messages",
        "inflight_max",
        "batch_max_bytes",
        "queue_max_bytes",
        "backoff_min_ms",
        "backoff_max_ms",
      ] as const
    ) {
      const value = this.#opts[key];
      if (!Number.isFinite(value) || value <= 0) {
        throw new RangeError(`${key} must be a positive number, got ${value}`);
      }
    }
  }

  /**
   * Sets who the peers are and their base URLs (`http://host:port`). New peers start healthy;
   * a changed URL applies to the next request; a removed peer's queue is dropped (its requests
   * in flight finish on their own). This node's own id is ignored.
   */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, url] of peers) {
      if (id === this.#self) continue;
      const base = url.replace(/\/+$/, "");
      const peer = this.#peers.get(id);
      if (peer) peer.url = base;
      else this.#peers.set(id, new Peer(id, base));
    }
    for (const [id, peer] of this.#peers) {
      if (!peers.has(id)) {
        this.#peers.delete(id);
        this.#dropped(id, peer.clear());
      }
    }
  }

  /**
   * Queues messages for their peers (`to`) and schedules requests. Never blocks, never throws:
   * what cannot be queued (unknown peer, peer in backoff, closed transport) is dropped and
   * counted.
   */
  send(messages: readonly Message[]): void {
    try {
      const now_ms = performance.now();
      const dropped = new Map<NodeId, number>();
      const drop = (id: NodeId, count: number) => dropped.set(id, (dropped.get(id) ?? 0) + count);
      for (const msg of messages) {
        const peer = this.#peers.get(msg.to);
        if (this.#closed || peer === undefined || now_ms < peer.retry_at_ms) {
          if (!this.#closed && peer === undefined) {
            this.#opts.logger.debug("raft message for an unknown peer dropped", {
              peer: msg.to,
              type: msg.type,
            });
          }
          drop(msg.to, 1);
          continue;
        }
        try {
          drop(peer.id, this.#enqueue(peer, msg));
        } catch (error) {
          // A message the wire cannot carry is a bug upstream; the rest of the batch still goes.
          this.#opts.logger.error("raft message cannot be sent", { error: describe(error) });
          drop(peer.id, 1);
          continue;
        }
        if (!peer.pump_scheduled) {
          peer.pump_scheduled = true;
          queueMicrotask(() => {
            peer.pump_scheduled = false;
            this.#pump(peer);
          });
        }
      }
      for (const [id, count] of dropped) this.#dropped(id, count);
    } catch (error) {
      this.#opts.logger.error("raft transport send failed", { error: describe(error) });
    }
  }

  /** A snapshot of every peer's queue, window and health. */
  peerStats(): Map<NodeId, PeerStats> {
    const stats = new Map<NodeId, PeerStats>();
    for (const [id, p] of this.#peers) {
      stats.set(id, {
        queued: p.queued,
        inflight: p.inflight,
        failures: p.failures,
        last_error: p.last_error,
        backoff_ms: p.backoff_ms,
      });
    }
    return stats;
  }

  /** Drops what is queued, aborts requests in flight and waits for them to settle. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const peer of this.#peers.values()) {
      this.#dropped(peer.id, peer.clear());
      for (const controller of peer.controllers) controller.abort();
    }
    await Promise.allSettled(this.#pending);
  }

  /** Adds `msg` to its route queue; returns how many old messages overflow dropped. */
  #enqueue(peer: Peer, msg: Message): number {
    const bytes = messageBytes(msg);
    peer.queues.get(routeOf(msg.type))!.push({ msg, bytes, seq: this.#seq++ });
    peer.queued++;
    peer.queued_bytes += bytes;
    let dropped = 0;
    while (
      peer.queued > this.#opts.queue_max_messages ||
      (peer.queued > 1 && peer.queued_bytes > this.#opts.queue_max_bytes)
    ) {
      const old = peer.oldest()!.shift()!;
      peer.queued--;
      peer.queued_bytes -= old.bytes;
      dropped++;
    }
    return dropped;
  }

  /** Starts requests while the peer's window has room. */
  #pump(peer: Peer): void {
    const window = peer.failures > 0 ? 1 : this.#opts.inflight_max;
    while (!this.#closed && peer.inflight < window && peer.queued > 0) {
      const q = peer.oldest()!;
      const batch: Message[] = [];
      let bytes = 0;
      for (let head = q.peek(); head !== undefined; head = q.peek()) {
        if (batch.length > 0 && bytes + head.bytes > this.#opts.batch_max_bytes) break;
        q.shift();
        batch.push(head.msg);
        bytes += head.bytes;
      }
      peer.queued -= batch.length;
      peer.queued_bytes -= bytes;
      peer.inflight++;
      const request = this.#post(peer, batch).finally(() => {
        peer.inflight--;
        this.#pending.delete(request);
        if (this.#peers.get(peer.id) === peer) this.#pump(peer);
      });
      this.#pending.add(request);
    }
  }

  async #post(peer: Peer, batch: Message[]): Promise<void> {
    const started_ms = performance.now();
    const path = raftPath(routeOf(batch[0].type));
    let body: Uint8Array<ArrayBuffer>;
    try {
      body = encodeMessages(batch);
    } catch (error) {
      // A bug in the caller, not the peer's fault: no backoff.
      this.#opts.logger.error("raft batch cannot be encoded", { error: describe(error) });
      this.#dropped(peer.id, batch.length);
      return;
    }
    const controller = new AbortController();
    peer.controllers.add(controller);
    let timed_out = false;
    const timer = setTimeout(() => {
      timed_out = true;
      controller.abort();
    }, this.#opts.timeout_ms);
    try {
      const res = await this.#opts.fetch(peer.url + path, {
        method: "POST",
        headers: {
          "Content-Type": RAFT_CONTENT_TYPE,
          "Authorization": this.#auth.authorization(path, body, this.#now_ms()),
        },
        body,
        signal: controller.signal,
      });
      if (res.ok) {
        await res.body?.cancel();
        this.#succeeded(peer, batch.length, body.byteLength);
      } else {
        const text = (await res.text()).slice(0, 300);
        this.#failed(peer, batch.length, started_ms, `HTTP ${res.status} from ${path}: ${text}`);
      }
    } catch (error) {
      if (this.#closed) this.#dropped(peer.id, batch.length);
      else {
        const why = timed_out ? `no answer within ${this.#opts.timeout_ms} ms` : describe(error);
        this.#failed(peer, batch.length, started_ms, why);
      }
    } finally {
      clearTimeout(timer);
      peer.controllers.delete(controller);
    }
  }

  #succeeded(peer: Peer, messages: number, bytes: number): void {
    if (peer.failures > 0) {
      this.#opts.logger.info("raft peer reachable again", {
        peer: peer.id,
        failures: peer.failures,
      });
    }
    peer.failures = 0;
    peer.last_error = null;
    peer.backoff_ms = 0;
    peer.backoff_since_ms = -Infinity;
    peer.retry_at_ms = 0;
    this.#observer?.sent(peer.id, messages, bytes);
  }

  #failed(peer: Peer, messages: number, started_ms: number, error: string): void {
    const now_ms = performance.now();
    peer.failures++;
    peer.last_error = error;
    // Requests already in flight when the backoff began fail together: escalate once for them.
    if (started_ms >= peer.backoff_since_ms) {
      peer.backoff_ms = peer.backoff_ms === 0
        ? this.#opts.backoff_min_ms
        : Math.min(this.#opts.backoff_max_ms, peer.backoff_ms * 2);
      peer.backoff_since_ms = now_ms;
      peer.retry_at_ms = now_ms + peer.backoff_ms;
    }
    const fields = { peer: peer.id, url: peer.url, error, backoff_ms: peer.backoff_ms };
    if (peer.failures === 1) this.#opts.logger.warn("raft peer unreachable", fields);
    else this.#opts.logger.debug("raft request failed", fields);
    this.#observer?.failed(peer.id, error);
    this.#dropped(peer.id, messages + peer.clear());
  }

  #dropped(peer: NodeId, count: number): void {
    if (count > 0) this.#observer?.dropped(peer, count);
  }
}
