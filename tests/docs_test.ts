/** The README's tables match the code: configuration, tasks and API routes. */
import assert from "node:assert/strict";
import { SETTINGS } from "../src/config.ts";
import { type AppDeps, createApp } from "../src/http/app.ts";
import type { ClusterApi } from "../src/http/cluster.ts";
import { raftRoutes } from "../src/http/raft.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

/** Rows of the Markdown table under `## heading`, as arrays of cell texts. */
function tableUnder(heading: string): string[][] {
  const section = README.split(/^## /m).find((s) => s.startsWith(heading));
  assert.ok(section !== undefined, `README has a "## ${heading}" section`);
  return section.split("\n")
    .filter((line) => line.startsWith("|") && !/^\|\s*-/.test(line))
    .slice(1)
    .map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
}

const unquote = (cell: string) => cell.replace(/`/g, "");

Deno.test("README configuration table lists every setting with its flag and default", () => {
  const rows = tableUnder("Configuration").map((r) => r.map(unquote));
  const expected = Object.values(SETTINGS).map((s) => [
    s.env,
    `--${s.flag}`,
    s.default === "" ? "(empty)" : s.default,
    s.help,
  ]);
  assert.deepEqual(rows, expected);
});

Deno.test("README task table lists exactly the tasks of deno.json", async () => {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  );
  const documented = tableUnder("Tasks").map((r) => unquote(r[0])).sort();
  assert.deepEqual(documented, Object.keys(denoJson.tasks).sort());
});

Deno.test("README API table lists exactly the routes a cluster node serves", () => {
  const raft = raftRoutes({
    secret: "docs-test-secret-0123456789",
    self: 1,
    max_body_bytes: 1,
    onMessages: () => {},
    onUnauthorized: () => {},
  });
  const app = createApp({
    max_body_bytes: 1,
    cluster: { raft, api: {} as ClusterApi },
  } as AppDeps);
  const served = app.routes
    .filter((r) => r.method !== "ALL")
    .map((r) => `${r.method} ${r.path.replace(/\/$/, "").replace(/:(\w+)/g, "{$1}")}`);
  const documented = tableUnder("API").map((r) => `${r[0]} ${unquote(r[1]).replace(/\?.*$/, "")}`);
  assert.deepEqual([...new Set(documented)].sort(), [...new Set(served)].sort());
});
