/** The README's tables match the code: configuration, tasks and API routes. */
import assert from "node:assert/strict";
import { SETTINGS } from "../src/config.ts";
import { type AppDeps, createApp } from "../src/http/app.ts";
import type { ClusterApi } from "../src/http/cluster_routes.ts";
import type { WorkersService } from "../src/workers/service.ts";
import { raftRoutes } from "../src/cluster/raft_routes.ts";
import { documentedRoutes, tableUnder, unquote } from "./support/readme.ts";

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
  const deps: Partial<AppDeps> = {
    max_body_bytes: 1,
    auth: { admin_tokens: [], read_tokens: [], open_health: true, onRefused: () => {} },
    cluster: { raft, api: {} as ClusterApi },
    workers: { workers: {} as WorkersService, jobPayload: () => Promise.resolve(null), ttl_ms: 1 },
  };
  const app = createApp(deps as AppDeps);
  const served = app.routes
    .filter((r) => r.method !== "ALL")
    .map((r) => `${r.method} ${r.path.replace(/\/$/, "").replace(/:(\w+)/g, "{$1}")}`);
  assert.deepEqual(documentedRoutes(), [...new Set(served)].sort());
});
