/**
 * Measures what validating commands costs on the log's hot path: encode + decode with the
 * command codec (`src/scheduler/command_codec.ts`) against plain `JSON.stringify` +
 * `JSON.parse` (what the logs did before), for a `job.create` of 10,000 jobs and for 1,000 small
 * commands. Prints the median of 30 rounds after 10 warm-up rounds, in ms.
 *
 * Run: ./deno run scripts/bench_command_codec.ts
 *
 * @module
 */
import {
  decodeCommands,
  encodeCommands,
  validateCommands,
} from "../src/scheduler/command_codec.ts";
import type { Command } from "../src/scheduler/commands.ts";
import { ulid } from "../src/scheduler/ids.ts";
import type { JobRecord } from "../src/scheduler/model.ts";
import { perCallMs } from "./bench/timing.ts";

const WARMUP_ROUNDS = 10;
const ROUNDS = 30;

function job(i: number, now: number): JobRecord {
  return {
    id: ulid(now),
    name: `job ${i}`,
    type: "once",
    type_alias: "once",
    run_at: now + 60_000 + i,
    cron_expression: null,
    interval_ms: null,
    timezone: "UTC",
    starts_at: null,
    ends_at: null,
    webhook_url: "http://127.0.0.1:9000/hook",
    method: "POST",
    headers: { "x-tenant": "acme" },
    payload: { order: i, items: [{ sku: "A-1", qty: 2 }], note: "deliver before noon" },
    secret: null,
    overlap_policy: "allow",
    catchup_window_ms: 60_000,
    max_attempts: 5,
    timeout_ms: 10_000,
    idempotency_key: `key-${i}`,
    status: "pending",
    next_fire_at: now + 60_000 + i,
    created_at: now,
    updated_at: now,
    cancel_reason: null,
    last_run_at: null,
    last_status: null,
    attempt_count: 0,
    run_count: 0,
    executor: null,
  };
}

function small(i: number, now: number): Command {
  switch (i % 3) {
    case 0:
      return {
        type: "job.advance",
        at: now,
        job_id: ulid(now),
        expected_fire_at: now - 5,
        next_fire_at: now + 60_000,
        missed: null,
        skipped: null,
        start: { execution_id: ulid(now), scheduled_at: now - 5, trigger: "schedule" },
      };
    case 1:
      return {
        type: "exec.finish",
        at: now,
        execution_id: ulid(now),
        attempt: 1,
        outcome: {
          ok: true,
          status_code: 200,
          error_class: null,
          error: null,
          duration_ms: 12,
          response_excerpt: "ok",
        },
        retry_at: null,
      };
    default:
      return {
        type: "exec.attempt",
        at: now,
        execution_id: ulid(now),
        attempt: 2,
        redelivery: false,
      };
  }
}

/** The middle of {@link ROUNDS} timed calls of `fn` after {@link WARMUP_ROUNDS} warm-up calls, ms. */
function median_ms(fn: () => void): number {
  return perCallMs(fn, { warmup_calls: WARMUP_ROUNDS, rounds: ROUNDS, calls: 1 });
}

const now = Date.now();
const shapes: [string, Command[]][] = [
  ["job.create of 10,000 jobs", [{
    type: "job.create",
    at: now,
    jobs: Array.from({ length: 10_000 }, (_, i) => job(i, now)),
    job_limit: 1_000_000,
  }]],
  ["1,000 small commands", Array.from({ length: 1_000 }, (_, i) => small(i, now))],
];

for (const [name, commands] of shapes) {
  const json_ms = median_ms(() => JSON.parse(JSON.stringify(commands)));
  const codec_ms = median_ms(() => decodeCommands(encodeCommands(commands)));
  const validate_ms = median_ms(() => validateCommands(commands));
  const decoded = JSON.parse(JSON.stringify(commands));
  const validate_decoded_ms = median_ms(() => validateCommands(decoded));
  const pct = (ms: number) => `${(ms / json_ms * 100).toFixed(1)}%`;
  console.log(
    `${name}: JSON stringify+parse ${json_ms.toFixed(2)} ms; codec encode+decode ${
      codec_ms.toFixed(2)
    } ms (+${((codec_ms / json_ms - 1) * 100).toFixed(1)}%); validating the proposal ${
      validate_ms.toFixed(2)
    } ms (${pct(validate_ms)} of JSON), the decoded entry ${validate_decoded_ms.toFixed(2)} ms (${
      pct(validate_decoded_ms)
    })`,
  );
}
