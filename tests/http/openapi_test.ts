/**
 * GET /openapi.json and GET /docs over real HTTP: the document is OpenAPI 3.1, lists exactly the
 * README's API table, and what the node answers matches the response schemas it declares.
 */
import assert from "node:assert/strict";
import type { z } from "zod";
import {
  batchResultSchema,
  clusterViewSchema,
  errorSchema,
  executionListSchema,
  healthSchema,
  jobListSchema,
  jobSchema,
  jobStatusSchema,
} from "../../src/http/schemas.ts";
import { inMs, withNode } from "../support/node.ts";
import { documentedRoutes } from "../support/readme.ts";

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

/** The part of an operation object these tests read. */
interface Operation {
  summary: string;
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
}

Deno.test("GET /openapi.json: an OpenAPI 3.1 document of exactly the README's API table", async () => {
  await withNode({}, async (t) => {
    const res = await t.get("/openapi.json");
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const doc = res.body;
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info.title, "string");
    assert.equal(typeof doc.paths, "object");
    for (const name of ["Job", "JobCreate", "Execution", "Error", "Health", "ClusterView"]) {
      assert.equal(typeof doc.components.schemas[name], "object", `component ${name}`);
    }
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), [
      "bearer",
      "clusterSignature",
    ]);

    const documented: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(item).filter((k) => METHODS.includes(k))) {
        documented.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(documented.sort(), documentedRoutes());

    // Every operation says what it answers; every JSON error is the one error shape, except the
    // 503 of /health and /ready, which is their own report saying why.
    const reports = new Set(["#/components/schemas/Health", "#/components/schemas/Ready"]);
    for (const item of Object.values(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const op of Object.values(item)) {
        assert.ok(Object.keys(op.responses).length > 0, op.summary);
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) < 400) continue;
          const ref = response.content?.["application/json"].schema.$ref;
          if (status === "503" && reports.has(ref ?? "")) continue;
          assert.equal(
            response.content?.["application/json"].schema.$ref,
            "#/components/schemas/Error",
            `${op.summary}: ${status}`,
          );
        }
      }
    }
    const raft = doc.paths["/raft/append"].post;
    assert.ok(raft.requestBody.content["application/octet-stream"]);
    assert.deepEqual(raft.security, [{ clusterSignature: [] }]);
  });
});

Deno.test("GET /docs: Swagger UI reading /openapi.json", async () => {
  await withNode({}, async (t) => {
    const res = await t.get("/docs");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(res.text, /swagger-ui/i);
    assert.match(res.text, /["']\/openapi\.json["']/);
  });
});

/** Parses `body` with `schema`, failing with zod's issues and the body. */
function conforms(schema: z.ZodType, body: unknown, what: string): void {
  const result = schema.safeParse(body);
  assert.ok(
    result.success,
    `${what} does not match its schema: ${JSON.stringify(result.error?.issues)}\n` +
      JSON.stringify(body),
  );
}

Deno.test("answers match the response schemas the document declares", async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    const once = await t.post("/jobs", {
      type: "once",
      timestamp: inMs(50),
      webhook_url: `${sink.url}/hook`,
      payload: { a: 1 },
      secret: "a-secret-of-16-chars",
    });
    assert.equal(once.status, 201, once.text);
    conforms(jobSchema, once.body, "POST /jobs");
    await t.poll(`/jobs/${once.body.id}`, (j) => j.status === "completed");

    const batch = await t.post("/jobs/batch", {
      jobs: [{ type: "cron", cron_expression: "0 0 * * *" }, {
        type: "interval",
        interval_seconds: 60,
      }],
    });
    assert.equal(batch.status, 201, batch.text);
    conforms(batchResultSchema, batch.body, "POST /jobs/batch");

    conforms(jobSchema, (await t.get(`/jobs/${once.body.id}`)).body, "GET /jobs/{id}");
    conforms(jobListSchema, (await t.get("/jobs?limit=2")).body, "GET /jobs");
    const status = await t.get(`/jobs/${once.body.id}/status`);
    assert.notEqual(status.body.last_execution, null);
    conforms(jobStatusSchema, status.body, "GET /jobs/{id}/status");
    const executions = await t.get(`/jobs/${once.body.id}/executions`);
    assert.equal(executions.body.executions.length, 1);
    conforms(executionListSchema, executions.body, "GET /jobs/{id}/executions");
    conforms(healthSchema, (await t.get("/health")).body, "GET /health");
    conforms(clusterViewSchema, (await t.get("/debug/cluster")).body, "GET /debug/cluster");
    conforms(errorSchema, (await t.post("/jobs", { type: "once" })).body, "a 400");
    conforms(errorSchema, (await t.get("/jobs/nope")).body, "a 404");
  });
});
