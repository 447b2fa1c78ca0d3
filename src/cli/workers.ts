/**
 * `tickraft workers …` and `tickraft allocations …`: see the registered workers and their
 * allocations, drain a worker (no new placements, what runs finishes) or remove it (its active
 * allocations are placed again), through `/workers` and `/allocations` (docs/workers.md).
 */
import type { AllocationQuery } from "./client.ts";
import { type Command, emit, followPages, optional, pageFlags, withFooter } from "./command.ts";
import { allocationsTable, objectText, workersTable, workerText } from "./format.ts";

const ID = ["id"];

const list: Command = {
  summary: "List the registered workers: status, pool, place, allocated/capacity, heartbeat",
  args: [],
  options: {},
  examples: ["tickraft workers list", "tickraft workers list --json"],
  run: async (input) => {
    const answer = await input.client.listWorkers();
    emit(
      input,
      answer,
      (a) =>
        a.workers.length === 0
          ? "no workers registered (start one with: tickraft worker --server URL)"
          : workersTable(a.workers, Date.now()),
    );
  },
};

const get: Command = {
  summary: "Show a worker with allocated against capacity per resource",
  args: ID,
  options: {},
  run: async (input) =>
    emit(input, await input.client.getWorker(input.args[0]), (w) => workerText(w, Date.now())),
};

const drain: Command = {
  summary: "Drain a worker: no new placements on it, what runs finishes",
  args: ID,
  options: {},
  run: async (input) =>
    emit(
      input,
      await input.client.drainWorker(input.args[0]),
      (w) =>
        `worker ${w.id}: ${w.status}${w.status_reason === null ? "" : ` (${w.status_reason})`}`,
    ),
};

const remove: Command = {
  summary: "Deregister a worker; its active allocations are placed again",
  args: ID,
  options: {},
  run: async (input) =>
    emit(
      input,
      await input.client.removeWorker(input.args[0]),
      (r) => `removed worker ${r.removed}; its active allocations are placed again`,
    ),
};

/** The `workers` commands by name. */
export const WORKER_COMMANDS: Record<string, Command> = { list, get, drain, remove };

const listAllocations: Command = {
  summary: "List allocations (occurrences of worker jobs placed on workers), oldest first",
  args: [],
  options: {
    job: { type: "string", placeholder: "id", help: "Only this job's allocations" },
    worker: { type: "string", placeholder: "id", help: "Only those on this worker" },
    status: {
      type: "string",
      placeholder: "status",
      help: "pending, placed, running, completed, failed, lost or cancelled",
    },
    ...pageFlags("Allocations"),
  },
  examples: [
    "tickraft allocations list --status pending",
    "tickraft allocations list --job 01J… --all",
    "tickraft allocations list --worker w-fra-1 --status running",
  ],
  run: async (input) => {
    const query: AllocationQuery = {
      job: optional(input.values, "job"),
      worker: optional(input.values, "worker"),
      status: optional(input.values, "status"),
      limit: optional(input.values, "limit"),
      cursor: optional(input.values, "cursor"),
    };
    const pages = await followPages(input.values, query, (q) => input.client.listAllocations(q));
    const page = {
      allocations: pages.flatMap((p) => p.allocations),
      next_cursor: pages.at(-1)!.next_cursor,
    };
    emit(input, page, (p) =>
      withFooter(
        p.allocations.length === 0 ? "no allocations" : allocationsTable(p.allocations),
        p,
      ));
  },
};

const getAllocation: Command = {
  summary: "Show an allocation: its worker, lease, explanation and outcome",
  args: ID,
  options: {},
  run: async (input) => emit(input, await input.client.getAllocation(input.args[0]), objectText),
};

/** The `allocations` commands by name. */
export const ALLOCATION_COMMANDS: Record<string, Command> = {
  list: listAllocations,
  get: getAllocation,
};
