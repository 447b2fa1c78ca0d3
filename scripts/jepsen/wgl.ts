/**
 * A linearizability checker: the Wing-Gong-Lowe search (as in porcupine) over one history of
 * operations on a sequential model, with memoization of (linearized set, model state).
 *
 * The model may be nondeterministic (`step` returns every possible next state); the search then
 * runs on sets of states, as porcupine's NondeterministicModel and Knossos do. An operation
 * whose outcome is unknown (a timeout) has `output: undefined` and `ret: Infinity`: it may take
 * effect at any point after its call, or never (linearized after everything else), and the
 * model must accept any output for it.
 *
 * Linearizability is compositional, so a history of operations on independent objects is
 * checked per object: see {@link checkPartitioned}.
 *
 * @module
 */

/** A sequential specification. */
export interface Model<S, I, O> {
  /** The possible initial states. */
  init(): S[];
  /**
   * Every state the model can be in after applying `input` in `state` with the observed
   * `output` (undefined: unknown, accept any); empty when the output is impossible.
   */
  step(state: S, input: I, output: O | undefined): S[];
  /** A canonical string of a state (equal states, equal strings). */
  key(state: S): string;
}

/** One operation of a history. Times are any monotonic numbers; `ret` may be Infinity. */
export interface Operation<I, O> {
  input: I;
  output: O | undefined;
  call: number;
  ret: number;
}

/** The verdict on one history. */
export type Verdict<I, O> =
  | { result: "ok" }
  | {
    result: "illegal";
    /** The most operations any search branch could linearize. */
    longest_prefix: Operation<I, O>[];
    /** The operations none of which could be linearized next after that prefix. */
    stuck_at: Operation<I, O>[];
  }
  | { result: "unknown"; reason: string };

interface Entry {
  op: number;
  call: boolean;
  time: number;
  /** The return entry of a call entry. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

class Bitset {
  readonly words: Uint32Array;
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32));
  }
  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }
  count(): number {
    let n = 0;
    for (let w of this.words) {
      while (w !== 0) {
        w &= w - 1;
        n++;
      }
    }
    return n;
  }
  key(): string {
    return this.words.join(",");
  }
}

function lift(entry: Entry): void {
  entry.prev!.next = entry.next;
  entry.next!.prev = entry.prev;
  const match = entry.match!;
  match.prev!.next = match.next;
  if (match.next !== null) match.next.prev = match.prev;
}

function unlift(entry: Entry): void {
  const match = entry.match!;
  match.prev!.next = match;
  if (match.next !== null) match.next.prev = match;
  entry.prev!.next = entry;
  entry.next!.prev = entry;
}

/** Events in time order; at equal times calls come first (the operations overlap). */
function linkedEntries<I, O>(ops: Operation<I, O>[]): Entry {
  const events: Entry[] = [];
  ops.forEach((o, i) => {
    const ret: Entry = { op: i, call: false, time: o.ret, match: null, prev: null, next: null };
    events.push({ op: i, call: true, time: o.call, match: ret, prev: null, next: null }, ret);
  });
  events.sort((a, b) => a.time - b.time || Number(b.call) - Number(a.call));
  const head: Entry = { op: -1, call: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/**
 * Checks one history against `model`. `budget` bounds the search steps; beyond it the verdict
 * is "unknown" (the search is exponential in the worst case).
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: Operation<I, O>[],
  budget = 1_000_000,
): Verdict<I, O> {
  for (const o of ops) {
    if (!(o.call <= o.ret)) throw new Error(`operation returns before its call: ${o.call}`);
  }
  const dedupe = (states: S[]) => {
    const byKey = new Map<string, S>();
    for (const s of states) byKey.set(model.key(s), s);
    return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  };
  const head = linkedEntries(ops);
  let entry = head.next;
  let states = dedupe(model.init());
  const linearized = new Bitset(ops.length);
  const calls: { entry: Entry; states: [string, S][] }[] = [];
  const cache = new Set<string>();
  let best = { depth: -1, prefix: [] as number[], stuck: [] as number[] };
  let steps = 0;
  while (head.next !== null) {
    if (++steps > budget) {
      return { result: "unknown", reason: `search budget of ${budget} steps exhausted` };
    }
    if (entry!.call) {
      const o = ops[entry!.op];
      const next = dedupe(states.flatMap(([, s]) => model.step(s, o.input, o.output)));
      let advanced = false;
      if (next.length > 0) {
        linearized.set(entry!.op);
        const key = `${linearized.key()}|${next.map(([k]) => k).join(";")}`;
        if (!cache.has(key)) {
          cache.add(key);
          calls.push({ entry: entry!, states });
          states = next;
          lift(entry!);
          entry = head.next;
          advanced = true;
        } else linearized.clear(entry!.op);
      }
      if (!advanced) entry = entry!.next;
    } else {
      if (calls.length > best.depth) {
        const stuck: number[] = [];
        for (let e: Entry | null = head.next; e !== null && e !== entry!.next; e = e.next) {
          if (e.call) stuck.push(e.op);
        }
        best = { depth: calls.length, prefix: calls.map((c) => c.entry.op), stuck };
      }
      const top = calls.pop();
      if (top === undefined) {
        return {
          result: "illegal",
          longest_prefix: best.prefix.map((i) => ops[i]),
          stuck_at: best.stuck.map((i) => ops[i]),
        };
      }
      entry = top.entry;
      states = top.states;
      linearized.clear(entry.op);
      unlift(entry);
      entry = entry.next;
    }
  }
  return { result: "ok" };
}

/** The verdict on every partition of a history, by partition key. */
export interface PartitionedVerdict<I, O> {
  ok: boolean;
  partitions: number;
  illegal: { partition: string; verdict: Verdict<I, O> }[];
  unknown: { partition: string; reason: string }[];
}

/**
 * Checks a history of operations on independent objects one object at a time (linearizability
 * is a local property). `partition` names the object an operation acts on.
 */
export function checkPartitioned<S, I, O>(
  model: Model<S, I, O>,
  ops: Operation<I, O>[],
  partition: (op: Operation<I, O>) => string,
  budget = 1_000_000,
): PartitionedVerdict<I, O> {
  const groups = new Map<string, Operation<I, O>[]>();
  for (const o of ops) {
    const k = partition(o);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [o]);
    else group.push(o);
  }
  const out: PartitionedVerdict<I, O> = {
    ok: true,
    partitions: groups.size,
    illegal: [],
    unknown: [],
  };
  for (const [k, group] of groups) {
    const verdict = checkOperations(model, group, budget);
    if (verdict.result === "illegal") out.illegal.push({ partition: k, verdict });
    if (verdict.result === "unknown") out.unknown.push({ partition: k, reason: verdict.reason });
  }
  out.ok = out.illegal.length === 0 && out.unknown.length === 0;
  return out;
}
