/**
 * How a job's occurrences run when not as webhook calls: `{"type": "worker", ...}` places each
 * occurrence on a registered worker (src/workers/), with the placement engine's vocabulary
 * (src/placement/types.ts). The schema is the wire shape and, with its defaults filled, the stored
 * one: the API parses a client's executor with it, the command codec checks a stored one.
 *
 * @module
 */
import { z } from "zod";

const name = z.string().min(1).max(128);
const labels = z.record(z.string().min(1).max(63), z.string().max(256))
  .refine((o) => Object.keys(o).length <= 64, "at most 64 labels");

const constraint = z.object({
  attribute: name.meta({
    description: "A label name, or region, zone, pool, worker.id (which win over a label)",
  }),
  operator: z.enum(["=", "!=", "in", "not_in", "exists", "not_exists"]),
  value: z.string().max(256).optional(),
  values: z.array(z.string().max(256)).min(1).max(64).optional(),
  mode: z.enum(["required", "preferred"]).default("required"),
  weight: z.number().int().min(-100).max(100).refine((w) => w !== 0, "not 0").optional(),
}).strict().superRefine((c, ctx) => {
  const needsValue = c.operator === "=" || c.operator === "!=";
  const needsValues = c.operator === "in" || c.operator === "not_in";
  if (needsValue && c.value === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["value"],
      message: `operator ${c.operator} needs value`,
    });
  }
  if (needsValues && c.values === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["values"],
      message: `operator ${c.operator} needs values`,
    });
  }
  if (c.mode === "preferred" && c.weight === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["weight"],
      message: "a preferred constraint needs a weight",
    });
  }
});

const affinity = z.object({
  selector: labels.refine((o) => Object.keys(o).length > 0, "at least one label"),
  weight: z.number().int().min(1).max(100),
}).strict();

const toleration = z.object({
  key: z.string().min(1).max(63).optional(),
  operator: z.enum(["Equal", "Exists"]).optional(),
  value: z.string().max(256).optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule"]).optional(),
}).strict();

const amount = z.number().int().min(0).max(2_147_483_647);

/** A worker executor; parsing fills the defaults, so the output is the stored record. */
export const workerExecutorSchema = z.object({
  type: z.literal("worker"),
  pool: z.string().min(1).max(64).nullable().default(null).meta({
    description: "Only workers of this pool; null: any pool",
  }),
  resources: z.object({
    cpu_millis: amount.default(0),
    memory_mb: amount.default(0),
    disk_mb: amount.default(0),
    slots: amount.default(1),
  }).strict().default({ cpu_millis: 0, memory_mb: 0, disk_mb: 0, slots: 1 }),
  constraints: z.array(constraint).max(32).default([]),
  affinity: z.array(affinity).max(16).default([]),
  anti_affinity: z.array(affinity).max(16).default([]),
  tolerations: z.array(toleration).max(32).default([]),
  spread: z.object({
    attribute: name,
    targets: z.record(z.string().max(256), z.number().min(0).max(100)).optional(),
  }).strict().nullable().default(null),
  strategy: z.enum(["binpack", "spread", "random"]).nullable().default(null).meta({
    description: "null: the node's PLACEMENT_STRATEGY",
  }),
  count: z.union([z.number().int().min(1).max(1_000), z.literal("all")]).default(1).meta({
    description: "Workers each occurrence runs on: N distinct workers, or all that fit",
  }),
  lease_seconds: z.number().int().min(1).max(7 * 86_400).nullable().default(null).meta({
    description:
      "How long a worker may take to start, then to finish; null: JOB_INPROGRESS_TIMEOUT",
  }),
  labels: labels.default({}).meta({
    description: "The job's labels, which affinity and anti_affinity of other jobs select",
  }),
}).strict().meta({ id: "WorkerExecutor" });

/** A job's worker executor, as stored. */
export type WorkerExecutor = z.output<typeof workerExecutorSchema>;
