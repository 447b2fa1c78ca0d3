/**
 * The CLI as a real subprocess for the CLI tests: `tickraft(args)` runs `deno run -A src/main.ts
 * args…` with `TICKRAFT_URL` and `TICKRAFT_TOKEN` empty unless `env` sets them, and returns its
 * exit code and output.
 *
 * @module
 */
import assert from "node:assert/strict";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tickraft args…`; `TICKRAFT_URL` and `TICKRAFT_TOKEN` are empty unless `env` sets them. */
export async function tickraft(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: ROOT,
    env: { TICKRAFT_URL: "", TICKRAFT_TOKEN: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** Runs `tickraft args…`, asserts exit 0 and parses stdout as JSON. */
export async function tickraftJson(args: string[]) {
  const run = await tickraft(args);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/** The value of `key` in key/value output. */
export function field(text: string, key: string): string {
  const match = new RegExp(`^${key}\\s+(.*)$`, "m").exec(text);
  assert.ok(match !== null, `no "${key}" in:\n${text}`);
  return match[1];
}
