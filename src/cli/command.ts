/** What one CLI command declares (its flags, arguments, help) and what it receives to run. */
import { type OptionSpecs, type OptionValues, UsageError } from "./args.ts";
import type { TickraftClient } from "./client.ts";

/** What a command gets: the client, the parsed command line and where to print. */
export interface CommandInput {
  client: TickraftClient;
  /** `--json`: print the server's JSON instead of tables. */
  raw: boolean;
  values: OptionValues;
  /** The positional arguments, as many as the command's `args`. */
  args: string[];
  /** A JSON body given as `--json '{…}'`, for commands with `takes_body`. */
  body: string | undefined;
  print(text: string): void;
}

export interface Command {
  summary: string;
  /** Names of the required positional arguments, e.g. `["id"]`. */
  args: string[];
  options: OptionSpecs;
  /** Accepts a JSON body as `--json '{…}'`. */
  takes_body?: boolean;
  /** Extra help lines (examples). */
  examples?: string[];
  run(input: CommandInput): Promise<void>;
}

/** The command failed for a reason the user can act on (exit 1 with the message). */
export class CommandError extends Error {}

/** Prints `value` as indented JSON with `--json`, as `human(value)` otherwise. */
export function emit<T>(input: CommandInput, value: T, human: (value: T) => string): void {
  input.print(input.raw ? JSON.stringify(value, null, 2) : human(value));
}

/** The string value of flag `name`, or a usage error naming it. */
export function required(values: OptionValues, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

/** The string value of flag `name`, if given. */
export function optional(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/** Most pages `--all` follows; beyond it the listing ends with the next cursor. */
const PAGES_MAX = 10_000;

/** `--limit`, `--cursor` and `--all` of a listing whose pages are `what`. */
export function pageFlags(what: string): OptionSpecs {
  return {
    limit: {
      type: "string",
      placeholder: "n",
      help: `${what} per page (server default 100, at most 1000)`,
    },
    cursor: { type: "string", placeholder: "cursor", help: "Continue after a previous page" },
    all: { type: "boolean", help: "Follow the cursors to the end" },
  };
}

/** The first page, and with `--all` the following ones (at most `PAGES_MAX`). */
export async function followPages<
  Q extends { cursor?: string },
  P extends { next_cursor: string | null },
>(
  values: OptionValues,
  query: Q,
  fetchPage: (query: Q) => Promise<P>,
): Promise<P[]> {
  const pages = [await fetchPage(query)];
  let cursor = pages[0].next_cursor;
  while (values.all === true && cursor !== null && pages.length < PAGES_MAX) {
    const page = await fetchPage({ ...query, cursor });
    pages.push(page);
    cursor = page.next_cursor;
  }
  return pages;
}

/** `text`, and when more pages follow, how to get them. */
export function withFooter(text: string, page: { next_cursor: string | null }): string {
  return page.next_cursor === null
    ? text
    : `${text}\n\nmore: add --cursor ${page.next_cursor} (or --all)`;
}
