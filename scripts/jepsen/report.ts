/**
 * The run's report (Markdown) and timeline (SVG: faults per node, the leader each node saw, and
 * the latency of every operation).
 *
 * @module
 */
import type { CheckResult, FiringStats } from "./checks.ts";
import type { History, HistoryOp } from "./history.ts";
import { acceptableAnswer } from "./checks.ts";
import type { HostileOptions } from "./hostile.ts";
import type { WorkerStats } from "./worker_checks.ts";

interface ReportOptions {
  seed: number;
  time_ms: number;
  nodes: number;
  clients: number;
  faults: readonly string[];
  firing_bound_ms: number;
  hostile: HostileOptions;
  workers?: number;
}

function count<T>(items: T[], by: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of items) m.set(by(t), (m.get(by(t)) ?? 0) + 1);
  return m;
}

const s = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;

export function renderReport(
  h: History,
  opts: ReportOptions,
  checks: CheckResult[],
  stats: FiringStats,
  worker_stats: WorkerStats | null = null,
): string {
  const ok = checks.every((c) => c.ok);
  const ops = h.ops;
  const byKind = count(ops, (o) => o.f);
  const outcomes = (f: string, t: string) => ops.filter((o) => o.f === f && o.type === t).length;
  const faults = count(h.nemesis, (e) => e.kind);
  const notApplied = h.nemesis.filter((e) => !e.applied);
  const terms = new Set(h.leaders.map((l) => l.term)).size;
  const lostCheck = checks.find((c) => c.name === "no lost acknowledged create");
  const senders = count(h.deliveries, (d) => d.sender ?? "unknown");
  const lines = [
    `# Jepsen run: seed ${h.seed} — ${ok ? "PASS" : "FAIL"}`,
    "",
    `${opts.nodes} nodes, ${opts.workers ?? 0} worker agents, ${opts.clients} clients, ${
      s(opts.time_ms)
    } of workload and faults (${opts.faults.join(", ")}), firing bound ${
      s(opts.firing_bound_ms)
    }. Started ${
      new Date(h.started_at).toISOString()
    }. Replay: \`./deno task jepsen --seed ${h.seed} --time ${
      opts.time_ms / 1_000
    }s --nodes ${opts.nodes} --clients ${opts.clients} --faults ${opts.faults.join(",")} --bound ${
      opts.firing_bound_ms / 1_000
    }s --hostile ${
      opts.hostile.kinds.length === 0 ? "off" : opts.hostile.kinds.join(",")
    } --workers ${opts.workers ?? 0}\`.`,
    "",
    "## Checkers",
    "",
    "| checker | verdict | summary |",
    "| ------- | ------- | ------- |",
    ...checks.map((c) => `| ${c.name} | ${c.ok ? "pass" : "**FAIL**"} | ${c.summary} |`),
    "",
    ...checks.filter((c) => !c.ok).flatMap((c) => [
      `### ${c.name}: violations`,
      "",
      ...c.violations.map((v) => `- \`${v.replaceAll("`", "'")}\``),
      "",
    ]),
    "## Operations",
    "",
    "| operation | total | ok | fail (no effect) | indeterminate |",
    "| --------- | ----- | -- | ---------------- | ------------- |",
    ...[...byKind].map(([f, n]) =>
      `| ${f} | ${n} | ${outcomes(f, "ok")} | ${outcomes(f, "fail")} | ${outcomes(f, "info")} |`
    ),
    "",
    `Indeterminate operations (timeouts, resets, 5xx on a write): ${
      ops.filter((o) => o.type === "info").length
    }; the checkers let each of them take effect at any later point or never. Lost acknowledged creates: ${
      lostCheck?.summary.match(/(\d+) lost/)?.[1] ?? "?"
    }.`,
    "",
    `Latency of ok operations: ${latencyLine(ops)}.`,
    "",
    ...hostileLines(h, opts.hostile),
    "## Faults",
    "",
    "| kind | count |",
    "| ---- | ----- |",
    ...[...faults].map(([k, n]) => `| ${k} | ${n} |`),
    "",
    `${clockLine(h, opts.faults)} Leader terms seen: ${terms}. Everything healed at ${
      s(h.healed_ms)
    }.`,
    "",
    ...(h.skipped ?? []).flatMap((line) => [`- ${line}`, ""]),
    ...(notApplied.length === 0 ? [] : [
      "Faults not applied as planned:",
      "",
      ...notApplied.map((e) => `- ${s(e.start_ms)} ${e.detail}: ${e.note ?? ""}`),
      "",
    ]),
    "<details><summary>Every fault</summary>",
    "",
    ...h.nemesis.map((e) =>
      `- ${s(e.start_ms)}–${s(e.end_ms)} ${e.kind}: ${e.detail}${e.note ? ` (${e.note})` : ""}`
    ),
    "",
    "</details>",
    "",
    "## Firing",
    "",
    `- one-off occurrences that had to fire: ${stats.occurrences_expected}, delivered: ${stats.delivered}`,
    `- deliveries: ${stats.deliveries}, redeliveries (beyond the first of an occurrence): ${stats.redeliveries}`,
    `- longest delay from when an occurrence could fire to its first delivery: ${
      s(stats.longest_delay_ms)
    }`,
    `- longest firing delay after the final heal: ${s(stats.longest_delay_after_heal_ms)}`,
    `- first deliveries earlier than the occurrence's time (by the harness's clock, over 1 s): ${stats.early}${
      stats.early === 0 ? "" : `, the earliest ${s(stats.earliest_ms)} before its time`
    }`,
    `- deliveries by sending node (from the socket's owner): ${
      [...senders].map(([k, n]) => `${k} ${n}`).join(", ")
    }`,
    "",
    ...workerLines(h, worker_stats),
    "## Files",
    "",
    "- `history.json`: every operation (invoke, complete, outcome, result), delivery, fault and leader sample",
    "- `timeline.svg`: faults per node, the leader each node saw, operation latency",
    "- `n*.log`: each node's log",
    ...(h.workers.length === 0 ? [] : [
      "- `w*.log`: each worker agent's log; `w*.runs`: the start and end lines its command wrote",
    ]),
    "",
  ];
  return lines.join("\n");
}

/** The workers' section: agents, worker jobs, occurrences, runs, allocations, capacity. */
function workerLines(h: History, w: WorkerStats | null): string[] {
  if (h.workers.length === 0) return [];
  if (w === null) return ["## Workers", "", "Not checked: the run ended with no leader.", ""];
  const items = h.ops.flatMap((o) => o.items ?? []).filter((i) => i.worker !== undefined);
  const keys = new Map(items.map((i) => [i.key, i]));
  const oneOff = [...keys.values()].filter((i) => !i.recurring).length;
  const faults = count(h.nemesis.filter((e) => e.kind.startsWith("worker-")), (e) => e.kind);
  const perWorker = count(h.worker_runs, (r) => r.worker);
  return [
    "## Workers",
    "",
    `- agents: ${h.workers.join(", ")}; ended on their own: ${h.worker_exits.length}`,
    `- worker jobs asked for: ${keys.size} (${oneOff} one-off, ${
      keys.size - oneOff
    } cron); in the final state: ${h.worker_jobs.length}`,
    `- occurrences that had to run: ${w.occurrences_expected}, started: ${w.started}, completed: ${w.completed}; cut short (cancel, delete, the run's end): ${w.cut_short}; missed by the misfire policy: ${w.missed}`,
    `- longest delay from an occurrence's time to its first start on a worker: ${
      s(w.longest_start_delay_ms)
    }`,
    `- runs recorded by the workers' command: ${w.runs} (${
      [...perWorker].map(([k, n]) => `${k} ${n}`).join(", ") || "none"
    }), ${w.runs_unfinished} without an end line, ${w.runs_of_deleted_jobs} of jobs deleted meanwhile`,
    `- allocations of the final worker jobs: ${w.allocations}, lost (lease ran out, worker lost): ${w.allocations_lost}; runs of one occurrence overlapping after a lost allocation: ${w.overlaps_after_loss}`,
    `- GET /workers samples: ${w.samples}; peak allocated share: ${
      Object.entries(w.peak_share).map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(", ") ||
      "nothing allocated"
    }; placed or running at the end: ${h.active_allocations.length}`,
    `- worker faults: ${[...faults].map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`,
    "",
  ];
}

/** The hostile client's section: requests by kind and by answer, and the bad answers. */
function hostileLines(h: History, opts: HostileOptions): string[] {
  if (opts.kinds.length === 0) return ["## Hostile client", "", "Off (`--hostile off`).", ""];
  const answer = (status: number | null) => status === null ? "no answer" : String(status);
  const kinds = [...count(h.hostile, (r) => r.kind)];
  const statuses = [...new Set(h.hostile.map((r) => answer(r.status)))].sort();
  const bad = h.hostile.filter((r) => !acceptableAnswer(r));
  return [
    "## Hostile client",
    "",
    `${h.hostile.length} requests (kinds ${
      opts.kinds.join(", ")
    }; at most ${opts.rate_per_s}/s and ${opts.max_requests} in all) to random nodes. By kind and answer:`,
    "",
    `| kind | total | ${statuses.join(" | ")} |`,
    `| ---- | ----- | ${statuses.map(() => "---").join(" | ")} |`,
    ...kinds.map(([kind, n]) => {
      const of = h.hostile.filter((r) => r.kind === kind);
      return `| ${kind} | ${n} | ${
        statuses.map((st) => of.filter((r) => answer(r.status) === st).length).join(" | ")
      } |`;
    }),
    "",
    ...(bad.length === 0 ? [] : [
      "Answers no request may get (5xx other than 503 with Retry-After):",
      "",
      ...bad.slice(0, 20).map((r) =>
        `- ${s(r.at_ms)} ${r.kind} to ${r.node}: ${r.what} → HTTP ${r.status}`
      ),
      "",
    ]),
    `Node processes that ended on their own: ${h.node_exits.length}${
      h.node_exits.length === 0
        ? ""
        : ` (${h.node_exits.map((e) => `${e.node} at ${s(e.at_ms)}`).join(", ")})`
    }. After the heal: ${
      h.probes.map((p) =>
        `${p.node} /health ${p.health_status ?? "no answer"} ${p.health ?? ""}, applied ${
          p.applied_index ?? "?"
        } of ${p.target_index ?? "?"}`
      ).join("; ")
    }.`,
    "",
    `No-answer requests: refused (a node the nemesis stopped), reset, or timed out; the header kinds may also get a closed connection from the HTTP server. Answers made up by the harness's proxy (a black-holed or down leader a follower forwarded to, relayed): ${
      h.hostile.filter((r) => r.proxy !== undefined).length
    }.`,
    "",
  ];
}

/** What the report says of clock jumps: how many, or why there were none. */
function clockLine(h: History, faults: readonly string[]): string {
  if ((h.skipped ?? []).some((line) => line.startsWith("clock:"))) {
    return "Clock jumps: skipped (libfaketime not installed).";
  }
  if (!faults.includes("clock")) {
    return "Clock jumps: not asked for (`--faults ...,clock`, needs libfaketime).";
  }
  const jumps = h.nemesis.filter((e) => e.kind === "clock");
  return `Clock jumps (libfaketime, wall clock only, monotonic untouched): ${jumps.length}.`;
}

function latencyLine(ops: HistoryOp[]): string {
  const lat = ops.filter((o) => o.type === "ok").map((o) => o.complete_ms - o.invoke_ms).sort((
    a,
    b,
  ) => a - b);
  if (lat.length === 0) return "none";
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(0);
  return `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`;
}

const COLORS: Record<string, string> = {
  kill: "#d62728",
  pause: "#ff7f0e",
  partition: "#9467bd",
  transfer: "#2ca02c",
  member: "#8c564b",
  clock: "#17becf",
  crash: "#393b79",
  "worker-kill": "#e7969c",
  "worker-pause": "#fdae6b",
  "worker-partition": "#c5b0d5",
};
const LEADER_COLORS = ["#1f77b4", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f", "#aec7e8"];

const esc = (t: string) => t.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The timeline picture. */
export function renderTimeline(h: History): string {
  const width = 1_200;
  const left = 70;
  const lane = 22;
  const end = Math.max(h.healed_ms, ...h.ops.map((o) => o.complete_ms), 1);
  const x = (t: number) => left + (t / end) * (width - left - 10);
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="${left}" y="18" font-size="13">Seed ${h.seed}: faults per node</text>`);
  for (const name of [...h.nodes, ...h.workers]) {
    parts.push(`<text x="4" y="${y + 15}" font-size="12">${name}</text>`);
    parts.push(
      `<line x1="${left}" y1="${y + lane / 2}" x2="${width - 10}" y2="${
        y + lane / 2
      }" stroke="#ddd"/>`,
    );
    for (const e of h.nemesis.filter((e) => e.nodes.includes(name))) {
      const w = Math.max(2, x(e.end_ms) - x(e.start_ms));
      parts.push(
        `<rect x="${x(e.start_ms)}" y="${y + 3}" width="${w}" height="${lane - 6}" fill="${
          COLORS[e.kind]
        }" opacity="0.8"><title>${esc(`${e.kind}: ${e.detail}`)}</title></rect>`,
      );
    }
    y += lane;
  }
  y += 10;
  parts.push(`<text x="${left}" y="${y + 12}" font-size="13">Leader as each node saw it</text>`);
  y += 18;
  const leaderColor = new Map(h.nodes.map((n, i) => [n, LEADER_COLORS[i % LEADER_COLORS.length]]));
  for (const name of h.nodes) {
    parts.push(`<text x="4" y="${y + 13}" font-size="12">${name}</text>`);
    const samples = h.leaders.filter((l) => l.node === name);
    samples.forEach((sample, i) => {
      const until = samples[i + 1]?.at_ms ?? end;
      if (sample.leader === null) return;
      parts.push(
        `<rect x="${x(sample.at_ms)}" y="${y + 3}" width="${
          Math.max(1, x(until) - x(sample.at_ms))
        }" height="${lane - 8}" fill="${leaderColor.get(sample.leader) ?? "#000"}"><title>${
          esc(`leader ${sample.leader}, term ${sample.term}`)
        }</title></rect>`,
      );
    });
    y += lane - 4;
  }
  y += 14;
  const plot = 160;
  const maxLat = Math.max(100, ...h.ops.map((o) => o.complete_ms - o.invoke_ms));
  parts.push(
    `<text x="${left}" y="${y + 12}" font-size="13">Operation latency (log scale, up to ${
      maxLat.toFixed(0)
    } ms): ok green, fail red, indeterminate grey</text>`,
  );
  y += 18;
  const ly = (ms: number) => y + plot - (Math.log10(Math.max(1, ms)) / Math.log10(maxLat)) * plot;
  for (const tick of [1, 10, 100, 1_000, 10_000].filter((t) => t <= maxLat)) {
    parts.push(
      `<line x1="${left}" y1="${ly(tick)}" x2="${width - 10}" y2="${ly(tick)}" stroke="#eee"/>`,
      `<text x="4" y="${ly(tick) + 4}" font-size="10">${tick} ms</text>`,
    );
  }
  const color = { ok: "#2ca02c", fail: "#d62728", info: "#7f7f7f" };
  for (const o of h.ops) {
    parts.push(
      `<circle cx="${x(o.invoke_ms).toFixed(1)}" cy="${
        ly(o.complete_ms - o.invoke_ms).toFixed(1)
      }" r="1.6" fill="${color[o.type]}"/>`,
    );
  }
  y += plot + 10;
  for (let t = 0; t <= end; t += end > 120_000 ? 60_000 : 10_000) {
    parts.push(
      `<text x="${x(t)}" y="${y + 12}" font-size="10" text-anchor="middle">${t / 1_000} s</text>`,
    );
  }
  parts.push(
    `<line x1="${x(h.healed_ms)}" y1="26" x2="${
      x(h.healed_ms)
    }" y2="${y}" stroke="#000" stroke-dasharray="4 3"><title>healed</title></line>`,
  );
  y += 24;
  const legend = Object.entries(COLORS).map(([k, c], i) =>
    `<rect x="${left + i * 110}" y="${y}" width="12" height="12" fill="${c}"/><text x="${
      left + i * 110 + 16
    }" y="${y + 10}" font-size="11">${k}</text>`
  );
  y += 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${parts.join("\n")}
${legend.join("\n")}
</svg>
`;
}
