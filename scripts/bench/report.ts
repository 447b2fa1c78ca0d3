/**
 * Formatting of the benchmark's results: numbers with units, ratios, and a Markdown table whose
 * columns are padded so it reads the same in a terminal and in docs/benchmarks.md.
 *
 * @module
 */
import type { LoadResult } from "./load.ts";

const MB = 1_000_000;

/** Items per second, rounded, with thousands separators. */
export function rate(per_s: number): string {
  return `${Math.round(per_s).toLocaleString("en-US")}/s`;
}

/** Milliseconds: one decimal below 10 ms, whole above. */
export function ms(value: number): string {
  if (Number.isNaN(value)) return "n/a";
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en-US");
}

/** Seconds with one decimal, from milliseconds. */
export function seconds(value_ms: number): string {
  return `${(value_ms / 1_000).toFixed(1)} s`;
}

/** Bytes as MB (10^6 bytes, the unit of the aims). */
export function mb(bytes: number): string {
  return `${Math.round(bytes / MB).toLocaleString("en-US")} MB`;
}

/** `better / worse` as "1.23x"; callers orient it so above 1 means Tickraft is better. */
export function ratio(numerator: number, denominator: number): string {
  if (!(denominator > 0) || Number.isNaN(numerator)) return "n/a";
  return `${(numerator / denominator).toFixed(2)}x`;
}

/** A closed-loop run as "1,234/s (p50 5.2 ms, p99 31 ms)". */
export function loadText(r: LoadResult): string {
  return `${rate(r.per_s)} (p50 ${ms(r.p50_ms)} ms, p99 ${ms(r.p99_ms)} ms)`;
}

/** The "met" column of a table: whether the aim was reached. */
export function met(ok: boolean): string {
  return ok ? "yes" : "NO";
}

/**
 * The value of a `--name N` option that must be a positive integer, or undefined when it was not
 * given; anything else prints what is wrong and `usage`, and exits with 2.
 */
export function positiveIntOption(
  name: string,
  text: string | undefined,
  usage: string,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${text}\n${usage}`);
    Deno.exit(2);
  }
  return n;
}

/** A Markdown table with padded columns. */
export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => (cell ?? "").padEnd(widths[c])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)]
    .join("\n");
}
