/**
 * The timing engine: a min-heap of keyed due times driven by an injected `Clock`.
 *
 * One clock timer is armed, at the earliest due time; nothing polls. The heap stores slot numbers
 * in an Int32Array; each slot's due time, tie-break sequence and heap position live in typed
 * arrays, and a Map takes a key to its slot (slots never move, so sifting touches no Map). About
 * 20 bytes per entry in typed arrays plus the Map entry and the key string.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock.ts";

/** The longest delay runtimes accept for a timer; longer waits re-arm when this one fires. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const INITIAL_CAPACITY = 1_024;

/**
 * A set of keys, each with a due time, that tells its consumer when entries fall due.
 *
 * Wake contract:
 * - `onWake` is only ever called from the clock timer (never synchronously inside `set`,
 *   `delete` or `takeDue`), and only when the earliest entry is due (`due_ms <= clock.now()`).
 * - After a wake no timer is armed: `onWake` is not called again, however many entries fall due,
 *   until `takeDue` is called or `set` gives the queue a new earliest entry.
 * - `takeDue` re-arms for the earliest remaining entry, with no delay when it is already due
 *   (because `limit` left due entries behind), so a consumer that takes a bounded batch per wake is
 *   called back for the rest on a later turn of the event loop.
 * - So the consumer calls `takeDue(capacity)` on wake, and calls it again when capacity frees up;
 *   a consumer without capacity should not call `takeDue` (it would be woken again at once).
 * - A timer made stale by `delete` or by moving the earliest entry later fires early and silently
 *   re-arms; delays over `MAX_TIMER_DELAY_MS` are clamped and re-armed the same way.
 *
 * Among equal due times, entries come out in the order of the `set` call that gave them their
 * current due time (FIFO).
 *
 * `onWake` must not throw: it runs inside a clock timer callback.
 */
export class TimerQueue {
  readonly #clock: Clock;
  readonly #onWake: () => void;
  readonly #slots = new Map<string, number>();
  #keys: (string | undefined)[] = [];
  #due_ms = new Float64Array(INITIAL_CAPACITY);
  #seq = new Float64Array(INITIAL_CAPACITY);
  #heap_pos = new Int32Array(INITIAL_CAPACITY);
  #heap = new Int32Array(INITIAL_CAPACITY);
  #free = new Int32Array(INITIAL_CAPACITY);
  #free_count = 0;
  #slot_count = 0;
  #size = 0;
  #next_seq = 0;
  #timer: TimerHandle | null = null;
  /** Due time the armed timer is for (it may fire earlier when clamped). */
  #armed_due_ms = 0;
  #stopped = false;

  /** `onWake` is called from the clock timer when at least one entry is due; see the class doc. */
  constructor(clock: Clock, onWake: () => void) {
    this.#clock = clock;
    this.#onWake = onWake;
  }

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** Whether `key` has an entry. */
  has(key: string): boolean {
    return this.#slots.has(key);
  }

  /** The due time of `key`, or null when it has no entry. */
  dueOf(key: string): number | null {
    const slot = this.#slots.get(key);
    return slot === undefined ? null : this.#due_ms[slot];
  }

  /** Earliest due time, or null when empty. */
  nextDue(): number | null {
    return this.#size === 0 ? null : this.#due_ms[this.#heap[0]];
  }

  /**
   * Inserts `key` due at `due_ms`, or moves it there. O(log n). Re-arms the clock timer when the
   * entry becomes the earliest and is earlier than what the timer is armed for (or none is).
   */
  set(key: string, due_ms: number): void {
    if (Number.isNaN(due_ms)) throw new RangeError(`due_ms must be a number, got ${due_ms}`);
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = this.#allocSlot(key);
      this.#slots.set(key, slot);
      this.#due_ms[slot] = due_ms;
      this.#seq[slot] = this.#next_seq++;
      const pos = this.#size++;
      this.#heap[pos] = slot;
      this.#heap_pos[slot] = pos;
      this.#siftUp(pos);
    } else {
      this.#due_ms[slot] = due_ms;
      this.#seq[slot] = this.#next_seq++;
      const pos = this.#heap_pos[slot];
      this.#siftUp(pos);
      this.#siftDown(this.#heap_pos[slot]);
    }
    if (this.#heap[0] === slot && (this.#timer === null || due_ms < this.#armed_due_ms)) {
      this.#arm();
    }
  }

  /** Removes `key`; false when it had no entry. O(log n). Does not re-arm (see the class doc). */
  delete(key: string): boolean {
    const slot = this.#slots.get(key);
    if (slot === undefined) return false;
    this.#removeAt(this.#heap_pos[slot]);
    return true;
  }

  /**
   * Pops up to `limit` entries with `due_ms <= clock.now()`, earliest first (FIFO among equal due
   * times), then re-arms the clock timer for the earliest remaining entry.
   */
  takeDue(limit: number): { key: string; due_ms: number }[] {
    const now_ms = this.#clock.now();
    const out: { key: string; due_ms: number }[] = [];
    while (out.length < limit && this.#size > 0) {
      const slot = this.#heap[0];
      const due_ms = this.#due_ms[slot];
      if (due_ms > now_ms) break;
      out.push({ key: this.#keys[slot] as string, due_ms });
      this.#removeAt(0);
    }
    this.#disarm();
    this.#arm();
    return out;
  }

  /** Removes every entry and disarms the clock timer. */
  clear(): void {
    this.#disarm();
    this.#slots.clear();
    this.#keys = [];
    this.#size = 0;
    this.#slot_count = 0;
    this.#free_count = 0;
  }

  /** Disarms the clock timer for good: entries can still be changed and taken, nothing wakes. */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
  }

  #arm(): void {
    if (this.#stopped || this.#size === 0) return;
    this.#disarm();
    const due_ms = this.#due_ms[this.#heap[0]];
    const delay_ms = Math.min(Math.max(0, due_ms - this.#clock.now()), MAX_TIMER_DELAY_MS);
    this.#armed_due_ms = due_ms;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), delay_ms);
  }

  #disarm(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #fire(): void {
    this.#timer = null;
    if (this.#size === 0) return;
    if (this.#due_ms[this.#heap[0]] > this.#clock.now()) this.#arm();
    else this.#onWake();
  }

  #allocSlot(key: string): number {
    let slot: number;
    if (this.#free_count > 0) {
      slot = this.#free[--this.#free_count];
    } else {
      slot = this.#slot_count++;
      if (slot === this.#due_ms.length) this.#grow();
    }
    this.#keys[slot] = key;
    return slot;
  }

  #grow(): void {
    const capacity = this.#due_ms.length * 2;
    const grow64 = (a: Float64Array) => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    const grow32 = (a: Int32Array) => {
      const b = new Int32Array(capacity);
      b.set(a);
      return b;
    };
    this.#due_ms = grow64(this.#due_ms);
    this.#seq = grow64(this.#seq);
    this.#heap_pos = grow32(this.#heap_pos);
    this.#heap = grow32(this.#heap);
    this.#free = grow32(this.#free);
  }

  #removeAt(pos: number): void {
    const slot = this.#heap[pos];
    this.#slots.delete(this.#keys[slot] as string);
    this.#keys[slot] = undefined;
    this.#free[this.#free_count++] = slot;
    const last = --this.#size;
    if (pos === last) return;
    const moved = this.#heap[last];
    this.#heap[pos] = moved;
    this.#heap_pos[moved] = pos;
    this.#siftUp(pos);
    this.#siftDown(this.#heap_pos[moved]);
  }

  /** Whether slot `a` comes out before slot `b`. */
  #before(a: number, b: number): boolean {
    const da = this.#due_ms[a];
    const db = this.#due_ms[b];
    return da < db || (da === db && this.#seq[a] < this.#seq[b]);
  }

  #siftUp(pos: number): void {
    const heap = this.#heap;
    const slot = heap[pos];
    while (pos > 0) {
      const parent_pos = (pos - 1) >> 1;
      const parent = heap[parent_pos];
      if (!this.#before(slot, parent)) break;
      heap[pos] = parent;
      this.#heap_pos[parent] = pos;
      pos = parent_pos;
    }
    heap[pos] = slot;
    this.#heap_pos[slot] = pos;
  }

  #siftDown(pos: number): void {
    const heap = this.#heap;
    const size = this.#size;
    const slot = heap[pos];
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= size) break;
      const right = left + 1;
      const child_pos = right < size && this.#before(heap[right], heap[left]) ? right : left;
      const child = heap[child_pos];
      if (!this.#before(child, slot)) break;
      heap[pos] = child;
      this.#heap_pos[child] = pos;
      pos = child_pos;
    }
    heap[pos] = slot;
    this.#heap_pos[slot] = pos;
  }
}
