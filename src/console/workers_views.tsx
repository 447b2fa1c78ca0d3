/**
 * The console's views of the worker fleet: the Workers page (each worker's status, place,
 * labels, allocated against capacity per resource, latest heartbeat on the leader) and the
 * placements of one job, shown on its page. Allocations are shown in the API's shape
 * (`allocationJson`), so the page and `GET /allocations` never disagree; hono/jsx escapes all text.
 */
import type { allocationJson } from "../http/workers.ts";
import type { HealthView } from "../http/schemas.ts";
import type { Resources } from "../placement/types.ts";
import type { WorkerInfo } from "../workers/service.ts";
import { Layout } from "./views.tsx";

export type AllocationView = ReturnType<typeof allocationJson>;

/** The resources in the order the placement engine checks them, with their labels and units. */
const RESOURCES: readonly [keyof Resources, string, string][] = [
  ["cpu_millis", "CPU", "m"],
  ["memory_mb", "memory", " MiB"],
  ["disk_mb", "disk", " MiB"],
  ["slots", "slots", ""],
];

/** Share of a bar above which it is drawn as nearly full. */
const NEARLY_FULL = 0.9;

const time = (iso: string | null) =>
  iso === null ? "—" : iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
const msTime = (ms: number) => time(new Date(ms).toISOString());

/** `k=v` pairs, or a dash. */
function pairs(labels: Record<string, string>): string {
  const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(", ");
  return text === "" ? "—" : text;
}

/** Allocated against capacity of one resource: a bar with the numbers beside it. */
function Usage({ allocated, capacity, unit, name }: {
  allocated: number;
  capacity: number;
  unit: string;
  name: string;
}) {
  const share = capacity === 0 ? 0 : Math.min(1, allocated / capacity);
  const level = share >= NEARLY_FULL ? "bar full" : "bar";
  return (
    <div class="usage" title={`${name}: ${allocated} of ${capacity}${unit} allocated`}>
      <span class={level}>
        <span style={`width:${Math.round(share * 100)}%`}></span>
      </span>{" "}
      <span class="num">{allocated} / {capacity}{unit}</span>
    </div>
  );
}

/** What an allocation came to, or why it waits. */
export function allocationDetail(a: AllocationView): string {
  if (a.outcome === null) return a.explanation ?? "—";
  const o = a.outcome;
  const code = o.exit_code !== null
    ? `exit ${o.exit_code}`
    : o.status_code !== null
    ? `HTTP ${o.status_code}`
    : "";
  return [o.ok ? "ok" : "failed", code, o.error ?? "", `${o.duration_ms} ms`]
    .filter((p) => p !== "").join(", ");
}

const workerLink = (id: string | null) =>
  id === null ? "—" : <a href={`/console/workers#worker-${id}`}>{id}</a>;

export function WorkersPage({ health, workers, pending, error, notice }: {
  health: HealthView;
  workers: WorkerInfo[];
  /** Allocations that fit no worker yet, with the explanation. */
  pending: AllocationView[];
  error?: string;
  notice?: string;
}) {
  const leads = health.role === "leader";
  return (
    <Layout title="Workers" health={health} error={error} notice={notice}>
      <h1>Workers</h1>
      <table id="workers">
        <tr>
          <th>worker</th>
          <th>status</th>
          <th>pool</th>
          <th>region / zone</th>
          <th>labels</th>
          <th>taints</th>
          {RESOURCES.map(([key, name]) => <th key={key}>{name}</th>)}
          <th>allocations</th>
          <th>last heartbeat</th>
          <th>usage</th>
          <th></th>
        </tr>
        {workers.map(({ worker: w, allocated, allocations, heartbeat }) => (
          <tr id={`worker-${w.id}`}>
            <td>{w.id}</td>
            <td>
              <span class="status">{w.status}</span>
              {w.status_reason === null ? "" : <div class="muted">{w.status_reason}</div>}
            </td>
            <td>{w.pool}</td>
            <td>{w.region || "—"} / {w.zone || "—"}</td>
            <td>{pairs(w.labels)}</td>
            <td>
              {w.taints.length === 0
                ? "—"
                : w.taints.map((t) =>
                  `${t.key}=${t.value}:${t.effect}`
                ).join(", ")}
            </td>
            {RESOURCES.map(([key, name, unit]) => (
              <td>
                <Usage
                  allocated={allocated[key]}
                  capacity={w.capacity[key]}
                  unit={unit}
                  name={name}
                />
              </td>
            ))}
            <td class="num">
              <a href={`/console/workers/${w.id}/allocations`}>{allocations}</a>
            </td>
            <td class="time">{heartbeat === null ? "—" : msTime(heartbeat.at_ms)}</td>
            <td>
              {heartbeat === null
                ? "—"
                : `cpu ${heartbeat.usage.cpu_percent}%, memory ${heartbeat.usage.memory_percent}%`}
            </td>
            <td>
              {w.status === "draining"
                ? ""
                : (
                  <form class="inline" method="post" action={`/console/workers/${w.id}/drain`}>
                    <button type="submit">Drain</button>
                  </form>
                )}
              <form
                class="inline"
                method="post"
                action={`/console/workers/${w.id}/remove`}
                onsubmit="return confirm('Remove this worker? Its allocations are placed again.')"
              >
                <button type="submit">Remove</button>
              </form>
            </td>
          </tr>
        ))}
      </table>
      {workers.length === 0
        ? (
          <p class="muted">
            No workers registered. Start one with{" "}
            <code>tickraft worker --server {"<this node's URL>"}</code>.
          </p>
        )
        : ""}
      {leads ? "" : (
        <p class="muted">
          Heartbeats are kept in the leader's memory, not the log; open the leader's console for
          them.
        </p>
      )}

      <h2>Waiting for a worker</h2>
      <table id="pending">
        <tr>
          <th>allocation</th>
          <th>job</th>
          <th>attempt</th>
          <th>scheduled</th>
          <th>why it waits</th>
        </tr>
        {pending.map((a) => (
          <tr>
            <td>{a.id}</td>
            <td>
              <a href={`/console/jobs/${a.job_id}`}>{a.job_id}</a>
            </td>
            <td class="num">{a.attempt}</td>
            <td class="time">{time(a.scheduled_at)}</td>
            <td class="detail">{allocationDetail(a)}</td>
          </tr>
        ))}
      </table>
      {pending.length === 0 ? <p class="muted">No allocation is waiting.</p> : ""}
    </Layout>
  );
}

/** Allocations, one row each; `show_job` adds a column linking each to its job. */
export function AllocationsTable({ id, allocations, show_job }: {
  id: string;
  allocations: AllocationView[];
  show_job?: boolean;
}) {
  return (
    <table id={id}>
      <tr>
        <th>allocation</th>
        {show_job ? <th>job</th> : ""}
        <th>attempt</th>
        <th>scheduled</th>
        <th>worker</th>
        <th>status</th>
        <th>placed</th>
        <th>started</th>
        <th>finished</th>
        <th>lease until</th>
        <th>outcome or why it waits</th>
      </tr>
      {allocations.map((a) => (
        <tr>
          <td>{a.id}</td>
          {show_job
            ? (
              <td>
                <a href={`/console/jobs/${a.job_id}`}>{a.job_id}</a>
              </td>
            )
            : ""}
          <td class="num">{a.attempt}</td>
          <td class="time">{time(a.scheduled_at)}</td>
          <td>{workerLink(a.worker_id)}</td>
          <td class="status">{a.status}</td>
          <td class="time">{time(a.placed_at)}</td>
          <td class="time">{time(a.started_at)}</td>
          <td class="time">{time(a.finished_at)}</td>
          <td class="time">{time(a.lease_expires_at)}</td>
          <td class="detail">
            {allocationDetail(a)}
            {a.outcome?.output_excerpt ? <pre class="muted">{a.outcome.output_excerpt}</pre> : ""}
          </td>
        </tr>
      ))}
    </table>
  );
}

/** A job's placements on its page: the last decision first, then its allocations in order. */
export function Placements({ latest, allocations, next }: {
  latest: AllocationView | null;
  allocations: AllocationView[];
  /** URL of the next page of allocations, if any. */
  next: string | null;
}) {
  return (
    <>
      <h2>Placements</h2>
      <p id="placement">
        {latest === null
          ? "Not placed yet: the first occurrence has not come due."
          : latest.status === "pending"
          ? (
            <>
              <b>Waiting for a worker:</b> {latest.explanation ?? "no worker fits"}
            </>
          )
          : (
            <>
              Last placement: <span class="status">{latest.status}</span> on{" "}
              {workerLink(latest.worker_id)}
              {latest.score === null ? "" : ` (score ${latest.score.toFixed(3)})`}
            </>
          )}
      </p>
      <AllocationsTable id="placements" allocations={allocations} />
      {next === null ? "" : <a href={next}>Later placements →</a>}
    </>
  );
}

export function WorkerAllocationsPage({ health, worker_id, allocations, next }: {
  health: HealthView;
  worker_id: string;
  allocations: AllocationView[];
  next: string | null;
}) {
  return (
    <Layout title={`Worker ${worker_id}`} health={health}>
      <h1>Allocations on {worker_id}</h1>
      <AllocationsTable id="worker-allocations" allocations={allocations} show_job />
      {allocations.length === 0 ? <p class="muted">No allocations on this worker.</p> : ""}
      {next === null ? "" : <a href={next}>Later allocations →</a>}
    </Layout>
  );
}
