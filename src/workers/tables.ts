/**
 * The SQL of the workers sub-machine, which owns the `workers` and `allocations` tables (their
 * schema and migration are in `src/db/`): the statements its state machine
 * (`src/workers/state.ts`) writes, the queries it rebuilds its index from, and the reads of the
 * API. Statement texts are fixed strings, so the storage layer can prepare each once.
 *
 * @module
 */
import type { InStatement, Row } from "@libsql/client/node";
import { CorruptDataError, FIX_SINGLE_NODE } from "../db/corrupt.ts";
import type { Database } from "../db/open.ts";
import type { NewAllocation } from "./commands.ts";
import {
  ACTIVE_ALLOCATION_STATUSES,
  type AllocationOutcome,
  type AllocationRecord,
  type AllocationStatus,
  type WorkerRecord,
  type WorkerSpec,
} from "./model.ts";

const FIX = `${FIX_SINGLE_NODE}; in a cluster, move the data directory aside and rejoin`;

// --------------------------------------------------------------------------------- workers

export function upsertWorker(spec: WorkerSpec, at: number, registered_at: number): InStatement {
  return {
    sql:
      "INSERT INTO workers (id, pool, region, zone, labels, taints, capacity, status, status_reason, registered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'ready', NULL, ?, ?) ON CONFLICT (id) DO UPDATE SET pool = excluded.pool, region = excluded.region, zone = excluded.zone, labels = excluded.labels, taints = excluded.taints, capacity = excluded.capacity, status = 'ready', status_reason = NULL, updated_at = excluded.updated_at",
    args: [
      spec.id,
      spec.pool,
      spec.region,
      spec.zone,
      JSON.stringify(spec.labels),
      JSON.stringify(spec.taints),
      JSON.stringify(spec.capacity),
      registered_at,
      at,
    ],
  };
}

export function setWorkerStatus(
  worker_id: string,
  status: string,
  reason: string,
  at: number,
): InStatement {
  return {
    sql: "UPDATE workers SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
    args: [status, reason, at, worker_id],
  };
}

export function deleteWorker(worker_id: string): InStatement {
  return { sql: "DELETE FROM workers WHERE id = ?", args: [worker_id] };
}

// ----------------------------------------------------------------------------- allocations

/**
 * Inserts a new allocation. `OR REPLACE`: an id that an ended allocation had (apply only checks
 * the active ones) replaces that row instead of failing the whole group's transaction on every
 * node at every replay.
 */
export function insertAllocation(a: NewAllocation, at: number): InStatement {
  const placed = a.worker_id !== null;
  return {
    sql:
      "INSERT OR REPLACE INTO allocations (id, job_id, execution_id, attempt, scheduled_at, worker_id, status, resources, job_labels, lease_ms, lease_expires_at, idempotency_key, score, explanation, created_at, placed_at, started_at, finished_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
    args: [
      a.id,
      a.job_id,
      a.execution_id,
      a.attempt,
      a.scheduled_at,
      a.worker_id,
      placed ? "placed" : "pending",
      JSON.stringify(a.resources),
      JSON.stringify(a.job_labels),
      a.lease_ms,
      placed ? at + a.lease_ms : null,
      a.idempotency_key,
      a.score,
      a.explanation,
      at,
      placed ? at : null,
    ],
  };
}

export function placeAllocation(
  alloc_id: string,
  worker_id: string,
  score: number,
  lease_expires_at: number,
  at: number,
): InStatement {
  return {
    sql:
      "UPDATE allocations SET status = 'placed', worker_id = ?, score = ?, lease_expires_at = ?, placed_at = ? WHERE id = ?",
    args: [worker_id, score, lease_expires_at, at, alloc_id],
  };
}

export function startAllocation(
  alloc_id: string,
  lease_expires_at: number,
  at: number,
): InStatement {
  return {
    sql:
      "UPDATE allocations SET status = 'running', lease_expires_at = ?, started_at = ? WHERE id = ?",
    args: [lease_expires_at, at, alloc_id],
  };
}

/** An allocation ends: completed, failed, lost or cancelled, with the outcome when reported. */
export function endAllocation(
  alloc_id: string,
  status: AllocationStatus,
  outcome: AllocationOutcome | null,
  explanation: string | null,
  at: number,
): InStatement {
  return {
    sql:
      "UPDATE allocations SET status = ?, outcome = ?, explanation = COALESCE(?, explanation), lease_expires_at = NULL, finished_at = ? WHERE id = ?",
    args: [status, outcome === null ? null : JSON.stringify(outcome), explanation, at, alloc_id],
  };
}

// ------------------------------------------------------------------------------------ reads

function json<T>(row: Row, column: string, what: string): T {
  try {
    return JSON.parse(String(row[column])) as T;
  } catch {
    throw new CorruptDataError({ file: "node.db", what }, `${column} is not JSON`, FIX);
  }
}

const num = (v: unknown) => v === null ? null : Number(v);

export function rowToWorker(row: Row): WorkerRecord {
  const what = `worker ${row.id}`;
  return {
    id: String(row.id),
    pool: String(row.pool),
    region: String(row.region),
    zone: String(row.zone),
    labels: json(row, "labels", what),
    taints: json(row, "taints", what),
    capacity: json(row, "capacity", what),
    status: String(row.status) as WorkerRecord["status"],
    status_reason: row.status_reason === null ? null : String(row.status_reason),
    registered_at: Number(row.registered_at),
    updated_at: Number(row.updated_at),
  };
}

export function rowToAllocation(row: Row): AllocationRecord {
  const what = `allocation ${row.id}`;
  const status = String(row.status) as AllocationStatus;
  return {
    id: String(row.id),
    job_id: String(row.job_id),
    execution_id: String(row.execution_id),
    attempt: Number(row.attempt),
    scheduled_at: Number(row.scheduled_at),
    worker_id: row.worker_id === null ? null : String(row.worker_id),
    status,
    resources: json(row, "resources", what),
    job_labels: json(row, "job_labels", what),
    lease_ms: Number(row.lease_ms),
    lease_expires_at: num(row.lease_expires_at),
    idempotency_key: String(row.idempotency_key),
    score: num(row.score),
    explanation: row.explanation === null ? null : String(row.explanation),
    created_at: Number(row.created_at),
    placed_at: num(row.placed_at),
    started_at: num(row.started_at),
    finished_at: num(row.finished_at),
    outcome: row.outcome === null ? null : json(row, "outcome", what),
  };
}

/** Every worker, and every allocation still active: what the state machine's index holds. */
export async function loadWorkersIndex(
  db: Database,
): Promise<{ workers: WorkerRecord[]; active: AllocationRecord[] }> {
  const workers = (await db.client.execute("SELECT * FROM workers ORDER BY id")).rows.map(
    rowToWorker,
  );
  const active = (await db.client.execute(
    "SELECT * FROM allocations WHERE status IN ('pending', 'placed', 'running') ORDER BY id",
  )).rows.map(rowToAllocation);
  for (const a of active) {
    if (!ACTIVE_ALLOCATION_STATUSES.has(a.status)) {
      throw new CorruptDataError(
        { file: "node.db", what: `allocation ${a.id}` },
        "bad status",
        FIX,
      );
    }
  }
  return { workers, active };
}

/** Filters of an allocation listing. */
export interface AllocationQuery {
  job_id?: string;
  worker_id?: string;
  status?: AllocationStatus;
  /** Ids greater than this (the next page). */
  cursor?: string;
  limit: number;
}

/** Allocations in id order (creation order), filtered. */
export async function listAllocations(
  db: Database,
  q: AllocationQuery,
): Promise<AllocationRecord[]> {
  const rows = await db.client.execute({
    sql:
      "SELECT * FROM allocations WHERE (?1 IS NULL OR job_id = ?1) AND (?2 IS NULL OR worker_id = ?2) AND (?3 IS NULL OR status = ?3) AND id > ?4 ORDER BY id LIMIT ?5",
    args: [q.job_id ?? null, q.worker_id ?? null, q.status ?? null, q.cursor ?? "", q.limit],
  });
  return rows.rows.map(rowToAllocation);
}

/** The newest allocation of a job (its last placement decision), or null. */
export async function latestAllocation(
  db: Database,
  job_id: string,
): Promise<AllocationRecord | null> {
  const rows = await db.client.execute({
    sql: "SELECT * FROM allocations WHERE job_id = ? ORDER BY id DESC LIMIT 1",
    args: [job_id],
  });
  return rows.rows.length === 0 ? null : rowToAllocation(rows.rows[0]);
}

/** The newest allocation of one attempt of an execution, or null. */
export async function latestAllocationOf(
  db: Database,
  execution_id: string,
  attempt: number,
): Promise<AllocationRecord | null> {
  const rows = await db.client.execute({
    sql:
      "SELECT * FROM allocations WHERE execution_id = ? AND attempt = ? ORDER BY id DESC LIMIT 1",
    args: [execution_id, attempt],
  });
  return rows.rows.length === 0 ? null : rowToAllocation(rows.rows[0]);
}

/** One allocation, or null. */
export async function getAllocation(db: Database, id: string): Promise<AllocationRecord | null> {
  const rows = await db.client.execute({
    sql: "SELECT * FROM allocations WHERE id = ?",
    args: [id],
  });
  return rows.rows.length === 0 ? null : rowToAllocation(rows.rows[0]);
}
