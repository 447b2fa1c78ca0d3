/**
 * The console's Workers page and a worker job's placements, on a real in-process node with a real
 * `tickraft worker` agent: the page escapes what a worker registers (labels, taints), drain and
 * remove work from it and say what went wrong for an unknown worker; in headless Chromium, the
 * layout links the page, it lists the agent with allocated against capacity and its heartbeat, a
 * worker job runs and its page shows the placement, a job that fits nowhere shows why it waits,
 * and Drain takes the worker out of placement (screenshots kept in `.tmp/artifacts/`).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { CHROMIUM_MISSING, withBrowser } from "../support/browser.ts";
import { type TestNode, withNode } from "../support/node.ts";
import { eventually } from "../support/wait.ts";
import { spawnWorker } from "../support/worker_process.ts";

const ARTIFACTS = new URL("../../.tmp/artifacts/", import.meta.url);
const XSS = `<script>window.__xss = 1</script><img src=x onerror="alert('xss')">`;

const form = (fields: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  body: new URLSearchParams(fields),
  redirect: "manual",
});

/** Creates a one-off worker job due in 300 ms; resolves with its id. */
async function workerJob(t: TestNode, resources: Record<string, number>, name: string) {
  const created = await t.post("/jobs", {
    type: "once",
    name,
    timestamp: new Date(Date.now() + 300).toISOString(),
    payload: { from: "console" },
    executor: { type: "worker", resources },
  });
  assert.equal(created.status, 201, created.text);
  return created.body.id as string;
}

Deno.test("the Workers page escapes what a worker registers; drain and remove from its forms", async () => {
  await withNode({}, async (t) => {
    const registered = await t.post("/workers", {
      id: "w-xss",
      region: "fra",
      labels: { note: XSS },
      taints: [{ key: "k", value: "</td><b>", effect: "NoSchedule" }],
      capacity: { cpu_millis: 1000, memory_mb: 512 },
    });
    assert.equal(registered.status, 201, registered.text);

    const page = await (await fetch(`${t.url}/console/workers`)).text();
    assert.match(page, /<a href="\/console\/workers">Workers<\/a>/, "the layout links it");
    assert.ok(page.includes('id="worker-w-xss"'), page);
    assert.ok(!page.includes("<script>window"), "a label is not markup");
    assert.ok(!page.includes("<img src=x"), "a label is not markup");
    assert.ok(page.includes("note=&lt;script&gt;window.__xss = 1&lt;/script&gt;"));
    assert.ok(page.includes("k=&lt;/td&gt;&lt;b&gt;:NoSchedule"), "the taint is escaped too");
    assert.match(page, /0 \/ 1000m/);
    assert.match(page, /No allocation is waiting\./);

    const drained = await fetch(`${t.url}/console/workers/w-xss/drain`, form());
    await drained.body?.cancel();
    assert.equal(drained.status, 303);
    assert.equal(drained.headers.get("location"), "/console/workers?done=drained");
    assert.equal((await t.get("/workers/w-xss")).body.status, "draining");

    const ghost = await fetch(`${t.url}/console/workers/w-ghost/drain`, form());
    assert.equal(ghost.status, 404);
    assert.match(await ghost.text(), /class="error"[^>]*>worker w-ghost is not registered/);

    const removed = await fetch(`${t.url}/console/workers/w-xss/remove`, form());
    await removed.body?.cancel();
    assert.equal(removed.status, 303);
    assert.equal((await t.get("/workers/w-xss")).status, 404);
    const empty = await (await fetch(`${t.url}/console/workers?done=removed`)).text();
    assert.match(empty, /Worker removed; its active allocations are placed again\./);
    assert.match(empty, /No workers registered\./);
  });
});

/** The text of `selector`, whitespace collapsed. */
async function text(page: Page, selector = "main"): Promise<string> {
  return (await page.innerText(selector)).replace(/\s+/g, " ");
}

/** Reloads until the text of `selector` matches `pattern`. */
async function reloadUntil(page: Page, selector: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 20_000;
  let seen = await text(page, selector);
  while (!pattern.test(seen)) {
    assert.ok(Date.now() < deadline, `${selector}: "${seen}" does not match ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await page.reload();
    seen = await text(page, selector);
  }
}

/** Clicks `target` and waits for the page it leads to. */
async function submit(page: Page, target: string): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(target)]);
}

Deno.test({
  name:
    "console in headless Chromium: the Workers page lists a real agent, a worker job's placement shows",
  ignore: CHROMIUM_MISSING !== null,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withNode({}, async (t) => {
    const agent = spawnWorker([
      "--server",
      t.url,
      "--id",
      "w-ui",
      "--region",
      "fra",
      "--zone",
      "fra-a",
      "--labels",
      "tier=batch",
      "--cpu",
      "2000",
      "--memory",
      "1024",
      "--slots",
      "2",
      "--exec",
      `sh -c 'cat; sleep 3; echo " ran on w-ui"'`,
    ]);
    try {
      await eventually(
        "w-ui ready",
        async () => (await t.get("/workers/w-ui")).body.status === "ready" ? true : undefined,
        30_000,
      );
      await withBrowser(async (page) => {
        await page.goto(`${t.url}/console`);
        await submit(page, "header >> text=Workers");
        assert.equal(new URL(page.url()).pathname, "/console/workers");
        const row = await text(page, "#worker-w-ui");
        assert.match(
          row,
          /^w-ui ready default fra \/ fra-a tier=batch — 0 \/ 2000m 0 \/ 1024 MiB 0 \/ 0 MiB 0 \/ 2 0 [\d-]+ [\d:]+Z cpu [\d.]+%, memory [\d.]+% Drain ?Remove$/,
        );

        const ran = await workerJob(t, { cpu_millis: 500, memory_mb: 256 }, "on a worker");
        // While it runs (3 s), its resources are held on the worker.
        await reloadUntil(
          page,
          "#worker-w-ui",
          /tier=batch — 500 \/ 2000m 256 \/ 1024 MiB 0 \/ 0 MiB 1 \/ 2 1 /,
        );
        await Deno.mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: new URL("console-workers.png", ARTIFACTS).pathname });
        await page.goto(`${t.url}/console/jobs/${ran}`);
        await reloadUntil(page, "#placement", /Last placement: completed on w-ui/);
        assert.match(await text(page, "#job"), /executor \{"type":"worker"/);
        assert.match(
          await text(page, "#placements"),
          /\w+ 1 [\d-]+ [\d:]+Z w-ui completed( [\d-]+ [\d:]+Z){3} .* ok, exit 0, \d+ ms \{"from":"console"\} ran on w-ui/,
        );
        await page.screenshot({
          path: new URL("console-job-placements.png", ARTIFACTS).pathname,
          fullPage: true,
        });
        await submit(page, "#placements >> a:has-text('w-ui')");
        assert.equal(new URL(page.url()).hash, "#worker-w-ui");

        const waits = await workerJob(t, { cpu_millis: 100, memory_mb: 4_000 }, "too big");
        await page.goto(`${t.url}/console/jobs/${waits}`);
        await reloadUntil(page, "#placement", /Waiting for a worker:/);
        assert.match(
          await text(page, "#placement"),
          /Waiting for a worker: no worker fits \(0 of 1\): .*memory exhausted: 1 worker/,
        );
        await page.goto(`${t.url}/console/workers`);
        assert.match(
          await text(page, "#pending"),
          new RegExp(`${waits} 1 [\\d-]+ [\\d:]+Z no worker fits \\(0 of 1\\)`),
        );

        await submit(page, "#worker-w-ui >> button:has-text('Drain')");
        assert.match(await text(page), /Draining: no new placements on the worker/);
        assert.match(await text(page, "#worker-w-ui"), /^w-ui draining drained: /);
        assert.equal(await text(page, "#worker-w-ui td:last-child"), "Remove");
      });
    } finally {
      await agent.stop();
    }
  });
});
