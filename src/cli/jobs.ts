/** `tickraft jobs …`: create, read, list and change jobs through `/jobs`. */
import { type OptionSpecs, type OptionValues, UsageError } from "./args.ts";
import { readStdinText, readText } from "../runtime.ts";
import type { JobJson, JsonObject, ListQuery } from "./client.ts";
import {
  type Command,
  type CommandInput,
  emit,
  followPages,
  optional,
  withFooter,
} from "./command.ts";
import { executionsTable, jobsTable, keyValues } from "./format.ts";

/** Flags that build a body field by field (`jobs create` without `--file` or `--json`). */
const FIELD_FLAGS: OptionSpecs = {
  type: {
    type: "string",
    placeholder: "type",
    help: "once, cron or interval (default: from --at, --cron or --every)",
  },
  name: { type: "string", placeholder: "text", help: "Free text, searchable with list --q" },
  cron: {
    type: "string",
    placeholder: "expr",
    help: 'Cron expression, e.g. "*/5 * * * *" (type cron)',
  },
  timezone: {
    type: "string",
    placeholder: "zone",
    help: "IANA zone of the cron expression (default UTC)",
  },
  at: { type: "string", placeholder: "time", help: "ISO 8601 time with a zone (type once)" },
  every: {
    type: "string",
    placeholder: "duration",
    help: "Period such as 30s, 5m, 1h (type interval)",
  },
  webhook: { type: "string", placeholder: "url", help: "Where to deliver (http or https)" },
  method: {
    type: "string",
    placeholder: "method",
    help: "POST (default), PUT, PATCH, GET or DELETE",
  },
  payload: {
    type: "string",
    placeholder: "json",
    help: "Any JSON value sent as payload, e.g. '{\"a\":1}'",
  },
};

const ID = ["id"];

const create: Command = {
  summary: "Create a job from a JSON body (--file, --json) or from flags",
  args: [],
  takes_body: true,
  options: {
    file: { type: "string", placeholder: "path", help: "The job as a JSON file; - reads stdin" },
    ...FIELD_FLAGS,
    "idempotency-key": {
      type: "string",
      placeholder: "key",
      help: "The same key returns the same job instead of a duplicate",
    },
  },
  examples: [
    'tickraft jobs create --cron "*/5 * * * *" --webhook http://127.0.0.1:9000/hook --payload \'{"a":1}\'',
    "tickraft jobs create --at 2030-01-01T09:00:00Z --webhook http://127.0.0.1:9000/hook",
    "tickraft jobs create --every 30s --name heartbeat",
    "tickraft jobs create --file job.json --idempotency-key nightly-report",
  ],
  run: async (input) => {
    const body = await createBody(input);
    const job = await input.client.createJob(body, optional(input.values, "idempotency-key"));
    emit(input, job, keyValues);
  },
};

const get: Command = {
  summary: "Show a job",
  args: ID,
  options: {},
  run: async (input) => emit(input, await input.client.getJob(input.args[0]), keyValues),
};

const list: Command = {
  summary: "List jobs in creation order",
  args: [],
  options: {
    status: {
      type: "string",
      placeholder: "status",
      help: "pending, in_progress, completed, failed, missed, paused or cancelled",
    },
    type: { type: "string", placeholder: "type", help: "once, cron or interval" },
    q: {
      type: "string",
      placeholder: "text",
      help: "Text in the id, name, webhook URL, cron expression or payload",
    },
    limit: {
      type: "string",
      placeholder: "n",
      help: "Jobs per page (server default 100, at most 1000)",
    },
    cursor: { type: "string", placeholder: "cursor", help: "Continue after a previous page" },
    all: { type: "boolean", help: "Follow the cursors to the end" },
  },
  run: async (input) => {
    const query: ListQuery = {
      status: optional(input.values, "status"),
      type: optional(input.values, "type"),
      q: optional(input.values, "q"),
      limit: optional(input.values, "limit"),
      cursor: optional(input.values, "cursor"),
    };
    const pages = await followPages(input.values, query, (q) => input.client.listJobs(q));
    const page = { jobs: pages.flatMap((p) => p.jobs), next_cursor: pages.at(-1)!.next_cursor };
    emit(input, page, (p) => withFooter(p.jobs.length === 0 ? "no jobs" : jobsTable(p.jobs), p));
  },
};

const executions: Command = {
  summary: "A job's execution history, newest first",
  args: ID,
  options: {
    limit: { type: "string", placeholder: "n", help: "Executions per page (server default 100)" },
    cursor: { type: "string", placeholder: "cursor", help: "Continue after a previous page" },
    all: { type: "boolean", help: "Follow the cursors to the end" },
  },
  run: async (input) => {
    const [id] = input.args;
    const query: ListQuery = {
      limit: optional(input.values, "limit"),
      cursor: optional(input.values, "cursor"),
    };
    const pages = await followPages(input.values, query, (q) => input.client.executions(id, q));
    const page = {
      job_id: id,
      executions: pages.flatMap((p) => p.executions),
      next_cursor: pages.at(-1)!.next_cursor,
    };
    emit(input, page, (p) =>
      withFooter(
        p.executions.length === 0 ? "no executions" : executionsTable(p.executions),
        p,
      ));
  },
};

const cancel: Command = {
  summary: "Cancel a job; pending retries are dropped",
  args: ID,
  options: { reason: { type: "string", placeholder: "text", help: "Why (kept on the job)" } },
  run: async (input) =>
    emit(
      input,
      await input.client.cancelJob(input.args[0], optional(input.values, "reason")),
      keyValues,
    ),
};

const remove: Command = {
  summary: "Delete a job and its history",
  args: ID,
  options: {},
  run: async (input) =>
    emit(input, await input.client.deleteJob(input.args[0]), (r) => `deleted job ${r.id}`),
};

const trigger: Command = {
  summary: "Run a job now, outside its schedule",
  args: ID,
  options: {},
  run: async (input) =>
    emit(
      input,
      await input.client.triggerJob(input.args[0]),
      (r) => `triggered job ${r.job_id}: execution ${r.execution_id}`,
    ),
};

const pause: Command = {
  summary: "Stop firing a job until resumed",
  args: ID,
  options: {},
  run: async (input) => emit(input, await input.client.pauseJob(input.args[0]), statusLine),
};

const resume: Command = {
  summary: "Fire a paused job again from its next occurrence",
  args: ID,
  options: {},
  run: async (input) => emit(input, await input.client.resumeJob(input.args[0]), statusLine),
};

/** The `jobs` commands by name. */
export const JOB_COMMANDS: Record<string, Command> = {
  create,
  get,
  list,
  cancel,
  delete: remove,
  trigger,
  pause,
  resume,
  executions,
};

function statusLine(job: JobJson): string {
  return `job ${job.id}: ${job.status}, next run ${job.next_run_at ?? "-"}`;
}

/** The body of `jobs create`: from `--file`, from `--json '{…}'`, or from the field flags. */
async function createBody(input: CommandInput): Promise<unknown> {
  const file = optional(input.values, "file");
  const fields = Object.keys(FIELD_FLAGS).filter((name) => input.values[name] !== undefined);
  if (file !== undefined && input.body !== undefined) {
    throw new UsageError("give the job with --file or with --json, not both");
  }
  const json = file === undefined ? input.body : await readFile(file);
  if (json === undefined) return bodyFromFlags(input.values);
  if (fields.length > 0) {
    throw new UsageError(
      `--${fields[0]} cannot be combined with --file or --json; put the field in the JSON`,
    );
  }
  return parseJson(json, file === undefined ? "--json" : file);
}

async function readFile(path: string): Promise<string> {
  try {
    return path === "-" ? await readStdinText() : await readText(path);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not JSON: ${(error as Error).message}`);
  }
}

/** A job body from the field flags; the server validates it (one place for the rules). */
function bodyFromFlags(values: OptionValues): JsonObject {
  const value = (name: string) => optional(values, name);
  const kinds = (["cron", "at", "every"] as const).filter((name) => value(name) !== undefined);
  const inferred = { cron: "cron", at: "once", every: "interval" } as const;
  let type = value("type");
  if (type === undefined) {
    if (kinds.length !== 1) {
      throw new UsageError(
        kinds.length === 0
          ? "say when the job runs: --cron, --at or --every (or give --file or --json)"
          : `--${kinds.join(", --")} each set a type; give one, or --type`,
      );
    }
    type = inferred[kinds[0]];
  }
  const every = value("every");
  const payload = value("payload");
  const body: JsonObject = {
    type,
    name: value("name"),
    cron_expression: value("cron"),
    timezone: value("timezone"),
    timestamp: value("at"),
    interval_seconds: every === undefined ? undefined : parseDurationSeconds(every),
    webhook_url: value("webhook"),
    method: value("method")?.toUpperCase(),
    payload: payload === undefined ? undefined : parseJson(payload, "--payload"),
  };
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

/** "30s", "5m", "1.5h", "2d", "500ms" or a bare number of seconds, in seconds. */
export function parseDurationSeconds(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (match === null) {
    throw new UsageError(`--every "${text}" is not a duration: use e.g. 30s, 5m, 1h or 1d`);
  }
  const seconds_per_unit = { ms: 0.001, s: 1, m: 60, h: 3_600, d: 86_400 }[
    (match[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"
  ];
  return Number(match[1]) * seconds_per_unit;
}
