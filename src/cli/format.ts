/**
 * Human output of the CLI: aligned tables for lists, key/value blocks for one object. Pure
 * functions from wire JSON to text.
 *
 * @example
 * ```ts
 * table(["ID", "STATUS"], [["01J…", "pending"]]);
 * // "ID    STATUS\n01J…  pending"
 * ```
 *
 * @module
 */
import type { WorkerJson } from "../http/workers.ts";
import type { AllocationJson, ExecutionJson, JobJson, JsonObject } from "./client.ts";

const GAP = "  ";

/** A value as one table cell or key/value value: `-` for null, compact JSON for objects. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Columns padded to their widest cell, a header row first, no trailing spaces. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [headers, ...rows]
    .map((row) => row.map((text, i) => text.padEnd(widths[i])).join(GAP).trimEnd())
    .join("\n");
}

/** One `key  value` line per field, keys aligned. */
export function keyValues(record: JsonObject): string {
  const width = Math.max(0, ...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(([key, value]) => `${key.padEnd(width)}${GAP}${cell(value)}`)
    .join("\n");
}

/** Seconds as the largest whole unit: 30 → "30s", 300 → "5m", 7200 → "2h", 90 → "90s". */
export function durationText(seconds: number): string {
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** A job's schedule in one cell: the cron (and zone), `every 30s`, or the one-off's time. */
export function scheduleText(job: JobJson): string {
  if (job.cron_expression !== null) {
    return job.timezone === "UTC"
      ? job.cron_expression
      : `${job.cron_expression} (${job.timezone})`;
  }
  if (job.interval_seconds !== null) return `every ${durationText(job.interval_seconds)}`;
  return `at ${cell(job.timestamp)}`;
}

export function jobsTable(jobs: JobJson[]): string {
  return table(
    ["ID", "TYPE", "STATUS", "NEXT RUN", "SCHEDULE", "WEBHOOK"],
    jobs.map((job) => [
      job.id,
      job.type,
      job.status,
      cell(job.next_run_at),
      scheduleText(job),
      cell(job.webhook_url),
    ]),
  );
}

export function executionsTable(executions: ExecutionJson[]): string {
  return table(
    ["ID", "SCHEDULED AT", "TRIGGER", "STATUS", "ATTEMPT", "HTTP", "ERROR"],
    executions.map((e) => [
      e.id,
      cell(e.scheduled_at),
      e.trigger,
      e.status,
      String(e.attempt),
      cell(e.status_code),
      cell(e.error_class === null ? e.error : `${e.error_class}: ${cell(e.error)}`),
    ]),
  );
}

/** The resources of a worker, in the order the placement engine checks them, with their units. */
const RESOURCES = [
  ["cpu_millis", "CPU", "m"],
  ["memory_mb", "MEMORY", "MiB"],
  ["disk_mb", "DISK", "MiB"],
  ["slots", "SLOTS", ""],
] as const;

/** `allocated/capacity` with the unit: `500/2000m`. */
function usedOf(worker: WorkerJson, key: (typeof RESOURCES)[number][0], unit: string): string {
  return `${worker.allocated[key]}/${worker.capacity[key]}${unit}`;
}

/** How long before `now_ms` an ISO time was: `3s ago`, `2m ago`; `-` for null. */
export function ageText(iso: string | null, now_ms: number): string {
  if (iso === null) return "-";
  const seconds = Math.max(0, Math.round((now_ms - Date.parse(iso)) / 1_000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3_600)}h ago`;
}

/** `k=v,k=v` (or `-`). */
function labelsText(labels: Record<string, string>): string {
  const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
  return text === "" ? "-" : text;
}

/** `region/zone`, either part `-` when empty. */
function placeText(worker: WorkerJson): string {
  return worker.region === "" && worker.zone === ""
    ? "-"
    : `${worker.region || "-"}/${worker.zone || "-"}`;
}

/**
 * The workers, one row each: allocated/capacity per resource, and the age of the latest
 * heartbeat, which only the leader knows (`-` elsewhere).
 */
export function workersTable(workers: WorkerJson[], now_ms: number): string {
  return table(
    [
      "ID",
      "STATUS",
      "POOL",
      "REGION/ZONE",
      ...RESOURCES.map(([, header]) => header),
      "ALLOCS",
      "HEARTBEAT",
      "LABELS",
    ],
    workers.map((w) => [
      w.id,
      w.status,
      w.pool,
      placeText(w),
      ...RESOURCES.map(([key, , unit]) => usedOf(w, key, unit)),
      String(w.allocations),
      ageText(w.last_heartbeat_at, now_ms),
      labelsText(w.labels),
    ]),
  );
}

/** One worker: its fields, then a table of allocated against capacity per resource. */
export function workerText(worker: WorkerJson, now_ms: number): string {
  const { capacity, allocated, labels, taints, usage, ...rest } = worker;
  const fields: JsonObject = {
    ...rest,
    labels: labelsText(labels),
    taints: taints.length === 0
      ? "-"
      : taints.map((t) => `${t.key}=${t.value}:${t.effect}`).join(","),
    last_heartbeat_at: worker.last_heartbeat_at === null
      ? "- (known on the leader)"
      : `${worker.last_heartbeat_at} (${ageText(worker.last_heartbeat_at, now_ms)})`,
    usage: usage === null
      ? "-"
      : `cpu ${usage.cpu_percent}%, memory ${usage.memory_percent}%, ${usage.rps} allocations/s, ` +
        `running ${usage.running.length}`,
  };
  const resources = table(
    ["RESOURCE", "ALLOCATED", "CAPACITY", "USED"],
    RESOURCES.map(([key]) => [
      key,
      String(allocated[key]),
      String(capacity[key]),
      capacity[key] === 0 ? "-" : `${Math.round(allocated[key] / capacity[key] * 100)}%`,
    ]),
  );
  return `${keyValues(fields)}\n\n${resources}`;
}

/** What an allocation came to, or why it waits: the explanation, else the outcome. */
export function allocationDetail(a: AllocationJson): string {
  if (a.outcome !== null) {
    const o = a.outcome;
    const code = o.exit_code !== null
      ? `exit ${o.exit_code}`
      : o.status_code !== null
      ? `HTTP ${o.status_code}`
      : "";
    const parts = [o.ok ? "ok" : "failed", code, o.error ?? "", `${o.duration_ms} ms`];
    return oneLine(parts.filter((p) => p !== "").join(", "));
  }
  return oneLine(cell(a.explanation));
}

/** Text on one line, so that a table row stays one row. */
const oneLine = (text: string) => text.replace(/\s+/g, " ");

export function allocationsTable(allocations: AllocationJson[]): string {
  return table(
    ["ID", "JOB", "WORKER", "STATUS", "ATTEMPT", "SCHEDULED AT", "DETAIL"],
    allocations.map((a) => [
      a.id,
      a.job_id,
      cell(a.worker_id),
      a.status,
      String(a.attempt),
      a.scheduled_at,
      allocationDetail(a),
    ]),
  );
}

/**
 * Any object the cluster endpoints answer with: its plain fields as key/values (nested objects
 * with dotted keys), each list of objects (such as `members`) as a table under its name. Nothing is assumed about the fields, so
 * the output follows the cluster mode as it grows.
 */
export function objectText(record: JsonObject): string {
  const plain: JsonObject = {};
  const sections: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (Array.isArray(value) && value.length > 0 && value.every(isObject)) {
      const columns = [...new Set(value.flatMap((row) => Object.keys(row)))];
      sections.push(
        `${key}:\n${table(columns, value.map((row) => columns.map((c) => cell(row[c]))))}`,
      );
    } else plain[key] = value;
  }
  return [keyValues(flatten(plain)), ...sections].filter((s) => s !== "").join("\n\n");
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Nested objects as one level with dotted keys: `{a: {b: 1}}` → `{"a.b": 1}`. */
function flatten(record: JsonObject): JsonObject {
  const flat: JsonObject = {};
  for (const [key, value] of Object.entries(record)) {
    if (isObject(value) && Object.keys(value).length > 0) {
      for (const [inner, v] of Object.entries(flatten(value))) flat[`${key}.${inner}`] = v;
    } else flat[key] = value;
  }
  return flat;
}
