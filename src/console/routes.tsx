/**
 * The web console, mounted at `/console` on every node: a UI layer over the same JobService and
 * node view as the HTTP API, server-rendered, no client-side app. Forms POST to routes under
 * `/console/...`, which the cluster's leader routing proxies to the leader like any other write;
 * a write that succeeds redirects (303) back to a page.
 */
import { type Context, Hono } from "hono";
import { setCookie } from "hono/cookie";
import { CONSOLE_TOKEN_COOKIE } from "../http/auth.ts";
import type { NodeView } from "../http/app.ts";
import type { JobsDeps } from "../http/jobs.ts";
import { DEFAULT_INPUT_LIMITS, type InputLimits, parseBoundedField } from "../http/bounded_json.ts";
import {
  executionJson,
  jobCreateSchema,
  jobJson,
  listQuerySchema,
  toJobInput,
} from "../http/schemas.ts";
import { fieldIssues } from "../http/errors.ts";
import { CapacityError, ConflictError, NotFoundError, ValidationError } from "../errors.ts";
import type { JobStatus } from "../scheduler/model.ts";
import type { LatenessRing } from "../scheduler/lateness.ts";
import { allocationJson } from "../http/workers.ts";
import type { WorkersService } from "../workers/service.ts";
import {
  type CreateForm,
  EMPTY_FORM,
  JobPage,
  JobsPage,
  LoginPage,
  NotFoundPage,
  OverviewPage,
} from "./views.tsx";
import { Placements, WorkerAllocationsPage, WorkersPage } from "./workers_views.tsx";

export interface ConsoleDeps extends JobsDeps {
  node: NodeView;
  lateness: LatenessRing;
  /** The workers, for the Workers page and a worker job's placements (absent: no such pages). */
  workers?: { workers: WorkersService };
}

const PAGE_SIZE = 50;

/** Messages shown after a write redirects back; keyed by `?done=`. */
const NOTICES: Record<string, string> = {
  created: "Job created.",
  paused: "Paused: the job fires nothing until resumed.",
  resumed: "Resumed: the job fires again from its next occurrence.",
  cancelled: "Cancelled.",
  triggered: "Run now: an execution was started outside the schedule.",
  deleted: "Job deleted with its history.",
  drained: "Draining: no new placements on the worker; what runs finishes.",
  removed: "Worker removed; its active allocations are placed again.",
};

/** Allocations still under way, while a job's page reloads itself. */
const ACTIVE = ["placed", "running"];

/**
 * An error the person at the console can act on, as a status and a message for the page; other
 * errors (storage, leadership) go to the app's JSON error handler.
 */
function userError(error: unknown): { status: 400 | 404 | 409 | 507; message: string } | null {
  if (error instanceof ValidationError) {
    const details = error.issues.map((i) => `${i.path || "body"}: ${i.message}`).join("; ");
    return { status: 400, message: details === "" ? error.message : details };
  }
  if (error instanceof NotFoundError) return { status: 404, message: error.message };
  if (error instanceof ConflictError) return { status: 409, message: error.message };
  if (error instanceof CapacityError) return { status: 507, message: error.message };
  return null;
}

/**
 * The posted form; a body that is not a form (a multipart body without its boundary, say) is a
 * 400 that says what to send, not an exception from the parser.
 */
async function readForm(c: Context): Promise<Record<string, unknown>> {
  try {
    return await c.req.parseBody();
  } catch (error) {
    throw new ValidationError(
      `malformed form body (${(error as Error).message}); ` +
        "send application/x-www-form-urlencoded or multipart/form-data with its boundary",
    );
  }
}

/** `?cursor=` of a page, or undefined for the first one. */
function cursorOf(c: Context): string | undefined {
  const cursor = c.req.query("cursor");
  return cursor === undefined || cursor === "" ? undefined : cursor;
}

/** A form field as text ("" when absent). */
function field(form: Record<string, unknown>, name: string): string {
  const value = form[name];
  return typeof value === "string" ? value.trim() : "";
}

/** The create form as the body of `POST /jobs`, validated by the same schema. */
function createBody(form: CreateForm, limits: InputLimits): unknown {
  const body: Record<string, unknown> = { type: form.type };
  if (form.name !== "") body.name = form.name;
  if (form.schedule !== "") {
    if (form.type === "once") body.timestamp = form.schedule;
    else if (form.type === "interval") body.interval_seconds = Number(form.schedule);
    else body.cron_expression = form.schedule;
  }
  if (form.timezone !== "") body.timezone = form.timezone;
  if (form.webhook_url !== "") body.webhook_url = form.webhook_url;
  if (form.payload !== "") {
    body.payload = parseBoundedField(form.payload, "payload", limits);
  }
  return body;
}

export function consoleRoutes(deps: ConsoleDeps): Hono {
  const app = new Hono();
  const { service } = deps;
  const workers = deps.workers?.workers;

  const jobsPage = async (
    c: Context,
    extra: { form?: CreateForm; error?: string; status?: 400 | 404 | 409 | 507 } = {},
  ) => {
    const raw = Object.fromEntries(
      Object.entries(c.req.query()).filter(([k, v]) => v !== "" && k !== "done"),
    );
    const filters = { status: raw.status ?? "", type: raw.type ?? "", q: raw.q ?? "" };
    const query = listQuerySchema.safeParse({ ...raw, limit: String(PAGE_SIZE) });
    let error = extra.error;
    let page: Awaited<ReturnType<typeof service.list>> = { jobs: [], next_cursor: null };
    if (query.success) {
      page = await service.list({
        status: query.data.status as JobStatus | undefined,
        type: query.data.type,
        text: query.data.q,
        cursor: query.data.cursor,
        limit: PAGE_SIZE,
      });
    } else {
      error ??= fieldIssues(query.error).map((i) => `${i.path}: ${i.message}`).join("; ");
    }
    const next = page.next_cursor === null
      ? null
      : `/console/jobs?${new URLSearchParams({ ...filters, cursor: page.next_cursor })}`;
    return c.html(
      <JobsPage
        health={deps.node.health()}
        jobs={page.jobs.map(jobJson)}
        next={next}
        filters={filters}
        form={extra.form ?? EMPTY_FORM}
        error={error}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
      extra.status ?? (query.success ? 200 : 400),
    );
  };

  const jobPage = async (
    c: Context,
    id: string,
    extra: { error?: string; status?: 400 | 404 | 409 | 507 } = {},
  ) => {
    let job;
    try {
      job = await service.get(id);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      return c.html(<NotFoundPage health={deps.node.health()} message={error.message} />, 404);
    }
    const page = await service.executions(id, PAGE_SIZE, cursorOf(c));
    const placements = job.executor === null ? null : await placementsOf(c, id);
    return c.html(
      <JobPage
        health={deps.node.health()}
        job={jobJson(job)}
        executions={page.executions.map(executionJson)}
        next={page.next_cursor === null
          ? null
          : `/console/jobs/${id}?${new URLSearchParams({ cursor: page.next_cursor })}`}
        placements={placements?.view}
        refresh={placements?.active}
        error={extra.error}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
      extra.status ?? 200,
    );
  };

  /**
   * A worker job's placements: its last decision, and its allocations a page at a time (oldest
   * first, as `GET /allocations` pages them; `?placements=` is the cursor).
   */
  const placementsOf = async (c: Context, id: string) => {
    if (workers === undefined) return null;
    const cursor = c.req.query("placements");
    const [latest, page] = await Promise.all([
      workers.latestPlacement(id),
      workers.allocations({
        job_id: id,
        cursor: cursor === "" ? undefined : cursor,
        limit: PAGE_SIZE + 1,
      }),
    ]);
    const shown = page.slice(0, PAGE_SIZE);
    const next = page.length > PAGE_SIZE
      ? `/console/jobs/${id}?${new URLSearchParams({ placements: shown.at(-1)!.id })}`
      : null;
    return {
      view: (
        <Placements
          latest={latest === null ? null : allocationJson(latest)}
          allocations={shown.map((a) => allocationJson(a))}
          next={next}
        />
      ),
      active: latest !== null && ACTIVE.includes(latest.status),
    };
  };

  /** Runs a write from a job page: redirect on success, the page with the error otherwise. */
  const jobAction = async (c: Context, done: string, run: (id: string) => Promise<unknown>) => {
    const id = c.req.param("id")!;
    try {
      await run(id);
    } catch (error) {
      const problem = userError(error);
      if (problem === null) throw error;
      return await jobPage(c, id, { error: problem.message, status: problem.status });
    }
    return c.redirect(
      done === "deleted" ? "/console/jobs?done=deleted" : `/console/jobs/${id}?done=${done}`,
      303,
    );
  };

  app.get("/login", (c) =>
    c.html(
      <LoginPage
        node_id={deps.node.node_id}
        error={c.req.query("error") === "invalid"
          ? "That token is not one of this node's API tokens."
          : undefined}
      />,
    ));
  app.post("/login", async (c) => {
    const posted = await readForm(c);
    const token = typeof posted.token === "string" ? posted.token.trim() : "";
    setCookie(c, CONSOLE_TOKEN_COOKIE, token, {
      path: "/console",
      httpOnly: true,
      sameSite: "Strict",
      secure: new URL(c.req.url).protocol === "https:",
    });
    return c.redirect("/console", 303);
  });

  app.get("/", (c) =>
    c.html(
      <OverviewPage
        health={deps.node.health()}
        cluster={deps.node.cluster()}
        lateness={deps.lateness.summary()}
        bucket_ms={deps.lateness.bucket_ms}
      />,
    ));

  app.get("/jobs", (c) => jobsPage(c));

  app.post("/jobs", async (c) => {
    const posted = await readForm(c);
    const form: CreateForm = {
      name: field(posted, "name"),
      type: field(posted, "type"),
      schedule: field(posted, "schedule"),
      timezone: field(posted, "timezone"),
      webhook_url: field(posted, "webhook_url"),
      payload: field(posted, "payload"),
    };
    let id: string;
    try {
      const parsed = jobCreateSchema.safeParse(
        createBody(form, deps.input_limits ?? DEFAULT_INPUT_LIMITS),
      );
      if (!parsed.success) throw new ValidationError("invalid job", fieldIssues(parsed.error));
      const [{ job, created }] = await service.create([toJobInput(parsed.data, null)]);
      if (created) deps.onCreated(1);
      id = job.id;
    } catch (error) {
      const problem = userError(error);
      if (problem === null) throw error;
      deps.onRejected(
        (error as { reason?: string }).reason ??
          (error instanceof ValidationError ? "invalid" : (error as Error).constructor.name),
      );
      return await jobsPage(c, { form, error: problem.message, status: problem.status });
    }
    return c.redirect(`/console/jobs/${id}?done=created`, 303);
  });

  app.get("/jobs/:id", (c) => jobPage(c, c.req.param("id")));
  app.post("/jobs/:id/pause", (c) => jobAction(c, "paused", (id) => service.pause(id)));
  app.post("/jobs/:id/resume", (c) => jobAction(c, "resumed", (id) => service.resume(id)));
  app.post("/jobs/:id/trigger", (c) => jobAction(c, "triggered", (id) => service.trigger(id)));
  app.post("/jobs/:id/cancel", (c) =>
    jobAction(c, "cancelled", async (id) => {
      const reason = field(await readForm(c), "reason");
      if (reason.length > 1_000) {
        throw new ValidationError("invalid cancel request", [
          { path: "reason", message: "use at most 1000 characters" },
        ]);
      }
      return service.cancel(id, reason === "" ? "cancelled from the console" : reason);
    }));
  app.post("/jobs/:id/delete", (c) =>
    jobAction(c, "deleted", async (id) => {
      await service.delete(id);
      deps.onDeleted();
    }));

  if (workers !== undefined) workerRoutes(app, deps, workers);
  return app;
}

/** Allocations shown waiting on the Workers page. */
const PENDING_SHOWN = 50;

/** The Workers page, a worker's allocations, and drain and remove from the page. */
function workerRoutes(app: Hono, deps: ConsoleDeps, workers: WorkersService): void {
  const workersPage = async (
    c: Context,
    extra: { error?: string; status?: 400 | 404 | 409 | 507 } = {},
  ) => {
    const pending = await workers.allocations({ status: "pending", limit: PENDING_SHOWN });
    return c.html(
      <WorkersPage
        health={deps.node.health()}
        workers={workers.list()}
        pending={pending.map((a) => allocationJson(a))}
        error={extra.error}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
      extra.status ?? 200,
    );
  };

  const workerAction = async (c: Context, done: string, run: (id: string) => Promise<unknown>) => {
    try {
      await run(c.req.param("id")!);
    } catch (error) {
      const problem = userError(error);
      if (problem === null) throw error;
      return await workersPage(c, { error: problem.message, status: problem.status });
    }
    return c.redirect(`/console/workers?done=${done}`, 303);
  };

  app.get("/workers", (c) => workersPage(c));
  app.post("/workers/:id/drain", (c) => workerAction(c, "drained", (id) => workers.drain(id)));
  app.post("/workers/:id/remove", (c) => workerAction(c, "removed", (id) => workers.remove(id)));
  app.get("/workers/:id/allocations", async (c) => {
    const id = c.req.param("id");
    const page = await workers.allocations({
      worker_id: id,
      cursor: cursorOf(c),
      limit: PAGE_SIZE + 1,
    });
    const shown = page.slice(0, PAGE_SIZE);
    return c.html(
      <WorkerAllocationsPage
        health={deps.node.health()}
        worker_id={id}
        allocations={shown.map((a) => allocationJson(a))}
        next={page.length > PAGE_SIZE
          ? `/console/workers/${encodeURIComponent(id)}/allocations?${new URLSearchParams({
            cursor: shown.at(-1)!.id,
          })}`
          : null}
      />,
    );
  });
}
