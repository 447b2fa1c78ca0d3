/**
 * Cost of the bounded JSON reader (`src/http/bounded_json.ts`) beside a bare `JSON.parse`, on a
 * normal 1 KB job body and on a 10,000-job batch body. Not a test; prints a table.
 *
 * Run: `./deno run scripts/bench_input.ts`
 */
import {
  DEFAULT_INPUT_LIMITS,
  FIELDS_AT_TOP,
  FIELDS_IN_BATCH,
  parseBoundedJson,
} from "../src/http/bounded_json.ts";
import { perCallMs } from "./bench/timing.ts";

const job = {
  type: "once",
  name: "nightly invoice reminder",
  timestamp: "2030-01-01T00:00:00Z",
  webhook_url: "https://hooks.example.com/invoices/remind",
  headers: { "X-Tenant": "acme", Authorization: "Bearer 0123456789abcdef0123456789abcdef" },
  payload: {
    customer: { id: "cus_0123456789", email: "billing@example.com", tags: ["vip", "eu"] },
    invoices: Array.from({ length: 8 }, (_, i) => ({ id: `inv_${i}`, amount_cents: 1999 * i })),
    note: "é".repeat(100),
  },
};
const single = JSON.stringify(job);
const batch = JSON.stringify({ jobs: Array.from({ length: 10_000 }, () => job) });

/** The middle of `rounds` timed calls of `run` after 3 warm-up calls, ms. */
function median_ms(run: () => void, rounds: number): number {
  return perCallMs(run, { warmup_calls: 3, rounds, calls: 1 });
}

const rows: [string, number, number, number][] = [];
for (
  const [name, text, field_depth, rounds] of [
    ["1 KB job", single, FIELDS_AT_TOP, 2_000],
    ["10,000-job batch", batch, FIELDS_IN_BATCH, 15],
  ] as const
) {
  const bare = median_ms(() => JSON.parse(text), rounds);
  const bounded = median_ms(
    () => parseBoundedJson(text, DEFAULT_INPUT_LIMITS, field_depth),
    rounds,
  );
  rows.push([`${name} (${text.length} B)`, bare, bounded, bounded - bare]);
}
console.log("body | JSON.parse ms | bounded ms | added ms");
for (const [name, bare, bounded, added] of rows) {
  console.log(`${name} | ${bare.toFixed(3)} | ${bounded.toFixed(3)} | ${added.toFixed(3)}`);
}
