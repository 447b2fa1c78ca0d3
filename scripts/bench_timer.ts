/**
 * Benchmarks of the scheduler's pure timing parts: cost of `nextOccurrence` (cron, cached parse),
 * TimerQueue operations per second, and memory for 1,000,000 timer entries.
 *
 * Run: ./deno run --allow-env --allow-read scripts/bench_timer.ts [--entries 1000000]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ManualClock } from "../src/clock.ts";
import { nextOccurrence, type Schedule } from "../src/scheduler/recurrence.ts";
import { TimerQueue } from "../src/scheduler/timer.ts";
import { perCallMs } from "./bench/timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { entries: { type: "string", default: "1000000" } },
});
const entries = Number(values.entries);
const T0_MS = Date.UTC(2026, 0, 1);
const MIB = 1024 * 1024;

/** Runs `fn` `n` times after a warm-up and returns µs per call. */
function perCall(n: number, fn: (i: number) => void): number {
  return perCallMs(fn, { warmup_calls: Math.min(n, 1_000), rounds: 1, calls: n }) * 1_000;
}

function memory(): string {
  const m = Deno.memoryUsage();
  return `rss ${(m.rss / MIB).toFixed(0)} MiB, heapUsed ${(m.heapUsed / MIB).toFixed(0)} MiB, ` +
    `external ${(m.external / MIB).toFixed(0)} MiB`;
}

console.log("nextOccurrence (parsed cron cached; chains of 500 occurrences from 2026-01-01):");
const cases: [string, Schedule][] = [
  ["*/15 * * * * UTC", { kind: "cron", expression: "*/15 * * * *", timezone: "UTC" }],
  ["0 9 * * 1-5 America/New_York", {
    kind: "cron",
    expression: "0 9 * * 1-5",
    timezone: "America/New_York",
  }],
  ["30 2 * * * Europe/Berlin", {
    kind: "cron",
    expression: "30 2 * * *",
    timezone: "Europe/Berlin",
  }],
  ["*/20 * * * * * Europe/Berlin", {
    kind: "cron",
    expression: "*/20 * * * * *",
    timezone: "Europe/Berlin",
  }],
  ["interval 90 s", { kind: "interval", every_ms: 90_000, anchor_ms: T0_MS }],
];
for (const [name, s] of cases) {
  let at_ms = T0_MS;
  const us = perCall(20_000, (i) => {
    at_ms = nextOccurrence(s, i % 500 === 0 ? T0_MS : at_ms) as number;
  });
  console.log(`  ${name.padEnd(32)} ${us.toFixed(2)} µs/call`);
}
{
  // Job creation pattern: many jobs, same expression, "after" = now.
  const s: Schedule = { kind: "cron", expression: "0 9 * * 1-5", timezone: "America/New_York" };
  const us = perCall(20_000, (i) => nextOccurrence(s, T0_MS + i * 1_000));
  console.log(`  ${"job creation (after = now)".padEnd(32)} ${us.toFixed(2)} µs/call`);
  let k = 0;
  const cold = perCall(2_000, () => {
    nextOccurrence(
      { kind: "cron", expression: `${k % 60} ${k++ % 24} * * *`, timezone: "UTC" },
      T0_MS,
    );
  });
  console.log(`  ${"first use of an expression".padEnd(32)} ${cold.toFixed(2)} µs/call (parse)`);
}

console.log(`\nTimerQueue with ${entries.toLocaleString("en")} entries:`);
const base = Deno.memoryUsage();
console.log(`  before: ${memory()}`);
const clock = new ManualClock(0);
const queue = new TimerQueue(clock, () => {});
const keys: string[] = [];
for (let i = 0; i < entries; i++) keys.push(`job-${i.toString(36).padStart(8, "0")}`);
let x = 1;
const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
let t0 = performance.now();
for (let i = 0; i < entries; i++) queue.set(keys[i], rand() % 86_400_000);
const insert_ms = performance.now() - t0;
const full = Deno.memoryUsage();
console.log(`  full:   ${memory()}`);
const grown_mib = (a: number, b: number) => ((b - a) / MIB).toFixed(0);
console.log(
  `  growth: heapUsed +${grown_mib(base.heapUsed, full.heapUsed)} MiB (Map, slot->key array, ` +
    `and the key strings themselves, ~${((entries * 32) / MIB).toFixed(0)} MiB), typed arrays ` +
    `+${grown_mib(base.external, full.external)} MiB external, rss +${
      grown_mib(base.rss, full.rss)
    } MiB`,
);
console.log(`  insert: ${(entries / insert_ms / 1_000).toFixed(2)} M ops/s`);
t0 = performance.now();
for (let i = 0; i < entries; i++) queue.set(keys[rand() % entries], rand() % 86_400_000);
const move_ms = performance.now() - t0;
console.log(`  move:   ${(entries / move_ms / 1_000).toFixed(2)} M ops/s`);
t0 = performance.now();
for (let i = 0; i < entries; i += 2) queue.delete(keys[i]);
const delete_ms = performance.now() - t0;
console.log(`  delete: ${(entries / 2 / delete_ms / 1_000).toFixed(2)} M ops/s`);
clock.advanceTo(86_400_000);
t0 = performance.now();
let taken = 0;
for (;;) {
  const n = queue.takeDue(10_000).length;
  if (n === 0) break;
  taken += n;
}
const drain_ms = performance.now() - t0;
console.log(`  takeDue (batches of 10,000): ${(taken / drain_ms / 1_000).toFixed(2)} M ops/s`);
