/**
 * The command codec: valid commands round-trip; anything else — wrong fields, garbage text,
 * mutated valid entries, values JSON cannot carry — gives a CommandCodecError and nothing else.
 * Budget in CI: a few seconds; `FUZZ_RUNS=N` runs each property N times.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeEntryData, encodeEntryData } from "../../src/cluster/entry_codec.ts";
import { CommandCodecError, stringifyChecked } from "../../src/log/codec.ts";
import { SchedulerState } from "../../src/scheduler/state.ts";
import {
  COMMAND_LIMITS,
  decodeCommands,
  encodeCommands,
  validateCommands,
} from "../../src/scheduler/command_codec.ts";
import type { Command } from "../../src/scheduler/commands.ts";
import { ValidationError } from "../../src/errors.ts";
import type { JobRecord } from "../../src/scheduler/model.ts";
import {
  applyTextEdit,
  commandArb,
  fuzzRuns,
  jobArb,
  mutateAt,
  pathsOf,
  textEditArb,
} from "../support/command_arbitraries.ts";

const RUNS = fuzzRuns(300);

const JOB: JobRecord = fc.sample(jobArb, { numRuns: 1, seed: 7 })[0];
const create = (jobs: unknown[]): unknown => ({
  type: "job.create",
  at: 1_000,
  jobs,
  job_limit: 10,
});

/** Runs `fn`; it must throw a CommandCodecError (returned), never anything else or nothing. */
function codecError(fn: () => unknown): CommandCodecError {
  try {
    fn();
  } catch (error) {
    if (error instanceof CommandCodecError) return error;
    throw new Error(`expected a CommandCodecError, got ${error}`, { cause: error });
  }
  throw new Error("expected a CommandCodecError, nothing was thrown");
}

/** Decodes `text`: either valid commands or a CommandCodecError; any other throw fails. */
function decodeOrCodecError(text: string): Command[] | CommandCodecError {
  try {
    return decodeCommands(text);
  } catch (error) {
    if (error instanceof CommandCodecError) return error;
    throw error;
  }
}

function deepValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** The jobs state machine's check, as the replicated log calls it on a read-back entry. */
const checkJobs = (commands: readonly unknown[]) => new SchedulerState().check(commands);

Deno.test("every generated valid command round-trips through encode and decode", () => {
  fc.assert(
    fc.property(fc.array(commandArb(), { maxLength: 4 }), (commands) => {
      const text = encodeCommands(commands);
      const decoded = decodeCommands(text);
      assert.deepEqual(decoded, JSON.parse(JSON.stringify(commands)));
      assert.equal(encodeCommands(decoded), text);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("raft entry data round-trips: proposals and members", () => {
  fc.assert(
    fc.property(fc.array(fc.array(commandArb(), { maxLength: 3 }), { maxLength: 3 }), (c) => {
      assert.deepEqual(
        decodeEntryData(encodeEntryData({ c }), checkJobs),
        JSON.parse(JSON.stringify({ c })),
      );
    }),
    { numRuns: Math.ceil(RUNS / 3) },
  );
  const m = { id: 3, name: "node-3", address: "http://127.0.0.1:8083" };
  assert.deepEqual(decodeEntryData(encodeEntryData({ m }), checkJobs), { m });
});

Deno.test("the error is a ValidationError naming the path of the bad field", () => {
  const error = codecError(() => decodeCommands(JSON.stringify([create([{ ...JOB, id: 7 }])])));
  assert.ok(error instanceof ValidationError, "a 400 at the HTTP edge");
  assert.equal(error.path, "0.jobs.0.id");
  assert.match(error.message, /^0\.jobs\.0\.id: must be a string of 1 to 64 characters, got 7$/);
  assert.deepEqual(error.issues, [{ path: "0.jobs.0.id", message: error.reason }]);
});

Deno.test("each field check refuses what does not fit", () => {
  const cases: [string, unknown, RegExp][] = [
    ["unknown type", { type: "job.explode", at: 1 }, /^0\.type:/],
    ["not an object", 42, /^0: must be an object/],
    ["time NaN", { type: "job.pause", at: NaN, job_id: "x" }, /^0\.at:/],
    ["time beyond Date", { type: "job.pause", at: 8.7e15, job_id: "x" }, /^0\.at:/],
    ["empty id", { type: "job.pause", at: 1, job_id: "" }, /^0\.job_id:/],
    ["id too long", { type: "job.delete", at: 1, job_id: "x".repeat(65) }, /^0\.job_id:/],
    [
      "attempt 0",
      { type: "exec.attempt", at: 1, execution_id: "e", attempt: 0, redelivery: false },
      /^0\.attempt:/,
    ],
    [
      "boolean as number",
      { type: "exec.attempt", at: 1, execution_id: "e", attempt: 1, redelivery: 1 },
      /^0\.redelivery:/,
    ],
    [
      "outcome status 1000",
      {
        type: "exec.finish",
        at: 1,
        execution_id: "e",
        attempt: 1,
        retry_at: null,
        outcome: {
          ok: false,
          status_code: 1000,
          error_class: null,
          error: null,
          duration_ms: 1,
          response_excerpt: null,
        },
      },
      /^0\.outcome\.status_code:/,
    ],
    [
      "missed first after last",
      {
        type: "job.advance",
        at: 1,
        job_id: "j",
        expected_fire_at: 1,
        next_fire_at: null,
        skipped: null,
        start: null,
        missed: { execution_id: "m", first_at: 5, last_at: 4, count: 1 },
      },
      /^0\.missed\.first_at:/,
    ],
    [
      "one execution id twice",
      {
        type: "job.advance",
        at: 1,
        job_id: "j",
        expected_fire_at: 1,
        next_fire_at: null,
        missed: { execution_id: "same", first_at: 1, last_at: 1, count: 1 },
        skipped: null,
        start: { execution_id: "same", scheduled_at: 1, trigger: "schedule" },
      },
      /^0\.execution_id: execution ids of one command must differ/,
    ],
    [
      "start trigger manual",
      {
        type: "job.advance",
        at: 1,
        job_id: "j",
        expected_fire_at: 1,
        next_fire_at: null,
        missed: null,
        skipped: null,
        start: { execution_id: "s", scheduled_at: 1, trigger: "manual" },
      },
      /^0\.start\.trigger:/,
    ],
    ["jobs not an array", create({} as unknown[]), /^0\.jobs:/],
    ["job status", create([{ ...JOB, status: "running" }]), /^0\.jobs\.0\.status:/],
    ["job method", create([{ ...JOB, method: "TRACE" }]), /^0\.jobs\.0\.method:/],
    ["job max_attempts 0", create([{ ...JOB, max_attempts: 0 }]), /^0\.jobs\.0\.max_attempts:/],
    [
      "cron job without expression",
      create([{ ...JOB, type: "cron", cron_expression: null }]),
      /^0\.jobs\.0\.cron_expression: a cron job needs it/,
    ],
    ["payload missing", create([{ ...JOB, payload: undefined }]), /^0\.jobs\.0\.payload:/],
    [
      "header value not a string",
      create([{ ...JOB, headers: { "x-a": 1 } }]),
      /^0\.jobs\.0\.headers\.x-a:/,
    ],
    ["headers an array", create([{ ...JOB, headers: ["a"] }]), /^0\.jobs\.0\.headers:/],
  ];
  for (const [name, value, pattern] of cases) {
    const error = codecError(() => decodeCommands(JSON.stringify([value])));
    assert.match(error.message, pattern, name);
  }
});

Deno.test("free-form values are bounded: payload depth, header count", () => {
  const max = COMMAND_LIMITS.payload_depth_max;
  assert.doesNotThrow(() =>
    decodeCommands(JSON.stringify([create([{ ...JOB, payload: deepValue(max) }])]))
  );
  const deep = codecError(() =>
    decodeCommands(JSON.stringify([create([{ ...JOB, payload: deepValue(max + 1) }])]))
  );
  assert.match(deep.message, /payload: nests deeper than 256 levels/);
  const headers = Object.fromEntries(
    Array.from({ length: COMMAND_LIMITS.headers_max + 1 }, (_, i) => [`h${i}`, "v"]),
  );
  assert.match(
    codecError(() => decodeCommands(JSON.stringify([create([{ ...JOB, headers }])]))).message,
    /more than 1000 headers/,
  );
});

Deno.test("a value too deep for JSON.parse's caller is refused, not a stack overflow", () => {
  // 200,000 levels: JSON.parse reads it, the check stops at the depth limit.
  const text = `[{"type":"job.create","at":1,"job_limit":1,"jobs":[${
    JSON.stringify({ ...JOB, payload: "HOLE" }).replace(
      '"HOLE"',
      "[".repeat(200_000) + "]".repeat(200_000),
    )
  }]}]`;
  assert.match(codecError(() => decodeCommands(text)).message, /nests deeper/);
});

Deno.test("encode turns what JSON cannot carry into a CommandCodecError", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const bad: [string, unknown][] = [
    ["bigint", 1n],
    ["cycle", cyclic],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["function", () => 1],
    ["Date", new Date(0)],
    ["Map", new Map()],
    ["symbol", Symbol("s")],
    ["too deep for the stack", deepValue(100_000)],
  ];
  for (const [name, payload] of bad) {
    const commands = [create([{ ...JOB, payload }])] as Command[];
    const error = codecError(() => encodeCommands(commands));
    assert.match(error.path, /^0\.jobs\.0\.payload/, name);
  }
  const getter = {
    type: "job.pause",
    at: 1,
    get job_id(): string {
      throw new Error("boom");
    },
  };
  assert.match(
    codecError(() => validateCommands([getter])).message,
    /^0: cannot be read \(Error: boom\)/,
  );
  const big = [{ type: "job.pause", at: 1, job_id: "j", extra: 1n }] as unknown as Command[];
  assert.match(
    codecError(() => stringifyChecked(big, "commands")).message,
    /cannot be encoded \(TypeError/,
  );
});

Deno.test("random text never throws anything but CommandCodecError", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (
      text,
    ) => {
      decodeOrCodecError(text);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("mutated valid entries decode to valid commands or give CommandCodecError", () => {
  fc.assert(
    fc.property(
      fc.array(commandArb(), { minLength: 1, maxLength: 3 }),
      fc.nat(),
      fc.jsonValue({ maxDepth: 2 }),
      fc.boolean(),
      (commands, pick, replacement, remove) => {
        const value = JSON.parse(encodeCommands(commands));
        const paths = pathsOf(value);
        const mutated = mutateAt(value, paths[pick % paths.length], replacement, remove);
        const result = decodeOrCodecError(JSON.stringify(mutated) ?? "");
        // What decodes must encode again: validation and encoding agree.
        if (!(result instanceof CommandCodecError)) encodeCommands(result);
      },
    ),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.array(commandArb(), { minLength: 1, maxLength: 2 }), textEditArb, (c, edit) => {
      const result = decodeOrCodecError(applyTextEdit(encodeCommands(c), edit));
      if (!(result instanceof CommandCodecError)) encodeCommands(result);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("raft entry data: random and mutated bytes give CommandCodecError only", () => {
  const decodeEntry = (bytes: Uint8Array) => {
    try {
      decodeEntryData(bytes, checkJobs);
    } catch (error) {
      if (!(error instanceof CommandCodecError)) throw error;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodeEntry), { numRuns: RUNS });
  fc.assert(
    fc.property(
      fc.array(fc.array(commandArb(), { maxLength: 2 }), { maxLength: 2 }),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      (c, at, byte) => {
        const bytes = encodeEntryData({ c });
        bytes[at % bytes.length] = byte;
        decodeEntry(bytes);
      },
    ),
    { numRuns: RUNS },
  );
  for (const text of ['{"c":[],"m":{}}', '{"x":1}', "[]", '{"m":{"id":0}}', '{"c":[1]}']) {
    codecError(() => decodeEntryData(new TextEncoder().encode(text), checkJobs));
  }
  codecError(() => decodeEntryData(new Uint8Array([0xff, 0xfe]), checkJobs));
});
