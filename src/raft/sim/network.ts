/**
 * The simulated network: every message gets a delivery tick drawn from the seeded PRNG, may be
 * dropped or duplicated, and is delivered only if its link is up at delivery time. Different
 * delays reorder messages; a per-tick shuffle reorders those due together.
 */
import type { Message, NodeId } from "../types.ts";

export interface NetworkFaults {
  /** Probability a message is lost. */
  drop: number;
  /** Probability a message is delivered twice. */
  duplicate: number;
  /** Delivery delay range in ticks. */
  delayMin_ticks: number;
  delayMax_ticks: number;
  /** Shuffle the messages due in the same tick. */
  reorder: boolean;
}

export interface NetworkCounters {
  sent: number;
  dropped: number;
  duplicated: number;
  blocked: number;
}

export class Network {
  #buckets = new Map<number, Message[]>();
  /** Blocked directed links, as `from * 1000 + to`. */
  #blocked = new Set<number>();
  readonly counters: NetworkCounters = { sent: 0, dropped: 0, duplicated: 0, blocked: 0 };

  readonly #random: () => number;

  constructor(random: () => number, public faults: NetworkFaults) {
    this.#random = random;
  }

  send(m: Message, now: number): void {
    this.counters.sent++;
    if (this.#random() < this.faults.drop) {
      this.counters.dropped++;
      return;
    }
    this.#enqueue(m, now);
    if (this.#random() < this.faults.duplicate) {
      this.counters.duplicated++;
      this.#enqueue(m, now);
    }
  }

  #enqueue(m: Message, now: number): void {
    const span = this.faults.delayMax_ticks - this.faults.delayMin_ticks + 1;
    const at = now + this.faults.delayMin_ticks + Math.floor(this.#random() * span);
    let bucket = this.#buckets.get(at);
    if (!bucket) {
      bucket = [];
      this.#buckets.set(at, bucket);
    }
    bucket.push(m);
  }

  /** The messages due at `now` whose links are up, in a shuffled order. */
  due(now: number): Message[] {
    const bucket = this.#buckets.get(now);
    if (!bucket) return [];
    this.#buckets.delete(now);
    const out: Message[] = [];
    for (const m of bucket) {
      if (this.#blocked.has(m.from * 1000 + m.to)) this.counters.blocked++;
      else out.push(m);
    }
    if (!this.faults.reorder) return out;
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }

  block(from: NodeId, to: NodeId): void {
    this.#blocked.add(from * 1000 + to);
  }

  /** Cuts every link between the two groups, both ways. */
  split(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y);
        this.block(y, x);
      }
    }
  }

  healAll(): void {
    this.#blocked.clear();
  }

  isHealed(): boolean {
    return this.#blocked.size === 0;
  }

  describeBlocked(): string {
    return [...this.#blocked].map((k) => `${Math.floor(k / 1000)}↛${k % 1000}`).join(" ");
  }
}
