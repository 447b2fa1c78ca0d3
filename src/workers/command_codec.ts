/**
 * The shape of every worker command, checked when it is proposed and when an entry is read back
 * (`StateMachine.check`): a command that does not match is a `CommandCodecError` naming the
 * field, never an exception in apply.
 *
 * @module
 */
import { z } from "zod";
import { CommandCodecError } from "../log/codec.ts";
import type { WorkerCommand } from "./commands.ts";

/** Ceilings of a valid worker command (the HTTP edge's rules are the same or tighter). */
export const WORKER_LIMITS = {
  id_chars_max: 64,
  labels_max: 64,
  label_key_chars_max: 63,
  label_value_chars_max: 256,
  taints_max: 32,
  /** Largest amount of one resource (2^31 - 1). */
  amount_max: 2_147_483_647,
  text_chars_max: 4_096,
} as const;

const L = WORKER_LIMITS;
const time = z.number().int().min(0).max(8.64e15);
const id = z.string().min(1).max(L.id_chars_max);
const text = z.string().max(L.text_chars_max);
const amount = z.number().int().min(0).max(L.amount_max);

export const resourcesSchema = z.object({
  cpu_millis: amount,
  memory_mb: amount,
  disk_mb: amount,
  slots: amount,
});

export const labelsSchema = z.record(
  z.string().min(1).max(L.label_key_chars_max),
  z.string().max(L.label_value_chars_max),
).refine((o) => Object.keys(o).length <= L.labels_max, `at most ${L.labels_max} labels`);

export const taintSchema = z.object({
  key: z.string().min(1).max(L.label_key_chars_max),
  value: z.string().max(L.label_value_chars_max),
  effect: z.enum(["NoSchedule", "PreferNoSchedule"]),
});

const workerSpec = z.object({
  id,
  pool: z.string().min(1).max(L.id_chars_max),
  region: z.string().max(L.id_chars_max),
  zone: z.string().max(L.id_chars_max),
  labels: labelsSchema,
  taints: z.array(taintSchema).max(L.taints_max),
  capacity: resourcesSchema,
});

const status = z.enum(["ready", "draining", "lost"]);
const allocationStatus = z.enum([
  "pending",
  "placed",
  "running",
  "completed",
  "failed",
  "lost",
  "cancelled",
]);

const outcome = z.object({
  ok: z.boolean(),
  exit_code: z.number().int().min(-(2 ** 31)).max(2 ** 31).nullable(),
  status_code: z.number().int().min(0).max(999).nullable(),
  error: text.nullable(),
  output_excerpt: text.nullable(),
  duration_ms: z.number().min(0).max(8.64e15),
});

const newAllocation = z.object({
  id,
  job_id: id,
  execution_id: id,
  attempt: z.number().int().min(1).max(1_000_000),
  scheduled_at: time,
  resources: resourcesSchema,
  job_labels: labelsSchema,
  lease_ms: z.number().int().min(1).max(366 * 86_400_000),
  idempotency_key: z.string().min(1).max(1_024),
  worker_id: id.nullable(),
  score: z.number().min(-1e6).max(1e6).nullable(),
  explanation: text.nullable(),
});

const command = z.discriminatedUnion("type", [
  z.object({ type: z.literal("worker.register"), at: time, worker: workerSpec }),
  z.object({
    type: z.literal("worker.status"),
    at: time,
    worker_id: id,
    status,
    reason: text,
  }),
  z.object({ type: z.literal("worker.remove"), at: time, worker_id: id }),
  z.object({ type: z.literal("alloc.create"), at: time, alloc: newAllocation }),
  z.object({
    type: z.literal("alloc.place"),
    at: time,
    alloc_id: id,
    worker_id: id,
    score: z.number().min(-1e6).max(1e6),
  }),
  z.object({ type: z.literal("alloc.start"), at: time, alloc_id: id, worker_id: id }),
  z.object({
    type: z.literal("alloc.finish"),
    at: time,
    alloc_id: id,
    worker_id: id,
    outcome,
  }),
  z.object({
    type: z.literal("alloc.expire"),
    at: time,
    alloc_id: id,
    expected_status: allocationStatus,
  }),
  z.object({ type: z.literal("alloc.cancel"), at: time, execution_id: id, reason: text }),
]);

/** Checks worker commands; throws {@link CommandCodecError} naming the first wrong field. */
export function checkWorkerCommands(commands: readonly unknown[]): WorkerCommand[] {
  return commands.map((value, i) => {
    const parsed = command.safeParse(value);
    if (parsed.success) return parsed.data as WorkerCommand;
    const issue = parsed.error.issues[0];
    throw new CommandCodecError([i, ...issue.path].join("."), issue.message);
  });
}
