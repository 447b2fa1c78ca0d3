/**
 * The console's pages, rendered on the server with hono/jsx (text and attributes are escaped by
 * it). Jobs and executions are shown in the API's shapes (`jobJson`, `executionJson`), so the
 * page and `GET /jobs/...` never disagree and a job's secret is never shown.
 */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { ClusterView, executionJson, HealthView, jobJson } from "../http/schemas.ts";
import { JOB_STATUSES } from "../scheduler/model.ts";
import { formatSeconds, LatenessChart } from "./chart.tsx";
import type { LatenessBucket } from "../scheduler/lateness.ts";

export type JobView = ReturnType<typeof jobJson>;
export type ExecutionView = ReturnType<typeof executionJson>;

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:baseline}
header a{color:#fff}header .node{margin-left:auto;font-size:13px;opacity:.9}
main{padding:12px 16px;max-width:1200px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;margin:4px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{margin:0;white-space:pre-wrap;max-width:640px}
form.inline{display:inline-block;margin:0 6px 6px 0}
fieldset{border:1px solid #ccc;background:#fff;margin:8px 0}
label{display:inline-block;margin:2px 10px 2px 0}
input[type=text],input[type=search],textarea,select{font:inherit;padding:2px 4px}
button{font:inherit;padding:2px 10px;cursor:pointer}
.error{background:#fdecea;border:1px solid #e6a1a1;padding:6px 10px;margin:8px 0}
.notice{background:#eaf5ea;border:1px solid #9fd09f;padding:6px 10px;margin:8px 0}
.status{font-weight:600}.muted{color:#777}
.legend{margin-right:10px}.swatch{display:inline-block;width:10px;height:10px;margin-right:3px}
figure.chart{margin:0;background:#fff;border:1px solid #ddd;display:inline-block;padding:6px}
.usage{white-space:nowrap}.bar{display:inline-block;width:60px;height:8px;background:#e4e4e4}
.bar>span{display:block;height:100%;background:#3b7dd8}.bar.full>span{background:#d0453a}
td.time{white-space:nowrap}td.detail{min-width:280px}
`;

const time = (iso: string | null) =>
  iso === null ? "—" : iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
const dash = (v: unknown) => v === null || v === undefined || v === "" ? "—" : String(v);

export function schedule(job: JobView): string {
  if (job.kind === "once") return `at ${time(job.timestamp)}`;
  if (job.kind === "cron") return `${job.cron_expression} (${job.timezone})`;
  return `every ${job.interval_seconds} s`;
}

/** Delay from an execution's scheduled time to its first attempt, or null when nothing ran. */
function lateness(e: ExecutionView): number | null {
  if (e.attempt === 0 || e.started_at === null || e.scheduled_at === null) return null;
  return Math.max(0, Date.parse(e.started_at) - Date.parse(e.scheduled_at)) / 1_000;
}

export function Layout({ title, health, error, notice, refresh, children }: {
  title: string;
  health: HealthView;
  error?: string;
  notice?: string;
  /** Reload this URL every 2 s (while something is in flight). */
  refresh?: string;
  children: Child;
}) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          {refresh === undefined ? "" : <meta http-equiv="refresh" content={`2;url=${refresh}`} />}
          <title>{title} · Tickraft {health.node_id}</title>
          <style>{raw(CSS)}</style>
        </head>
        <body>
          <header>
            <strong>Tickraft</strong>
            <a href="/console">Overview</a>
            <a href="/console/jobs">Jobs</a>
            <a href="/console/workers">Workers</a>
            <span class="node">
              node <b>{health.node_id}</b> · {health.role} · leader {dash(health.leader)}
            </span>
          </header>
          <main>
            {error === undefined ? "" : <div class="error" role="alert">{error}</div>}
            {notice === undefined ? "" : <div class="notice" role="status">{notice}</div>}
            {children}
          </main>
        </body>
      </html>
    </>
  );
}

export function OverviewPage({ health, cluster, lateness, bucket_ms }: {
  health: HealthView;
  cluster: ClusterView;
  lateness: LatenessBucket[];
  bucket_ms: number;
}) {
  const leaderAddress = cluster.members.find((m) => m.id === cluster.leader)?.address;
  return (
    <Layout title="Overview" health={health}>
      <h1>Node {health.node_id}</h1>
      <table>
        <tr>
          <th>mode</th>
          <td>{health.mode}</td>
          <th>role</th>
          <td>{cluster.role}</td>
          <th>leader</th>
          <td>
            {cluster.leader === null
              ? "none known (election in progress)"
              : leaderAddress === undefined || cluster.leader === health.node_id
              ? cluster.leader
              : <a href={`${leaderAddress.replace(/\/$/, "")}/console`}>{cluster.leader}</a>}
          </td>
          <th>term</th>
          <td class="num">{cluster.term}</td>
        </tr>
        <tr>
          <th>commit index</th>
          <td class="num">{cluster.commit_index}</td>
          <th>applied index</th>
          <td class="num">{cluster.applied_index}</td>
          <th>firing</th>
          <td>{health.firing ? "yes" : "no"}</td>
          <th>uptime</th>
          <td class="num">{health.uptime_seconds} s</td>
        </tr>
      </table>

      <h2>Members</h2>
      <table id="members">
        <tr>
          <th>member</th>
          <th>address</th>
          <th>role</th>
          <th>match index</th>
          <th>replication lag (entries)</th>
        </tr>
        {cluster.members.map((m) => (
          <tr>
            <td>{m.id}</td>
            <td>{m.address}</td>
            <td>{m.id === cluster.leader ? `leader (${m.role})` : m.role}</td>
            <td class="num">{dash(m.match_index)}</td>
            <td class="num">{dash(m.lag)}</td>
          </tr>
        ))}
      </table>
      {cluster.role === "leader"
        ? ""
        : <p class="muted">Replication lag is tracked by the leader; open its console for it.</p>}

      <h2>Jobs</h2>
      <table id="job-counts">
        <tr>
          {JOB_STATUSES.map((s) => <th key={s}>{s}</th>)}
          <th>total / limit</th>
          <th>deliveries in flight</th>
          <th>timer entries</th>
        </tr>
        <tr>
          {JOB_STATUSES.map((s) => (
            <td class="num">
              <a href={`/console/jobs?status=${s}`}>{health.jobs.by_status[s] ?? 0}</a>
            </td>
          ))}
          <td class="num">{health.jobs.total} / {health.jobs.limit}</td>
          <td class="num">
            {health.queue.inflight_deliveries} / {health.queue.max_inflight_deliveries}
          </td>
          <td class="num">{health.queue.timer_entries}</td>
        </tr>
      </table>

      <h2>Firing lateness</h2>
      <LatenessChart buckets={lateness} bucket_ms={bucket_ms} />
    </Layout>
  );
}

/** Values of the create form, echoed back when it is refused. */
export interface CreateForm {
  name: string;
  type: string;
  schedule: string;
  timezone: string;
  webhook_url: string;
  payload: string;
}

export const EMPTY_FORM: CreateForm = {
  name: "",
  type: "cron",
  schedule: "",
  timezone: "",
  webhook_url: "",
  payload: "",
};

export function JobsPage({ health, jobs, next, filters, form, error, notice }: {
  health: HealthView;
  jobs: JobView[];
  /** URL of the next page, if any. */
  next: string | null;
  filters: { status: string; type: string; q: string };
  form: CreateForm;
  error?: string;
  notice?: string;
}) {
  return (
    <Layout title="Jobs" health={health} error={error} notice={notice}>
      <h1>Jobs</h1>
      <form method="get" action="/console/jobs" id="filters">
        <label>
          status{" "}
          <select name="status">
            <option value="">any</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s} selected={filters.status === s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          type{" "}
          <select name="type">
            <option value="">any</option>
            {["once", "cron", "interval"].map((t) => (
              <option value={t} selected={filters.type === t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          text{" "}
          <input type="search" name="q" value={filters.q} placeholder="id, name, URL, payload" />
        </label>
        <button type="submit">Filter</button>
      </form>

      <table id="jobs">
        <tr>
          <th>id</th>
          <th>name</th>
          <th>type</th>
          <th>schedule</th>
          <th>status</th>
          <th>next run</th>
          <th>last run</th>
          <th>runs</th>
        </tr>
        {jobs.map((j) => (
          <tr>
            <td>
              <a href={`/console/jobs/${j.id}`}>{j.id}</a>
            </td>
            <td>{dash(j.name)}</td>
            <td>{j.type}</td>
            <td>{schedule(j)}</td>
            <td class="status">{j.status}</td>
            <td>{time(j.next_run_at)}</td>
            <td>{time(j.last_run_at)} {j.last_status ?? ""}</td>
            <td class="num">{j.run_count}</td>
          </tr>
        ))}
      </table>
      {jobs.length === 0 ? <p class="muted">No jobs match.</p> : ""}
      {next === null ? "" : <a href={next} id="next-page">Next page →</a>}

      <h2>Create a job</h2>
      <form method="post" action="/console/jobs" id="create">
        <fieldset>
          <label>
            name <input type="text" name="name" value={form.name} maxlength={200} />
          </label>
          <label>
            type{" "}
            <select name="type">
              {["once", "cron", "interval"].map((t) => (
                <option value={t} selected={form.type === t}>{t}</option>
              ))}
            </select>
          </label>
          <label>
            schedule{" "}
            <input
              type="text"
              name="schedule"
              value={form.schedule}
              size={28}
              placeholder="*/5 * * * * · 2030-01-01T09:00:00Z · 30"
            />
          </label>
          <label>
            timezone <input type="text" name="timezone" value={form.timezone} placeholder="UTC" />
          </label>
          <br />
          <label>
            webhook URL{" "}
            <input
              type="text"
              name="webhook_url"
              value={form.webhook_url}
              size={48}
              placeholder="http://127.0.0.1:9000/hook"
            />
          </label>
          <br />
          <label>
            payload (JSON)<br />
            <textarea name="payload" rows={3} cols={60}>{form.payload}</textarea>
          </label>
          <br />
          <span class="muted">
            schedule: a cron expression (cron), an ISO 8601 time with a zone (once), or seconds
            (interval)
          </span>
          <br />
          <button type="submit">Create job</button>
        </fieldset>
      </form>
    </Layout>
  );
}

/** Statuses a job does not leave: nothing to pause, resume or cancel. */
const FINISHED = ["completed", "failed", "missed", "cancelled"];

export function JobPage({ health, job, executions, next, placements, refresh, error, notice }: {
  health: HealthView;
  job: JobView;
  executions: ExecutionView[];
  next: string | null;
  /** A worker job's placements (workers_views.tsx), shown above its executions. */
  placements?: Child;
  /** Reload the page while something is in flight that the executions do not show. */
  refresh?: boolean;
  error?: string;
  notice?: string;
}) {
  const base = `/console/jobs/${job.id}`;
  const inFlight = executions.some((e) => e.status === "in_progress" || e.status === "retrying");
  const fields: [string, unknown][] = [
    ["id", job.id],
    ["name", job.name],
    ["type", job.type],
    ["schedule", schedule(job)],
    ["status", job.status],
    ["cancel reason", job.cancel_reason],
    ["next run", time(job.next_run_at)],
    ["last run", `${time(job.last_run_at)} ${job.last_status ?? ""}`],
    ["runs / attempts", `${job.run_count} / ${job.attempt_count}`],
    ["webhook", job.webhook_url === null ? null : `${job.method} ${job.webhook_url}`],
    ["executor", job.executor === null ? null : JSON.stringify(job.executor)],
    ["overlap policy", job.overlap_policy],
    ["max attempts, timeout", `${job.max_attempts}, ${job.timeout_seconds} s`],
    ["created", time(job.created_at)],
    ["updated", time(job.updated_at)],
  ];
  return (
    <Layout
      title={`Job ${job.name ?? job.id}`}
      health={health}
      error={error}
      notice={notice}
      refresh={inFlight || refresh === true ? base : undefined}
    >
      <h1>Job {job.name ?? job.id}</h1>
      <div id="actions">
        {job.status === "cancelled"
          ? ""
          : (
            <form class="inline" method="post" action={`${base}/trigger`}>
              <button type="submit">Run now</button>
            </form>
          )}
        {job.status === "paused"
          ? (
            <form class="inline" method="post" action={`${base}/resume`}>
              <button type="submit">Resume</button>
            </form>
          )
          : job.status === "pending" || job.status === "in_progress"
          ? (
            <form class="inline" method="post" action={`${base}/pause`}>
              <button type="submit">Pause</button>
            </form>
          )
          : ""}
        {FINISHED.includes(job.status)
          ? ""
          : (
            <form class="inline" method="post" action={`${base}/cancel`}>
              <input type="text" name="reason" placeholder="reason" maxlength={1000} />{" "}
              <button type="submit">Cancel</button>
            </form>
          )}
        <form
          class="inline"
          method="post"
          action={`${base}/delete`}
          onsubmit="return confirm('Delete this job and its history?')"
        >
          <button type="submit">Delete</button>
        </form>
      </div>
      <table id="job">
        {fields.map(([k, v]) => (
          <tr>
            <th>{k}</th>
            <td>{dash(v)}</td>
          </tr>
        ))}
        <tr>
          <th>payload</th>
          <td>
            <pre>{JSON.stringify(job.payload, null, 2)}</pre>
          </td>
        </tr>
      </table>
      {placements ?? ""}

      <h2>Executions</h2>
      <table id="executions">
        <tr>
          <th>execution</th>
          <th>trigger</th>
          <th>status</th>
          <th>attempt</th>
          <th>HTTP status</th>
          <th>error class</th>
          <th>duration</th>
          <th>scheduled</th>
          <th>started</th>
          <th>lateness</th>
        </tr>
        {executions.map((e) => {
          const late = lateness(e);
          return (
            <tr>
              <td>{e.id}</td>
              <td>{e.trigger}</td>
              <td class="status">{e.status}</td>
              <td class="num">{e.attempt}</td>
              <td class="num">{dash(e.status_code)}</td>
              <td title={e.error ?? ""}>{dash(e.error_class)}</td>
              <td class="num">{e.duration_ms === null ? "—" : `${e.duration_ms} ms`}</td>
              <td>{time(e.scheduled_at)}</td>
              <td>{time(e.started_at)}</td>
              <td class="num">{late === null ? "—" : formatSeconds(late)}</td>
            </tr>
          );
        })}
      </table>
      {executions.length === 0 ? <p class="muted">No executions yet.</p> : ""}
      {next === null ? "" : <a href={next}>Older executions →</a>}
    </Layout>
  );
}

export function NotFoundPage({ health, message }: { health: HealthView; message: string }) {
  return (
    <Layout title="Not found" health={health} error={message}>
      <p>
        <a href="/console/jobs">Back to the jobs</a>
      </p>
    </Layout>
  );
}

/** The console's sign-in page (only shown when the node has API tokens). */
export function LoginPage({ node_id, error }: { node_id: string; error?: string }) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <title>Sign in · Tickraft {node_id}</title>
          <style>{raw(CSS)}</style>
        </head>
        <body>
          <header>
            <strong>Tickraft</strong>{" "}
            <span class="node">
              node <b>{node_id}</b>
            </span>
          </header>
          <main>
            <h1>Sign in</h1>
            {error === undefined ? "" : <p class="error">{error}</p>}
            <form method="post" action="/console/login">
              <label>
                API token (API_TOKENS_ADMIN, or API_TOKENS_READ to look only){" "}
                <input type="password" name="token" autocomplete="current-password" required />
              </label>{" "}
              <button type="submit">Sign in</button>
            </form>
          </main>
        </body>
      </html>
    </>
  );
}
