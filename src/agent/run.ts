/**
 * Running one allocation, the two ways docs/workers.md ("How the agent runs an allocation")
 * describes: a signed POST to a local handler, or a subprocess. Each resolves with the
 * {@link Outcome} that `finish` reports and never throws for a failure of the work itself (a
 * handler that refuses, a command that cannot start or exits non-zero, a lease that runs out).
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { signatureHeader, webhookBody } from "../scheduler/webhook/signing.ts";
import { type Allocation, type Outcome, OUTPUT_EXCERPT_MAX_CHARS } from "./protocol.ts";
import { spawnProcess } from "./runtime.ts";

/** After SIGTERM at the end of the lease, a command has this long before SIGKILL. */
export const KILL_GRACE_MS = 2_000;
/** After a command exited, output still in its pipes (or held by its children) is read this long. */
const OUTPUT_DRAIN_MS = 200;

/** What both runners need besides the allocation. */
export interface RunContext {
  clock: Clock;
  /** When the lease runs out, on `clock`: the work is stopped then. */
  deadline_ms: number;
}

/**
 * POSTs the webhook body of `allocation` to `url` with the webhook headers (signed with `secret`
 * when there is one) and `X-Tickraft-Allocation`; a 2xx answer is success. The answer's first
 * {@link OUTPUT_EXCERPT_MAX_CHARS} characters are the output excerpt.
 */
export async function runHandler(
  allocation: Allocation,
  url: string,
  secret: string | null,
  ctx: RunContext,
): Promise<Outcome> {
  const started_ms = ctx.clock.now();
  const body = webhookBody({
    job_id: allocation.job_id,
    scheduled_at_ms: Date.parse(allocation.scheduled_at),
    attempt: allocation.attempt,
    payload: allocation.payload,
  });
  const timestamp_s = Math.floor(started_ms / 1000);
  const headers = new Headers({
    "Content-Type": "application/json",
    "Idempotency-Key": allocation.idempotency_key,
    "X-Tickraft-Timestamp": String(timestamp_s),
    "X-Tickraft-Allocation": allocation.id,
    "X-Tickraft-Job-Id": allocation.job_id,
    "X-Tickraft-Execution-Id": allocation.execution_id,
    "X-Tickraft-Attempt": String(allocation.attempt),
    "X-Tickraft-Scheduled-At": allocation.scheduled_at,
  });
  if (secret !== null) {
    headers.set("X-Tickraft-Signature", await signatureHeader([secret], timestamp_s, body));
  }
  const lease_ms = Math.max(0, ctx.deadline_ms - started_ms);
  const timeout = AbortSignal.timeout(lease_ms);
  const duration = () => Math.max(0, ctx.clock.now() - started_ms);
  try {
    const response = await fetch(url, { method: "POST", headers, body, signal: timeout });
    const output_excerpt = await readExcerpt([response.body], timeout);
    const ok = response.status >= 200 && response.status < 300;
    return {
      ok,
      exit_code: null,
      status_code: response.status,
      error: ok ? null : `handler answered HTTP ${response.status}`,
      output_excerpt,
      duration_ms: duration(),
    };
  } catch (error) {
    const message = timeout.aborted
      ? `handler did not answer within the lease (${lease_ms} ms)`
      : `handler ${url} unreachable: ${(error as Error).message}`;
    return failure(message, duration());
  }
}

/**
 * Runs `argv` with the payload as JSON on stdin and the allocation in `TICKRAFT_*` variables;
 * exit code 0 is success. Its stdout and stderr, in arrival order, give the excerpt. When the
 * lease runs out it gets SIGTERM, then SIGKILL after {@link KILL_GRACE_MS}.
 */
export async function runExec(
  allocation: Allocation,
  argv: string[],
  ctx: RunContext,
): Promise<Outcome> {
  const started_ms = ctx.clock.now();
  const duration = () => Math.max(0, ctx.clock.now() - started_ms);
  let child;
  try {
    child = spawnProcess(argv, {
      TICKRAFT_ALLOCATION_ID: allocation.id,
      TICKRAFT_JOB_ID: allocation.job_id,
      TICKRAFT_ATTEMPT: String(allocation.attempt),
      TICKRAFT_IDEMPOTENCY_KEY: allocation.idempotency_key,
    });
  } catch (error) {
    return failure(`cannot start ${argv[0]}: ${(error as Error).message}`, duration());
  }
  let lease_ran_out = false;
  let kill_timer: ReturnType<typeof setTimeout> | undefined;
  const lease_timer = setTimeout(() => {
    lease_ran_out = true;
    child.kill("SIGTERM");
    kill_timer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
  }, Math.max(0, ctx.deadline_ms - started_ms));
  const stop_reading = new AbortController();
  const output = readExcerpt([child.stdout, child.stderr], stop_reading.signal);
  await writeStdin(child.stdin, JSON.stringify(allocation.payload ?? null));
  const status = await child.status;
  clearTimeout(lease_timer);
  clearTimeout(kill_timer);
  const drain_timer = setTimeout(() => stop_reading.abort(), OUTPUT_DRAIN_MS);
  const output_excerpt = await output;
  clearTimeout(drain_timer);
  const ok = status.code === 0 && !lease_ran_out;
  let error: string | null = null;
  if (lease_ran_out) {
    error = `stopped when the lease ran out (${allocation.lease_seconds} s)`;
  } else if (!ok) {
    error = status.signal === null
      ? `exit code ${status.code}`
      : `ended by ${status.signal} (exit code ${status.code})`;
  }
  return {
    ok,
    exit_code: status.code,
    status_code: null,
    error,
    output_excerpt,
    duration_ms: duration(),
  };
}

function failure(error: string, duration_ms: number): Outcome {
  return {
    ok: false,
    exit_code: null,
    status_code: null,
    error,
    output_excerpt: "",
    duration_ms,
  };
}

/** Writes `text` and closes stdin; a command that does not read it (or exited) is not an error. */
async function writeStdin(stdin: WritableStream<Uint8Array>, text: string): Promise<void> {
  const writer = stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // The command closed its stdin or exited before reading it all.
  }
}

/**
 * Reads `streams` to their end (so a writer never blocks on a full pipe) and keeps the first
 * {@link OUTPUT_EXCERPT_MAX_CHARS} characters in arrival order; `stop` cuts the reading short.
 */
async function readExcerpt(
  streams: (ReadableStream<Uint8Array> | null)[],
  stop: AbortSignal,
): Promise<string> {
  let kept = "";
  const decoders = streams.map(() => new TextDecoder());
  const readers = streams.map((s) => s?.getReader());
  const cancel = () => {
    for (const reader of readers) reader?.cancel().catch(() => {});
  };
  if (stop.aborted) cancel();
  stop.addEventListener("abort", cancel, { once: true });
  await Promise.all(readers.map(async (reader, i) => {
    if (reader === undefined) return;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (kept.length < OUTPUT_EXCERPT_MAX_CHARS) {
          kept += decoders[i].decode(value, { stream: true });
        }
      }
    } catch {
      // Cancelled by `stop`, or the stream broke: keep what arrived.
    }
  }));
  stop.removeEventListener("abort", cancel);
  return Array.from(kept).slice(0, OUTPUT_EXCERPT_MAX_CHARS).join("");
}
