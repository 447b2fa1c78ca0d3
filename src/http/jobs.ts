/** The jobs API: `/jobs` and everything under it. */
import { type Context, Hono } from "hono";
import type { z } from "zod";
import { ValidationError } from "../scheduler/errors.ts";
import type { JobStatus } from "../scheduler/model.ts";
import type { JobInput, JobService } from "../scheduler/service.ts";
import { fieldIssues } from "./errors.ts";
import {
  batchSchema,
  cancelSchema,
  executionJson,
  executionsQuerySchema,
  jobCreateSchema,
  jobJson,
  listQuerySchema,
  toJobInput,
} from "./schemas.ts";

/** What the jobs routes need from the node. */
export interface JobsDeps {
  service: JobService;
  batch_max_jobs: number;
  /** Counts jobs created or refused, for metrics. */
  onCreated(count: number): void;
  onRejected(reason: string): void;
  onDeleted(): void;
}

/** Reads a JSON body; malformed JSON is a 400 that says so. */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`malformed JSON body: ${(error as Error).message}`);
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = fieldIssues(result.error);
    throw new ValidationError(
      `invalid ${what}: ${issues.map((i) => `${i.path || "body"}: ${i.message}`).join("; ")}`,
      issues,
    );
  }
  return result.data;
}

export function jobsRoutes(deps: JobsDeps): Hono {
  const app = new Hono();
  const { service } = deps;

  const withRejections = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      const reason = (error as { reason?: string }).reason ??
        (error instanceof ValidationError ? "invalid" : (error as Error).constructor.name);
      deps.onRejected(reason);
      throw error;
    }
  };

  app.post("/", (c) =>
    withRejections(async () => {
      const body = parse(jobCreateSchema, await readJson(c), "job");
      const [{ job, created }] = await service.create([
        toJobInput(body, c.req.header("Idempotency-Key") ?? null),
      ]);
      if (created) deps.onCreated(1);
      else c.header("Idempotent-Replayed", "true");
      return c.json(jobJson(job), created ? 201 : 200);
    }));

  app.post("/batch", (c) =>
    withRejections(async () => {
      const body = parse(batchSchema, await readJson(c), "batch");
      if (body.jobs.length > deps.batch_max_jobs) {
        throw new ValidationError(
          `a batch holds at most ${deps.batch_max_jobs} jobs (BATCH_MAX_JOBS); split it`,
          [{ path: "jobs", message: `${body.jobs.length} jobs` }],
        );
      }
      const inputs: JobInput[] = [];
      const issues = body.jobs.flatMap((item, i) => {
        const result = jobCreateSchema.safeParse(item);
        if (!result.success) return fieldIssues(result.error, `jobs.${i}.`);
        inputs.push(toJobInput(result.data, null));
        return [];
      });
      if (issues.length > 0) {
        const bad = new Set(issues.map((i) => i.path.split(".")[1])).size;
        throw new ValidationError(
          `${bad} of ${body.jobs.length} jobs are invalid; none was created`,
          issues,
        );
      }
      const results = await service.create(inputs, true);
      const createdCount = results.filter((r) => r.created).length;
      deps.onCreated(createdCount);
      return c.json({
        created: createdCount,
        existing: results.length - createdCount,
        jobs: results.map((r) => ({ ...jobJson(r.job), created: r.created })),
      }, 201);
    }));

  app.get("/", async (c) => {
    const q = parse(listQuerySchema, c.req.query(), "query");
    const page = await service.list({
      status: q.status as JobStatus | undefined,
      type: q.type,
      text: q.q,
      cursor: q.cursor,
      limit: q.limit,
    });
    return c.json({ jobs: page.jobs.map(jobJson), next_cursor: page.next_cursor });
  });

  app.get("/:id", async (c) => c.json(jobJson(await service.get(c.req.param("id")))));

  app.delete("/:id", async (c) => {
    const id = c.req.param("id");
    await service.delete(id);
    deps.onDeleted();
    return c.json({ id, deleted: true });
  });

  app.get("/:id/status", async (c) => {
    const job = await service.get(c.req.param("id"));
    const { current, last } = await service.current(job.id);
    return c.json({
      job_id: job.id,
      status: job.status,
      attempt_count: job.attempt_count,
      run_count: job.run_count,
      last_run_at: jobJson(job).last_run_at,
      last_status: job.last_status,
      next_run_at: jobJson(job).next_run_at,
      cancel_reason: job.cancel_reason,
      current_execution: current === null ? null : executionJson(current),
      last_execution: last === null ? null : executionJson(last),
    });
  });

  app.get("/:id/executions", async (c) => {
    const q = parse(executionsQuerySchema, c.req.query(), "query");
    const page = await service.executions(c.req.param("id"), q.limit, q.cursor);
    return c.json({
      job_id: c.req.param("id"),
      executions: page.executions.map(executionJson),
      next_cursor: page.next_cursor,
    });
  });

  app.post("/:id/cancel", async (c) => {
    const body = parse(cancelSchema, await readJson(c), "cancel request");
    const job = await service.cancel(c.req.param("id"), body.reason ?? "cancelled by request");
    return c.json(jobJson(job));
  });

  app.post(
    "/:id/pause",
    async (c) => c.json(jobJson(await service.pause(c.req.param("id")))),
  );
  app.post(
    "/:id/resume",
    async (c) => c.json(jobJson(await service.resume(c.req.param("id")))),
  );
  app.post("/:id/trigger", async (c) => {
    const execution_id = await service.trigger(c.req.param("id"));
    return c.json({ job_id: c.req.param("id"), execution_id }, 202);
  });

  return app;
}
