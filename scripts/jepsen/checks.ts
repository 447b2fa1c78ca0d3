/**
 * The checkers over a run's history:
 *
 * a. linearizability of the job operations (per idempotency key; local reads are not checked,
 *    they may be stale by design);
 * b. no acknowledged create is lost: every job a create returned is in the final state unless
 *    a delete of it was sent;
 * c. firing: every occurrence of a job that must fire is delivered at least once within
 *    `firing_bound_ms` of the moment it could fire (its time, or the heal of the fault that
 *    covered its time); every delivery of one occurrence carries the same Idempotency-Key; an
 *    occurrence is delivered fresh (not marked as a redelivery, first attempt) at most once;
 *    redeliveries are counted;
 * d. no delivery of a job after its cancel or delete was acknowledged, beyond the one in flight;
 * e. every member ends with the same state;
 * f. no node died or stopped answering (no process ended on its own, each answers /health and
 *    catches up with the leader's commit after the heal, no log line says a vital loop stopped),
 *    and no hostile request got a 5xx other than 503 with `Retry-After`.
 *
 * @module
 */
import { jobModel, type JobOpInput, type JobOpOutput, phaseOf } from "./model.ts";
import type { Delivery, History, HistoryOp } from "./history.ts";
import type { HostileRecord } from "./hostile.ts";
import { checkPartitioned, type Operation, type PartitionedVerdict } from "./wgl.ts";

/** A job as the final state shows it. */
export interface FinalJob {
  id: string;
  key: string | null;
  kind: string;
  status: string;
  next_run_at: string | null;
  run_count: number;
}

/** What the harness read at the end. */
export interface FinalState {
  /** The leader's jobs (linearizable), by id. */
  jobs: Map<string, FinalJob>;
  /** Each member's jobs (local reads once applied indexes agreed), as canonical lines. */
  per_node: Map<string, string[]>;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  summary: string;
  /** Up to 20 concrete violations. */
  violations: string[];
}

/** Measures reported besides the verdicts. */
export interface FiringStats {
  occurrences_expected: number;
  delivered: number;
  deliveries: number;
  redeliveries: number;
  /** Longest delay from the moment an occurrence could fire to its first delivery. */
  longest_delay_ms: number;
  /** Longest delay after the final heal, for occurrences due before it. */
  longest_delay_after_heal_ms: number;
  /**
   * One-offs first delivered more than a second before their time, by the harness's clock (a
   * leader whose wall clock jumped forward); counted, not a violation.
   */
  early: number;
  /** How long before its time the earliest of those arrived. */
  earliest_ms: number;
}

const LIMIT = 20;

/** The ops of the history as checker operations, each tagged with its key. */
export function toOperations(
  ops: HistoryOp[],
): { ops: Operation<JobOpInput, JobOpOutput>[]; keyOf: Map<object, string> } {
  const idKey = new Map<string, string>();
  for (const op of ops) {
    for (const [i, job] of (op.jobs ?? []).entries()) idKey.set(job.id, op.items![i].key);
  }
  const out: Operation<JobOpInput, JobOpOutput>[] = [];
  const keyOf = new Map<object, string>();
  const add = (o: Operation<JobOpInput, JobOpOutput>, key: string) => {
    out.push(o);
    keyOf.set(o, key);
  };
  for (const op of ops) {
    if (op.type === "fail" || op.f === "get_local") continue;
    const ret = op.type === "ok" ? op.complete_ms : Infinity;
    if (op.f === "create" || op.f === "batch") {
      op.items!.forEach((item, i) => {
        const job = op.jobs?.[i];
        add({
          input: { f: "create", recurring: item.recurring },
          output: job === undefined ? undefined : { f: "create", ...job },
          call: op.invoke_ms,
          ret,
        }, item.key);
      });
      continue;
    }
    const key = idKey.get(op.id!);
    if (key === undefined) continue;
    if (op.f === "get") {
      if (op.type !== "ok") continue; // a read without an answer changes nothing
      add({
        input: { f: "get", id: op.id! },
        output: op.job_status === null
          ? { f: "get", found: false }
          : { f: "get", found: true, phase: phaseOf(op.job_status!) },
        call: op.invoke_ms,
        ret,
      }, key);
    } else if (op.f === "cancel") {
      add({
        input: { f: "cancel", id: op.id! },
        output: op.type === "ok" ? { f: "cancel", code: op.status as 200 | 404 | 409 } : undefined,
        call: op.invoke_ms,
        ret,
      }, key);
    } else {
      add({
        input: { f: "delete", id: op.id! },
        output: op.type === "ok" ? { f: "delete", code: op.status as 200 | 404 } : undefined,
        call: op.invoke_ms,
        ret,
      }, key);
    }
  }
  return { ops: out, keyOf };
}

/** a. */
export function checkLinearizable(
  h: History,
): CheckResult & { verdict: PartitionedVerdict<JobOpInput, JobOpOutput> } {
  const { ops, keyOf } = toOperations(h.ops);
  const verdict = checkPartitioned(jobModel, ops, (o) => keyOf.get(o)!, 200_000);
  const violations = verdict.illegal.slice(0, LIMIT).map(({ partition, verdict: v }) =>
    `key ${partition}: ${JSON.stringify(v).slice(0, 1_500)}`
  ).concat(verdict.unknown.slice(0, LIMIT).map((u) => `key ${u.partition}: ${u.reason}`));
  return {
    name: "linearizability",
    ok: verdict.ok,
    summary:
      `${ops.length} operations on ${verdict.partitions} keys; ${verdict.illegal.length} keys not linearizable, ${verdict.unknown.length} undecided`,
    violations,
    verdict,
  };
}

/** b. */
export function checkNoLostCreates(h: History, final: FinalState): CheckResult {
  const deleteSent = new Set(
    h.ops.filter((o) => o.f === "delete" && o.type !== "fail").map((o) => o.id!),
  );
  const acked = new Set<string>();
  for (const op of h.ops) for (const job of op.jobs ?? []) acked.add(job.id);
  const lost = [...acked].filter((id) => !deleteSent.has(id) && !final.jobs.has(id));
  return {
    name: "no lost acknowledged create",
    ok: lost.length === 0,
    summary: `${acked.size} jobs acknowledged, ${lost.length} lost`,
    violations: lost.slice(0, LIMIT).map((id) => `job ${id} acknowledged, never deleted, missing`),
  };
}

/** The moment an occurrence due at `due` could fire: after the fault covering `due` healed. */
function readyAt(h: History, due: number): number {
  let ready = due;
  for (const e of h.nemesis) {
    // A transfer stops nothing; a worker fault does not touch webhook firing.
    if (e.kind === "transfer" || e.kind.startsWith("worker-")) continue;
    if (e.start_ms <= ready && ready <= e.end_ms) ready = e.end_ms;
  }
  return ready;
}

/** c. */
export function checkFiring(
  h: History,
  final: FinalState,
  firing_bound_ms: number,
): { results: CheckResult[]; stats: FiringStats } {
  const byJob = new Map<string, Delivery[]>();
  for (const d of h.deliveries) {
    const list = byJob.get(d.job_id);
    if (list === undefined) byJob.set(d.job_id, [d]);
    else list.push(d);
  }
  const touched = new Set(
    h.ops.filter((o) => (o.f === "cancel" || o.f === "delete") && o.type !== "fail").map((o) =>
      o.id!
    ),
  );
  // Jobs that must fire: one-offs due before the workload ended that no cancel or delete was
  // ever sent for, whether their create was acknowledged or only found in the final state.
  // Worker jobs have no webhook: the worker checkers (worker_checks.ts) look at them.
  const items = new Map<string, { due_ms: number; recurring: boolean; worker?: unknown }>();
  for (const op of h.ops) for (const item of op.items ?? []) items.set(item.key, item);
  const mustFire = new Map<string, number>();
  for (const op of h.ops) {
    for (const [i, job] of (op.jobs ?? []).entries()) {
      const item = op.items![i];
      if (!item.recurring && item.worker === undefined && !touched.has(job.id)) {
        mustFire.set(job.id, item.due_ms);
      }
    }
  }
  for (const job of final.jobs.values()) {
    const item = job.key === null ? undefined : items.get(job.key);
    if (
      item !== undefined && !item.recurring && item.worker === undefined && !touched.has(job.id)
    ) {
      mustFire.set(job.id, item.due_ms);
    }
  }
  const late: string[] = [];
  const missing: string[] = [];
  let delivered = 0;
  let longest = 0;
  let longestAfterHeal = 0;
  let early = 0;
  let earliest = 0;
  for (const [id, due] of mustFire) {
    if (due > h.workload_end_ms) continue;
    const first = byJob.get(id)?.reduce((a, b) => (a.arrival_ms <= b.arrival_ms ? a : b));
    if (first === undefined) {
      missing.push(`job ${id} due at ${due} ms never delivered`);
      continue;
    }
    delivered++;
    if (first.arrival_ms < due - 1_000) {
      early++;
      earliest = Math.max(earliest, due - first.arrival_ms);
    }
    const delay = first.arrival_ms - readyAt(h, due);
    longest = Math.max(longest, delay);
    if (due <= h.healed_ms) {
      longestAfterHeal = Math.max(longestAfterHeal, first.arrival_ms - h.healed_ms);
    }
    if (delay > firing_bound_ms) {
      late.push(
        `job ${id} due at ${due} ms first delivered at ${first.arrival_ms} ms (${delay} ms)`,
      );
    }
  }
  // Occurrences: (job, scheduled time) → deliveries.
  const occurrences = new Map<string, Delivery[]>();
  for (const d of h.deliveries) {
    const k = `${d.job_id}@${d.scheduled_at_ms}`;
    const list = occurrences.get(k);
    if (list === undefined) occurrences.set(k, [d]);
    else list.push(d);
  }
  const keyMismatch: string[] = [];
  const doubleFresh: string[] = [];
  let redeliveries = 0;
  for (const [k, list] of occurrences) {
    const keys = new Set(list.map((d) => d.idempotency_key));
    if (keys.size !== 1 || list[0].idempotency_key === null) {
      keyMismatch.push(`${k}: keys ${JSON.stringify([...keys])}`);
    }
    redeliveries += list.length - 1;
    const fresh = list.filter((d) => !d.redelivery && d.attempt <= 1);
    if (fresh.length > 1) {
      doubleFresh.push(
        `${k}: fresh deliveries at ${
          fresh.map((d) => `${d.arrival_ms} ms from ${d.sender ?? "?"}`)
        }`,
      );
    }
  }
  const expected = [...mustFire.values()].filter((due) => due <= h.workload_end_ms).length;
  return {
    results: [
      {
        name: "every due occurrence delivered",
        ok: missing.length === 0 && late.length === 0,
        summary:
          `${expected} one-off jobs had to fire; ${delivered} delivered, ${missing.length} never, ${late.length} later than ${firing_bound_ms} ms after they could fire`,
        violations: [...missing, ...late].slice(0, LIMIT),
      },
      {
        name: "one Idempotency-Key per occurrence",
        ok: keyMismatch.length === 0,
        summary:
          `${occurrences.size} occurrences delivered, ${keyMismatch.length} with more than one key`,
        violations: keyMismatch.slice(0, LIMIT),
      },
      {
        name: "no occurrence fired twice",
        ok: doubleFresh.length === 0,
        summary:
          `${doubleFresh.length} occurrences delivered fresh (first attempt, not a redelivery) more than once`,
        violations: doubleFresh.slice(0, LIMIT),
      },
    ],
    stats: {
      occurrences_expected: expected,
      delivered,
      deliveries: h.deliveries.length,
      redeliveries,
      longest_delay_ms: Math.round(longest),
      longest_delay_after_heal_ms: Math.round(longestAfterHeal),
      early,
      earliest_ms: Math.round(earliest),
    },
  };
}

/** How late after an acknowledged cancel or delete a delivery in flight may still arrive. */
const IN_FLIGHT_GRACE_MS = 2_000;

/** d. */
export function checkNoFiringAfterStop(h: History): CheckResult {
  const stoppedAt = new Map<string, number>();
  for (const op of h.ops) {
    if (op.type !== "ok" || op.status !== 200) continue;
    if (op.f !== "cancel" && op.f !== "delete") continue;
    const at = stoppedAt.get(op.id!);
    if (at === undefined || op.complete_ms < at) stoppedAt.set(op.id!, op.complete_ms);
  }
  const violations: string[] = [];
  for (const [id, at] of stoppedAt) {
    const after = h.deliveries.filter((d) => d.job_id === id && d.arrival_ms > at);
    const occurrences = new Set(after.map((d) => d.scheduled_at_ms));
    const bad = after.filter((d) =>
      d.scheduled_at_ms > at || d.arrival_ms > at + IN_FLIGHT_GRACE_MS || occurrences.size > 1
    );
    if (bad.length > 0) {
      violations.push(
        `job ${id} stopped at ${at} ms, delivered after: ${
          bad.map((d) => `${d.arrival_ms} ms (occurrence ${d.scheduled_at_ms})`).join(", ")
        }`,
      );
    }
  }
  return {
    name: "no delivery after an acknowledged cancel or delete",
    ok: violations.length === 0,
    summary:
      `${stoppedAt.size} jobs cancelled or deleted with an acknowledgement; ${violations.length} delivered afterwards (beyond one occurrence in flight within ${IN_FLIGHT_GRACE_MS} ms)`,
    violations: violations.slice(0, LIMIT),
  };
}

/** e. */
export function checkSameState(final: FinalState): CheckResult {
  const entries = [...final.per_node];
  const violations: string[] = [];
  if (entries.length === 0) violations.push("no node's state could be read");
  const [first, lines] = entries[0] ?? ["", []];
  for (const [name, other] of entries.slice(1)) {
    const a = new Set(lines);
    const b = new Set(other);
    const onlyA = lines.filter((l) => !b.has(l));
    const onlyB = other.filter((l) => !a.has(l));
    if (onlyA.length > 0 || onlyB.length > 0) {
      violations.push(
        `${first} vs ${name}: ${onlyA.length} lines only on ${first} (${
          onlyA.slice(0, 2).join("; ")
        }), ${onlyB.length} only on ${name} (${onlyB.slice(0, 2).join("; ")})`,
      );
    }
  }
  return {
    name: "all nodes end with the same state",
    ok: violations.length === 0,
    summary: `${entries.length} members compared over ${lines.length} jobs`,
    violations,
  };
}

/**
 * Whether an answer to a hostile request is one the API may give: no 5xx but 503 with
 * Retry-After. An answer the harness's proxy made up (a fault, relayed by a forwarding node) is
 * not the node's.
 */
export function acceptableAnswer(r: HostileRecord): boolean {
  if (r.status === null || r.status < 500 || r.proxy !== undefined) return true;
  return r.status === 503 && r.retry_after === true;
}

/** f. */
export function checkNodesSurvive(
  h: Pick<History, "hostile" | "node_exits" | "probes">,
): CheckResult {
  const violations: string[] = [];
  for (const e of h.node_exits) {
    violations.push(
      `${e.node} ended on its own at ${e.at_ms} ms (${
        e.signal === null ? `exit code ${e.code}` : `signal ${e.signal}`
      })`,
    );
  }
  for (const p of h.probes) {
    if (p.health_status !== 200) {
      violations.push(
        `${p.node}: GET /health ${
          p.health_status === null ? "did not answer" : `answered ${p.health_status}`
        } after the heal`,
      );
    }
    if (p.applied_index === null) {
      violations.push(`${p.node}: GET /debug/cluster did not answer after the heal`);
    } else if (p.target_index === null || p.applied_index < p.target_index) {
      violations.push(
        `${p.node}: applied index ${p.applied_index} never reached the leader's commit ${
          p.target_index ?? "(no leader known)"
        } after the heal (its /health said ${p.health ?? "nothing"})`,
      );
    }
    for (const line of p.fatal_lines) violations.push(`${p.node} log: ${line.slice(0, 300)}`);
  }
  const bad = h.hostile.filter((r) => !acceptableAnswer(r));
  for (const r of bad.slice(0, LIMIT)) {
    violations.push(
      `${r.kind} to ${r.node} at ${r.at_ms} ms (${r.what}: ${r.method} ${
        r.path.slice(0, 60)
      }): HTTP ${r.status}${r.status === 503 ? " without Retry-After" : ""}`,
    );
  }
  const stuck =
    h.probes.filter((p) =>
      p.health_status !== 200 || p.applied_index === null || p.target_index === null ||
      p.applied_index < p.target_index || p.fatal_lines.length > 0
    ).length;
  return {
    name: "no node died or stopped answering",
    ok: violations.length === 0,
    summary: `${h.node_exits.length} nodes ended on their own, ${stuck} of ${h.probes.length} ` +
      `unhealthy or stuck after the heal; ${h.hostile.length} hostile requests, ${bad.length} ` +
      `answered 5xx (other than 503 with Retry-After)`,
    violations: violations.slice(0, LIMIT),
  };
}
