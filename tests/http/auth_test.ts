/**
 * API tokens over real HTTP: open without tokens (with a warning at start), admin tokens may do
 * everything, read tokens only read, refusals are 401/403 in the API's error shape and counted,
 * /health and /metrics follow AUTH_OPEN_HEALTH, tokens never reach the logs, a follower forwards
 * the Authorization header to the leader as is, and the CLI's --token gets through.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { defaultConfig, loadConfig } from "../../src/config.ts";
import { type AppDeps, createApp } from "../../src/http/app.ts";
import type { ClusterApi } from "../../src/http/cluster_routes.ts";
import { createLogger } from "../../src/logger.ts";
import { type ApiResponse, inMs, withNode } from "../support/node.ts";

const ADMIN = "admin-token-0123456789abcdef";
const READ = "read-token-0123456789abcdef";
const TOKENS = { api_tokens_admin: [ADMIN], api_tokens_read: [READ] };
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const job = () => ({ type: "once", timestamp: inMs(60_000) });

function assertRefused(res: ApiResponse, status: 401 | 403, message: RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.body.code, status === 401 ? "unauthorized" : "forbidden");
  assert.match(res.body.error, message);
  assert.match(res.headers.get("WWW-Authenticate") ?? "", /^Bearer\b/);
}

Deno.test("without tokens the API is open and the node warns at start", async () => {
  const lines: string[] = [];
  await withNode({}, async (t) => {
    const created = await t.post("/jobs", job());
    assert.equal(created.status, 201, created.text);
    assert.equal((await t.get(`/jobs/${created.body.id}`)).status, 200);
  }, { logger: createLogger("info", {}, (line) => lines.push(line)) });
  assert.ok(lines.some((l) => JSON.parse(l).level === "warn" && /unauthenticated/.test(l)));
});

Deno.test("admin tokens do everything; read tokens only read; others get 401", async () => {
  await withNode(TOKENS, async (t) => {
    const created = await t.post("/jobs", job(), bearer(ADMIN));
    assert.equal(created.status, 201, created.text);
    const id = created.body.id;
    assert.equal(
      (await t.request("POST", `/jobs/${id}/pause`, undefined, bearer(ADMIN))).status,
      200,
    );

    const read = await t.request("GET", `/jobs/${id}`, undefined, bearer(READ));
    assert.equal(read.status, 200, read.text);
    assert.equal((await t.request("GET", "/jobs", undefined, bearer(READ))).status, 200);
    assert.equal((await t.request("HEAD", `/jobs/${id}`, undefined, bearer(READ))).status, 200);
    assert.equal((await t.request("GET", "/debug/cluster", undefined, bearer(READ))).status, 200);
    assertRefused(await t.post("/jobs", job(), bearer(READ)), 403, /read-only.*POST/);
    assertRefused(await t.request("DELETE", `/jobs/${id}`, undefined, bearer(READ)), 403, /DELETE/);

    assertRefused(await t.post("/jobs", job()), 401, /Authorization: Bearer/);
    assertRefused(await t.get(`/jobs/${id}`), 401, /Authorization: Bearer/);
    assertRefused(await t.get("/debug/cluster"), 401, /Authorization: Bearer/);
    const wrong = await t.request("GET", "/jobs", undefined, bearer(`${ADMIN}x`));
    assertRefused(wrong, 401, /unknown API token/);
    assert.match(wrong.headers.get("WWW-Authenticate")!, /invalid_token/);
    const basic = await t.request("GET", "/jobs", undefined, { Authorization: `Basic ${ADMIN}` });
    assertRefused(basic, 401, /Authorization: Bearer/);
    // A refusal still says which node answered, and nothing was written.
    assert.ok(wrong.headers.get("X-Tickraft-Node"));
    const list = await t.request("GET", "/jobs", undefined, bearer(ADMIN));
    assert.equal(list.body.jobs.length, 1);

    const metrics = (await t.get("/metrics")).text;
    assert.match(metrics, /^tickraft_api_unauthorized_total\{reason="read_only"\} 2$/m);
    assert.match(metrics, /^tickraft_api_unauthorized_total\{reason="missing"\} 4$/m);
    assert.match(metrics, /^tickraft_api_unauthorized_total\{reason="invalid"\} 1$/m);
  });
});

Deno.test("/health and /metrics are open by default, protected with AUTH_OPEN_HEALTH=false", async () => {
  await withNode(TOKENS, async (t) => {
    assert.equal((await t.get("/health")).status, 200);
    assert.equal((await t.get("/metrics")).status, 200);
    // The document and its UI are always open: they describe the API and hold no data.
    assert.equal((await t.get("/openapi.json")).status, 200);
    assert.equal((await t.get("/docs")).status, 200);
  });
  await withNode({ ...TOKENS, auth_open_health: false }, async (t) => {
    assertRefused(await t.get("/health"), 401, /token/);
    assertRefused(await t.get("/metrics"), 401, /token/);
    assert.equal((await t.request("GET", "/health", undefined, bearer(READ))).status, 200);
    assert.equal((await t.request("GET", "/metrics", undefined, bearer(ADMIN))).status, 200);
    assert.equal((await t.get("/openapi.json")).status, 200);
  });
});

Deno.test("tokens never reach the logs", async () => {
  const lines: string[] = [];
  await withNode(TOKENS, async (t) => {
    await t.post("/jobs", job(), bearer(ADMIN));
    await t.post("/jobs", job(), bearer(READ));
    await t.post("/jobs", job(), bearer("not-a-known-token-0123456789"));
    await t.post("/jobs", "{", bearer(ADMIN));
  }, { logger: createLogger("debug", {}, (line) => lines.push(line)) });
  assert.ok(lines.length > 0, "the node logged something");
  const text = lines.join("\n");
  for (const token of [ADMIN, READ, "not-a-known-token-0123456789"]) {
    assert.ok(!text.includes(token), `${token} is not logged`);
  }
  assert.ok(!/unauthenticated/.test(text), "no warning when tokens are set");
});

Deno.test("API token settings: comma-separated lists, short tokens refused", () => {
  const env = { API_TOKENS_ADMIN: `${ADMIN}, ${ADMIN}2`, AUTH_OPEN_HEALTH: "FALSE" };
  const loaded = loadConfig([], env);
  assert.ok(!loaded.help);
  assert.deepEqual(loaded.config.api_tokens_admin, [ADMIN, `${ADMIN}2`]);
  assert.deepEqual(loaded.config.api_tokens_read, []);
  assert.equal(loaded.config.auth_open_health, false);
  assert.equal(defaultConfig().auth_open_health, true);
  assert.throws(() => loadConfig(["--api-tokens-read", "short"], {}), /--api-tokens-read.*16\+/);
  assert.throws(
    () => loadConfig([], { AUTH_OPEN_HEALTH: "yes" }),
    /AUTH_OPEN_HEALTH.*true or false/,
  );
});

Deno.test("a follower checks the token, then forwards the Authorization header to the leader", async () => {
  const seen: (string | null)[] = [];
  const leader = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seen.push(req.headers.get("Authorization"));
    return Response.json({ served_by: "leader" }, { status: 201 });
  });
  const api: ClusterApi = {
    self: "follower",
    isLeader: () => false,
    leader: () => ({ name: "leader", address: `http://127.0.0.1:${leader.addr.port}` }),
    join: () => Promise.reject(new Error("unused")),
    remove: () => Promise.reject(new Error("unused")),
    transferLeadership: () => Promise.reject(new Error("unused")),
    readBarrier: () => Promise.resolve(),
    fly_replay: false,
  };
  const deps: Partial<AppDeps> = {
    max_body_bytes: 1_000,
    node: { node_id: "follower", observeRequest: () => {} } as unknown as AppDeps["node"],
    auth: { admin_tokens: [ADMIN], read_tokens: [], open_health: true, onRefused: () => {} },
    cluster: { raft: new Hono(), api },
  };
  const app = createApp(deps as AppDeps);
  try {
    const post = (headers: Record<string, string>) =>
      app.request("/jobs", { method: "POST", headers, body: JSON.stringify(job()) });
    assert.equal((await post({})).status, 401);
    assert.equal((await post(bearer(READ))).status, 401);
    assert.deepEqual(seen, [], "refused on the follower, not forwarded");
    const forwarded = await post(bearer(ADMIN));
    assert.equal(forwarded.status, 201);
    assert.deepEqual(await forwarded.json(), { served_by: "leader" });
    assert.deepEqual(seen, [`Bearer ${ADMIN}`]);
  } finally {
    await leader.shutdown();
  }
});

Deno.test("the CLI sends --token as the bearer token; without one it shows the 401", async () => {
  const main = new URL("../../src/main.ts", import.meta.url).pathname;
  await withNode(TOKENS, async (t) => {
    const cli = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", main, "jobs", "list", "--json", "--url", t.url, ...args],
        env: { TICKRAFT_URL: "", TICKRAFT_TOKEN: "" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
    };
    const ok = await cli("--token", READ);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).jobs, []);
    const refused = await cli();
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /401/);
    assert.match(refused.stderr, /Authorization: Bearer/);
  });
});
