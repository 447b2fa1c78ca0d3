/**
 * Schema migrations, applied in order at start inside one transaction each. They are code, not
 * files, so a compiled binary carries them. Never edit a released migration: add the next one.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string[];
}

/** Every migration, oldest first. */
export const MIGRATIONS: Migration[] = [
  {
    id: 1,
    name: "initial schema",
    sql: [
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE log_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, data TEXT NOT NULL)`,
      `CREATE TABLE jobs (
        id TEXT PRIMARY KEY, name TEXT, type TEXT NOT NULL, type_alias TEXT NOT NULL,
        run_at INTEGER, cron_expression TEXT, interval_ms INTEGER, timezone TEXT NOT NULL,
        starts_at INTEGER, ends_at INTEGER, webhook_url TEXT, method TEXT NOT NULL,
        headers TEXT NOT NULL, payload TEXT NOT NULL, secret TEXT, overlap_policy TEXT NOT NULL,
        catchup_window_ms INTEGER NOT NULL, max_attempts INTEGER NOT NULL,
        timeout_ms INTEGER NOT NULL, idempotency_key TEXT, status TEXT NOT NULL,
        next_fire_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        cancel_reason TEXT, last_run_at INTEGER, last_status TEXT,
        attempt_count INTEGER NOT NULL, run_count INTEGER NOT NULL)`,
      `CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key)`,
      `CREATE INDEX jobs_status ON jobs (status, id)`,
      `CREATE TABLE executions (
        id TEXT PRIMARY KEY, job_id TEXT NOT NULL, scheduled_at INTEGER NOT NULL,
        trigger TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL, finished_at INTEGER, status_code INTEGER, error_class TEXT,
        error TEXT, duration_ms INTEGER, next_attempt_at INTEGER,
        redeliveries INTEGER NOT NULL, missed_count INTEGER NOT NULL, response_excerpt TEXT)`,
      `CREATE INDEX executions_job ON executions (job_id, scheduled_at)`,
      `CREATE INDEX executions_finished ON executions (finished_at)`,
    ],
  },
  {
    id: 2,
    name: "cluster address book",
    sql: [
      `CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL)`,
    ],
  },
  {
    id: 3,
    name: "workers and allocations",
    sql: [
      `CREATE TABLE workers (
        id TEXT PRIMARY KEY, pool TEXT NOT NULL, region TEXT NOT NULL, zone TEXT NOT NULL,
        labels TEXT NOT NULL, taints TEXT NOT NULL, capacity TEXT NOT NULL, status TEXT NOT NULL,
        status_reason TEXT, registered_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)`,
      `CREATE TABLE allocations (
        id TEXT PRIMARY KEY, job_id TEXT NOT NULL, execution_id TEXT NOT NULL,
        attempt INTEGER NOT NULL, scheduled_at INTEGER NOT NULL, worker_id TEXT,
        status TEXT NOT NULL, resources TEXT NOT NULL, job_labels TEXT NOT NULL,
        lease_ms INTEGER NOT NULL, lease_expires_at INTEGER, idempotency_key TEXT NOT NULL,
        score REAL, explanation TEXT, created_at INTEGER NOT NULL, placed_at INTEGER,
        started_at INTEGER, finished_at INTEGER, outcome TEXT)`,
      `CREATE INDEX allocations_worker ON allocations (worker_id, status)`,
      `CREATE INDEX allocations_job ON allocations (job_id, id)`,
      `CREATE INDEX allocations_status ON allocations (status, id)`,
      `ALTER TABLE jobs ADD COLUMN executor TEXT`,
      `ALTER TABLE executions ADD COLUMN worker_id TEXT`,
    ],
  },
];

/** Migrations of the Raft log file (`raft.db`): entries, hard state, the latest snapshot. */
export const RAFT_MIGRATIONS: Migration[] = [
  {
    id: 1,
    name: "raft log",
    sql: [
      `CREATE TABLE raft_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,
        kind TEXT NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL)`,
      `CREATE TABLE raft_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE raft_snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL,
        term INTEGER NOT NULL, conf TEXT NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL)`,
    ],
  },
];
