/**
 * The jobs API: `/jobs` and everything under it, each route declared with its request and
 * response schemas for the OpenAPI document (see `serveRoute` for why the handlers validate
 * themselves).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { SETTINGS } from "../config.ts";
import { ValidationError } from "../errors.ts";
import type { JobStatus } from "../scheduler/model.ts";
import type { JobInput, JobService } from "../scheduler/service.ts";
import {
  DEFAULT_INPUT_LIMITS,
  FIELDS_AT_TOP,
  FIELDS_IN_BATCH,
  type InputLimits,
  parseBoundedJson,
} from "./bounded_json.ts";
import { fieldIssues } from "./errors.ts";
import { errorResponses, json, serveRoute } from "./openapi.ts";
import {
  batchResultSchema,
  batchSchema,
  cancelSchema,
  deletedSchema,
  executionJson,
  executionListSchema,
  executionsQuerySchema,
  IDEMPOTENCY_KEY_CHARS_MAX,
  jobCreateSchema,
  jobJson,
  jobListSchema,
  jobSchema,
  jobStatusSchema,
  listQuerySchema,
  toJobInput,
  triggeredSchema,
} from "./schemas.ts";

/** What the jobs routes need from the node. */
export interface JobsDeps {
  service: JobService;
  batch_max_jobs: number;
  /** Limits on request shapes (`INPUT_MAX_*`); absent: the defaults. */
  input_limits?: InputLimits;
  /** Counts jobs created or refused, for metrics. */
  onCreated(count: number): void;
  onRejected(reason: string): void;
  onDeleted(): void;
}

/**
 * Reads a JSON body within `limits` (see `bounded_json.ts`); malformed JSON or a shape over a
 * limit is a 400, a size over a limit a 413, each naming the field.
 */
export async function readJson(
  c: Context,
  limits: InputLimits = DEFAULT_INPUT_LIMITS,
  field_depth: number = FIELDS_AT_TOP,
): Promise<unknown> {
  return parseBoundedJson(await c.req.text(), limits, field_depth);
}

/** Refuses a query string over `query_bytes_max` before any route parses it. */
function boundedQuery(limits: InputLimits): MiddlewareHandler {
  return async (c, next) => {
    const url = c.req.url;
    const start = url.indexOf("?");
    const bytes = start === -1 ? 0 : url.length - start - 1;
    if (bytes > limits.query_bytes_max) {
      const message = `is ${bytes} bytes, more than ${limits.query_bytes_max} ` +
        `(${SETTINGS.query_bytes_max.env})`;
      throw new ValidationError(`the query string ${message}; send fewer or shorter parameters`, [
        { path: "query", message },
      ]);
    }
    await next();
  };
}

/** The `Idempotency-Key` header, bounded like the body's `idempotency_key`. */
function idempotencyHeader(c: Context): string | null {
  const key = c.req.header("Idempotency-Key");
  if (key === undefined) return null;
  if (key.length < 1 || key.length > IDEMPOTENCY_KEY_CHARS_MAX) {
    const message = `use 1 to ${IDEMPOTENCY_KEY_CHARS_MAX} characters (${key.length} sent)`;
    throw new ValidationError(`invalid Idempotency-Key header: ${message}`, [
      { path: "Idempotency-Key", message },
    ]);
  }
  return key;
}

/** Validates `value` with `schema`; a mismatch is a 400 naming every bad field. */
export function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
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

const TAGS = ["jobs"];
const jobParams = z.object({ id: z.string().meta({ description: "The job's id" }) });
const readQuery = z.object({
  consistency: z.enum(["local", "linearizable"]).optional().meta({
    description: "linearizable: served after a ReadIndex round on the leader (cluster)",
  }),
});
/** A JSON request body for the OpenAPI document. */
export const jsonBody = (schema: z.ZodType, required = true) => ({
  required,
  content: { "application/json": { schema } },
});
/** A job action without a body: `POST /jobs/{id}/<action>`. */
const jobAction = (action: string, summary: string) =>
  createRoute({
    method: "post",
    path: `/{id}/${action}`,
    tags: TAGS,
    summary,
    request: { params: jobParams },
    responses: { 200: json("The job", jobSchema), ...errorResponses(401, 403, 404, 409, 503) },
  });

export function jobsRoutes(deps: JobsDeps): OpenAPIHono {
  const app = new OpenAPIHono();
  const { service } = deps;
  const limits = deps.input_limits ?? DEFAULT_INPUT_LIMITS;
  app.use(boundedQuery(limits));

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

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/",
      tags: TAGS,
      summary: "Create a job (201; 200 when its idempotency key exists)",
      request: {
        headers: z.object({
          "idempotency-key": z.string().min(1).max(IDEMPOTENCY_KEY_CHARS_MAX).optional().meta({
            description: "Wins over the body's idempotency_key",
          }),
        }),
        body: jsonBody(jobCreateSchema),
      },
      responses: {
        201: json("Created", jobSchema),
        200: json("The job with this idempotency key (`Idempotent-Replayed: true`)", jobSchema),
        ...errorResponses(400, 401, 403, 413, 503, 507),
      },
    }),
    (c) =>
      withRejections(async () => {
        const header_key = idempotencyHeader(c);
        const body = parse(jobCreateSchema, await readJson(c, limits), "job");
        const [{ job, created }] = await service.create([toJobInput(body, header_key)]);
        if (created) deps.onCreated(1);
        else c.header("Idempotent-Replayed", "true");
        return c.json(jobJson(job), created ? 201 : 200);
      }),
  );

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/batch",
      tags: TAGS,
      summary: "Create up to BATCH_MAX_JOBS jobs, all or none",
      description: "Each item is a job as for POST /jobs. One invalid item refuses the batch " +
        "with a 400 whose details name each bad field as `jobs.<index>.<field>`.",
      request: { body: jsonBody(batchSchema.extend({ jobs: z.array(jobCreateSchema).min(1) })) },
      responses: {
        201: json("Created (existing idempotency keys return their job)", batchResultSchema),
        ...errorResponses(400, 401, 403, 413, 503, 507),
      },
    }),
    (c) =>
      withRejections(async () => {
        const body = parse(batchSchema, await readJson(c, limits, FIELDS_IN_BATCH), "batch");
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
      }),
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/",
      tags: TAGS,
      summary: "List jobs, filtered by status, type or text",
      request: { query: listQuerySchema },
      responses: { 200: json("A page of jobs", jobListSchema), ...errorResponses(400, 401) },
    }),
    async (c) => {
      const q = parse(listQuerySchema, c.req.query(), "query");
      const page = await service.list({
        status: q.status as JobStatus | undefined,
        type: q.type,
        text: q.q,
        cursor: q.cursor,
        limit: q.limit,
      });
      return c.json({ jobs: page.jobs.map(jobJson), next_cursor: page.next_cursor });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/{id}",
      tags: TAGS,
      summary: "Get a job",
      request: { params: jobParams, query: readQuery },
      responses: { 200: json("The job", jobSchema), ...errorResponses(401, 404) },
    }),
    async (c) => c.json(jobJson(await service.get(c.req.param().id))),
  );

  serveRoute(
    app,
    createRoute({
      method: "delete",
      path: "/{id}",
      tags: TAGS,
      summary: "Delete a job and its history; aborts its delivery in flight",
      request: { params: jobParams },
      responses: { 200: json("Deleted", deletedSchema), ...errorResponses(401, 403, 404, 503) },
    }),
    async (c) => {
      const id = c.req.param().id;
      await service.delete(id);
      deps.onDeleted();
      return c.json({ id, deleted: true });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/{id}/status",
      tags: TAGS,
      summary: "Status, attempt count, current and last execution",
      request: { params: jobParams, query: readQuery },
      responses: { 200: json("The job's status", jobStatusSchema), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const job = await service.get(c.req.param().id);
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
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "get",
      path: "/{id}/executions",
      tags: TAGS,
      summary: "Execution history, newest first",
      request: { params: jobParams, query: executionsQuerySchema },
      responses: {
        200: json("A page of executions", executionListSchema),
        ...errorResponses(400, 401, 404),
      },
    }),
    async (c) => {
      const q = parse(executionsQuerySchema, c.req.query(), "query");
      const page = await service.executions(c.req.param().id, q.limit, q.cursor);
      return c.json({
        job_id: c.req.param().id,
        executions: page.executions.map(executionJson),
        next_cursor: page.next_cursor,
      });
    },
  );

  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/{id}/cancel",
      tags: TAGS,
      summary: "Cancel with an optional reason; pending retries are dropped",
      request: { params: jobParams, body: jsonBody(cancelSchema, false) },
      responses: {
        200: json("The cancelled job", jobSchema),
        ...errorResponses(400, 401, 403, 404, 409, 503),
      },
    }),
    async (c) => {
      const body = parse(cancelSchema, await readJson(c, limits), "cancel request");
      const job = await service.cancel(c.req.param().id, body.reason ?? "cancelled by request");
      return c.json(jobJson(job));
    },
  );

  serveRoute(
    app,
    jobAction("pause", "Stop firing until resumed"),
    async (c) => c.json(jobJson(await service.pause(c.req.param().id))),
  );
  serveRoute(
    app,
    jobAction("resume", "Fire again from the next occurrence"),
    async (c) => c.json(jobJson(await service.resume(c.req.param().id))),
  );
  serveRoute(
    app,
    createRoute({
      method: "post",
      path: "/{id}/trigger",
      tags: TAGS,
      summary: "Run now, outside the schedule",
      request: { params: jobParams },
      responses: {
        202: json("The execution started", triggeredSchema),
        ...errorResponses(401, 403, 404, 409, 503),
      },
    }),
    async (c) => {
      const execution_id = await service.trigger(c.req.param().id);
      return c.json({ job_id: c.req.param().id, execution_id }, 202);
    },
  );

  return app;
}
