/**
 * The linearizability checker on histories whose verdict is known: a register (the classic
 * examples) and the per-key job model (lost creates, broken idempotency, stale reads after a
 * cancel or delete, operations whose answer was lost), and the checker that no node died or
 * stopped answering under hostile requests.
 */
import assert from "node:assert/strict";
import { checkNodesSurvive } from "../../scripts/jepsen/checks.ts";
import type { NodeExit, NodeProbe } from "../../scripts/jepsen/history.ts";
import type { HostileRecord } from "../../scripts/jepsen/hostile.ts";
import { jobModel, type JobOpInput, type JobOpOutput } from "../../scripts/jepsen/model.ts";
import {
  checkOperations,
  checkPartitioned,
  type Model,
  type Operation,
} from "../../scripts/jepsen/wgl.ts";

type RegIn = { f: "w"; v: number } | { f: "r" };
type RegOut = { v: number } | Record<never, never>;

/** A read/write register starting at 0. */
const register: Model<number, RegIn, RegOut> = {
  init: () => [0],
  step: (s, input, output) => {
    if (input.f === "w") return [input.v];
    if (output === undefined) return [s];
    return (output as { v: number }).v === s ? [s] : [];
  },
  key: (s) => String(s),
};

const w = (v: number, call: number, ret: number): Operation<RegIn, RegOut> => ({
  input: { f: "w", v },
  output: ret === Infinity ? undefined : {},
  call,
  ret,
});
const r = (v: number, call: number, ret: number): Operation<RegIn, RegOut> => ({
  input: { f: "r" },
  output: { v },
  call,
  ret,
});

Deno.test("register: a read overlapping a write may see either value", () => {
  assert.equal(checkOperations(register, [w(1, 0, 10), r(0, 1, 4), r(1, 5, 15)]).result, "ok");
  assert.equal(checkOperations(register, [w(1, 0, 10), r(0, 1, 4), r(0, 5, 9)]).result, "ok");
  assert.equal(checkOperations(register, [w(1, 0, 10), r(1, 1, 4), r(1, 5, 15)]).result, "ok");
});

Deno.test("register: a stale read after the new value was seen is illegal", () => {
  const verdict = checkOperations(register, [w(1, 0, 10), r(1, 11, 12), r(0, 13, 14)]);
  assert.equal(verdict.result, "illegal");
  if (verdict.result !== "illegal") return;
  assert.deepEqual(verdict.longest_prefix.map((o) => o.call), [0, 11]);
  assert.deepEqual(verdict.stuck_at.map((o) => o.call), [13]);
});

Deno.test("register: a read of a value never written is illegal", () => {
  assert.equal(checkOperations(register, [w(1, 0, 1), r(2, 2, 3)]).result, "illegal");
});

Deno.test("register: a timed-out write may take effect later, or never, but not un-happen", () => {
  assert.equal(checkOperations(register, [w(1, 0, Infinity), r(0, 5, 6), r(1, 7, 8)]).result, "ok");
  assert.equal(checkOperations(register, [w(1, 0, Infinity), r(0, 5, 6), r(0, 7, 8)]).result, "ok");
  assert.equal(
    checkOperations(register, [w(1, 0, Infinity), r(1, 5, 6), r(0, 7, 8)]).result,
    "illegal",
  );
  assert.equal(
    checkOperations(register, [r(1, 0, 1), w(1, 2, Infinity)]).result,
    "illegal",
    "a lost write cannot take effect before its call",
  );
});

Deno.test("register: many concurrent writes and reads are searched within the budget", () => {
  const ops: Operation<RegIn, RegOut>[] = [];
  for (let i = 0; i < 12; i++) ops.push(w(i + 1, i, 100 + i));
  ops.push(r(12, 50, 200), r(7, 60, 70));
  assert.equal(checkOperations(register, ops).result, "ok");
  assert.equal(checkOperations(register, ops, 5).result, "unknown");
});

// ------------------------------------------------------------------------------ the job model

type JobOp = Operation<JobOpInput, JobOpOutput>;

const create = (
  call: number,
  ret: number,
  id?: string,
  created = true,
  recurring = false,
): JobOp => ({
  input: { f: "create", recurring },
  output: id === undefined ? undefined : { f: "create", id, created },
  call,
  ret: id === undefined ? Infinity : ret,
});
const get = (id: string, call: number, ret: number, phase: string | null): JobOp => ({
  input: { f: "get", id },
  output: phase === null
    ? { f: "get", found: false }
    : { f: "get", found: true, phase: phase as "open" },
  call,
  ret,
});
const cancel = (id: string, call: number, ret: number, code?: 200 | 404 | 409): JobOp => ({
  input: { f: "cancel", id },
  output: code === undefined ? undefined : { f: "cancel", code },
  call,
  ret: code === undefined ? Infinity : ret,
});
const del = (id: string, call: number, ret: number, code?: 200 | 404): JobOp => ({
  input: { f: "delete", id },
  output: code === undefined ? undefined : { f: "delete", code },
  call,
  ret: code === undefined ? Infinity : ret,
});
const verdict = (ops: JobOp[]) => checkOperations(jobModel, ops).result;

Deno.test("job model: a job's whole life, sequentially, is linearizable", () => {
  assert.equal(
    verdict([
      create(0, 10, "X"),
      get("X", 11, 12, "open"),
      cancel("X", 13, 14, 200),
      get("X", 15, 16, "cancelled"),
      cancel("X", 17, 18, 409),
      del("X", 19, 20, 200),
      get("X", 21, 22, null),
      del("X", 23, 24, 404),
      create(25, 26, "Y"),
      get("Y", 27, 28, "open"),
      get("X", 29, 30, null),
    ]),
    "ok",
  );
});

Deno.test("job model: an acknowledged create that a later read misses is lost", () => {
  assert.equal(verdict([create(0, 10, "X"), get("X", 11, 12, null)]), "illegal");
  assert.equal(verdict([create(0, 10, "X"), get("X", 5, 12, null)]), "ok", "overlapping read");
});

Deno.test("job model: two jobs created for one key break idempotency", () => {
  assert.equal(verdict([create(0, 10, "X"), create(11, 20, "Y")]), "illegal");
  assert.equal(verdict([create(0, 10, "X"), create(5, 20, "Y")]), "illegal", "even overlapping");
  assert.equal(verdict([create(0, 10, "X"), create(11, 20, "Y", false)]), "illegal", "replay id");
});

Deno.test("job model: a replay overlapping its create is linearizable, one before it is not", () => {
  assert.equal(verdict([create(0, 10, "X"), create(1, 9, "X", false)]), "ok");
  assert.equal(verdict([create(0, 1, "X", false), create(2, 3, "X")]), "illegal");
});

Deno.test("job model: a lost create's job shows up through a replay and then reads", () => {
  assert.equal(
    verdict([create(0, 0), create(5, 6, "X", false), get("X", 7, 8, "open")]),
    "ok",
  );
  assert.equal(
    verdict([create(0, 0), get("X", 3, 4, "open"), create(5, 6, "X", false)]),
    "ok",
    "a read may bind the unseen id first",
  );
  assert.equal(
    verdict([create(0, 0), create(5, 6, "X", false), create(7, 8, "Y", false)]),
    "illegal",
    "but only to one id",
  );
  assert.equal(verdict([create(0, 0), create(5, 6, "X")]), "ok", "or it never took effect");
});

Deno.test("job model: after an acknowledged cancel no read shows the job open", () => {
  assert.equal(
    verdict([create(0, 1, "X"), cancel("X", 2, 3, 200), get("X", 4, 5, "open")]),
    "illegal",
  );
  assert.equal(
    verdict([create(0, 1, "X"), cancel("X", 2, 3), get("X", 4, 5, "open")]),
    "ok",
    "a lost cancel may not have happened yet",
  );
  assert.equal(
    verdict([
      create(0, 1, "X"),
      cancel("X", 2, 3),
      get("X", 4, 5, "cancelled"),
      get("X", 6, 7, "open"),
    ]),
    "illegal",
    "but once seen it stays",
  );
});

Deno.test("job model: a one-off finishes on its own, a recurring job does not", () => {
  assert.equal(
    verdict([create(0, 1, "X"), get("X", 2, 3, "finished"), cancel("X", 4, 5, 409)]),
    "ok",
  );
  assert.equal(
    verdict([create(0, 1, "X"), get("X", 2, 3, "finished"), cancel("X", 4, 5, 200)]),
    "illegal",
  );
  assert.equal(
    verdict([create(0, 1, "X"), get("X", 2, 3, "finished"), get("X", 4, 5, "open")]),
    "illegal",
  );
  assert.equal(
    verdict([create(0, 1, "X", true, true), get("X", 2, 3, "finished")]),
    "illegal",
  );
  assert.equal(verdict([create(0, 1, "X", true, true), cancel("X", 2, 3, 409)]), "illegal");
});

Deno.test("job model: a deleted job is never read again; a lost delete may land late", () => {
  assert.equal(
    verdict([create(0, 1, "X"), del("X", 2, 3, 200), get("X", 4, 5, "open")]),
    "illegal",
  );
  assert.equal(
    verdict([create(0, 1, "X"), del("X", 2, 3), get("X", 4, 5, "open"), get("X", 6, 7, null)]),
    "ok",
  );
  assert.equal(
    verdict([create(0, 1, "X"), del("X", 2, 3), get("X", 4, 5, null), get("X", 6, 7, "open")]),
    "illegal",
  );
  assert.equal(
    verdict([create(0, 1, "X"), del("X", 2, 3, 200), create(4, 5, "X", false)]),
    "illegal",
    "a freed key cannot replay the deleted job",
  );
});

Deno.test("job model: partitions are checked one key at a time and named when illegal", () => {
  const keyOf = new Map<JobOp, string>();
  const tag = (key: string, ops: JobOp[]) => {
    for (const o of ops) keyOf.set(o, key);
    return ops;
  };
  const ops = [
    ...tag("k1", [create(0, 10, "A"), get("A", 11, 12, "open")]),
    ...tag("k2", [create(1, 9, "B"), get("B", 13, 14, null)]),
    ...tag("k3", [create(2, 2), create(3, 4, "C", false)]),
  ];
  const result = checkPartitioned(jobModel, ops, (o) => keyOf.get(o)!);
  assert.equal(result.ok, false);
  assert.equal(result.partitions, 3);
  assert.deepEqual(result.illegal.map((i) => i.partition), ["k2"]);
});

// ------------------------------------------------------------------ nodes survive hostile input

const probe = (node: string, over: Partial<NodeProbe> = {}): NodeProbe => ({
  node,
  health_status: 200,
  health: "ok",
  applied_index: 40,
  target_index: 40,
  fatal_lines: [],
  ...over,
});
const hostile = (status: number | null, over: Partial<HostileRecord> = {}): HostileRecord => ({
  at_ms: 1,
  complete_ms: 2,
  node: "n1",
  kind: "types",
  what: "name: []",
  method: "POST",
  path: "/jobs",
  body_bytes: 10,
  status,
  ...over,
});
const survive = (
  hostileRecords: HostileRecord[],
  probes: NodeProbe[] = [probe("n1"), probe("n2")],
  node_exits: NodeExit[] = [],
) => checkNodesSurvive({ hostile: hostileRecords, probes, node_exits });

Deno.test("nodes survive: 4xx, 503 with Retry-After and no answer are fine", () => {
  const result = survive([
    hostile(400),
    hostile(413),
    hostile(404),
    hostile(503, { retry_after: true }),
    hostile(null, { error: "connection refused" }),
    hostile(502, { proxy: "node down" }),
  ]);
  assert.equal(result.ok, true, result.violations.join("\n"));
});

Deno.test("nodes survive: a 500, a 502 of the node's own, a 503 without Retry-After fail", () => {
  for (const bad of [hostile(500), hostile(502), hostile(503, { retry_after: false })]) {
    const result = survive([hostile(400), bad]);
    assert.equal(result.ok, false, `HTTP ${bad.status} passed`);
    assert.match(result.violations[0], new RegExp(`HTTP ${bad.status}`));
  }
});

Deno.test("nodes survive: a dead, silent, stuck or fatally logging node fails", () => {
  const cases: [string, NodeProbe[], NodeExit[]][] = [
    ["exited", [probe("n1")], [{ node: "n2", at_ms: 5, code: null, signal: "SIGSEGV" }]],
    ["no /health", [probe("n1"), probe("n2", { health_status: null, health: null })], []],
    ["stuck", [probe("n1"), probe("n2", { applied_index: 12 })], []],
    ["no leader", [probe("n1", { target_index: null })], []],
    ["fatal line", [probe("n1", { fatal_lines: ["raft log failed; the node stops"] })], []],
  ];
  for (const [what, probes, exits] of cases) {
    assert.equal(survive([hostile(400)], probes, exits).ok, false, what);
  }
});
