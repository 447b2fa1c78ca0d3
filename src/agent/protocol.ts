/**
 * The wire shapes of docs/workers.md as the agent sends and reads them. Answers are checked with
 * zod (extra fields pass: a newer server may add some), so a server that answers something else
 * is reported with the field that is wrong instead of failing later.
 *
 * @module
 */
import { z } from "zod";
import type { Capacity, Taint } from "./options.ts";

/** Body of `POST /workers`. */
export interface RegisterBody {
  id: string;
  pool: string;
  region: string;
  zone: string;
  labels: Record<string, string>;
  taints: Taint[];
  capacity: Capacity;
}

/** The part of a registration answer the agent reads; `heartbeat_ms` when the server says it. */
export const registerAnswerSchema = z.looseObject({
  id: z.string(),
  heartbeat_ms: z.number().int().positive().optional(),
});

/** Body of `POST /workers/{id}/heartbeat`. */
export interface HeartbeatBody {
  usage: { cpu_percent: number; memory_percent: number; rps: number; running: string[] };
}

/** Answer of a heartbeat. */
export const heartbeatAnswerSchema = z.looseObject({
  status: z.string(),
  ttl_ms: z.number().int().positive(),
  heartbeat_ms: z.number().int().positive(),
});

/** One allocation as `GET /workers/{id}/allocations` and `start` return it. */
export const allocationSchema = z.looseObject({
  id: z.string().min(1),
  job_id: z.string().min(1),
  execution_id: z.string(),
  attempt: z.number().int().min(1),
  scheduled_at: z.iso.datetime(),
  worker_id: z.string(),
  status: z.string(),
  lease_seconds: z.number().positive(),
  lease_expires_at: z.iso.datetime().nullable().optional(),
  idempotency_key: z.string().min(1),
  payload: z.unknown(),
});

/** An allocation of this worker. */
export type Allocation = z.infer<typeof allocationSchema>;

/** Answer of the long poll. */
export const allocationsAnswerSchema = z.looseObject({ allocations: z.array(allocationSchema) });

/** Body of `POST /allocations/{id}/finish`. */
export interface FinishBody {
  worker_id: string;
  ok: boolean;
  exit_code: number | null;
  status_code: number | null;
  error: string | null;
  output_excerpt: string;
  duration_ms: number;
}

/** The outcome of running one allocation (the finish body without the worker). */
export type Outcome = Omit<FinishBody, "worker_id">;

/** Characters of output kept in {@link FinishBody.output_excerpt}. */
export const OUTPUT_EXCERPT_MAX_CHARS = 512;
