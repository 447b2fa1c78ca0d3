/** The firing-lateness chart: p50, p99 and max per bucket as inline SVG, drawn on the server. */
import type { LatenessBucket } from "../scheduler/lateness.ts";

const WIDTH = 720;
const HEIGHT = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };
const SERIES = [
  { key: "max", color: "#c0392b", label: "max" },
  { key: "p99", color: "#e67e22", label: "p99" },
  { key: "p50", color: "#2471a3", label: "p50" },
] as const;

/** The smallest 1, 2 or 5 × 10^k that is at least `value`. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((n) => n >= value)!;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1_000 * 10) / 10} ms`;
  return `${Math.round(seconds * 100) / 100} s`;
}

export function LatenessChart({ buckets, bucket_ms }: {
  buckets: LatenessBucket[];
  bucket_ms: number;
}) {
  const fired = buckets.reduce((n, b) => n + b.count, 0);
  const top = niceCeiling(Math.max(0.001, ...buckets.map((b) => b.max ?? 0)));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (i + 0.5) * plotW / buckets.length;
  const y = (seconds: number) => PAD.top + plotH - seconds / top * plotH;
  const window_s = buckets.length * bucket_ms / 1_000;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        width={WIDTH}
        height={HEIGHT}
        role="img"
        aria-label="firing lateness over time"
      >
        {ticks.map((t) => (
          <g>
            <line
              x1={PAD.left}
              x2={WIDTH - PAD.right}
              y1={y(t * top)}
              y2={y(t * top)}
              stroke="#ddd"
            />
            <text x={PAD.left - 6} y={y(t * top) + 4} text-anchor="end" font-size="11">
              {formatSeconds(t * top)}
            </text>
          </g>
        ))}
        {[0, 0.5, 1].map((t) => (
          <text
            x={PAD.left + t * plotW}
            y={HEIGHT - 8}
            text-anchor={t === 0 ? "start" : t === 1 ? "end" : "middle"}
            font-size="11"
          >
            {t === 1 ? "now" : `-${Math.round(window_s * (1 - t) / 60)} min`}
          </text>
        ))}
        {SERIES.map((s) => {
          const points = buckets.flatMap((b, i) => {
            const v = b[s.key];
            return v === null ? [] : [`${x(i).toFixed(1)},${y(v).toFixed(1)}`];
          });
          return (
            <g>
              <polyline points={points.join(" ")} fill="none" stroke={s.color} stroke-width="1.5" />
              {points.map((p) => {
                const [cx, cy] = p.split(",");
                return <circle key={p} cx={cx} cy={cy} r="2" fill={s.color} />;
              })}
            </g>
          );
        })}
      </svg>
      <figcaption>
        {SERIES.map((s) => (
          <span class="legend">
            <span class="swatch" style={`background:${s.color}`} /> {s.label}
          </span>
        ))} per {bucket_ms / 1_000} s over the last {window_s / 60} minutes; {fired === 0
          ? "this node fired nothing in that time (only the leader fires)"
          : `${fired} occurrences fired`}
      </figcaption>
    </figure>
  );
}
