/**
 * The web console on real in-process nodes over real HTTP: its pages and form handling, then a
 * click path in headless Debian Chromium (create, list, filter, run now, pause, resume, cancel,
 * delete; a screenshot kept in `.tmp/artifacts/`), and a follower's console writing through the
 * leader. The browser tests are skipped, with the reason printed, only where Chromium is missing.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { CHROMIUM_MISSING, withBrowser } from "../support/browser.ts";
import { withInProcessCluster } from "../support/inprocess_cluster.ts";
import { withNode } from "../support/node.ts";

const ARTIFACTS = new URL("../../.tmp/artifacts/", import.meta.url);
const XSS_NAME = `<script>window.__xss = 1</script><img src=x onerror="alert('xss')">`;

const form = (fields: Record<string, string>): RequestInit => ({
  method: "POST",
  body: new URLSearchParams(fields),
  redirect: "manual",
});

Deno.test("console pages escape user text, keep refused form input, and say what is wrong", async () => {
  await withNode({}, async (t) => {
    const root = await fetch(`${t.url}/`, { redirect: "manual" });
    await root.body?.cancel();
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/console");

    const created = await fetch(
      `${t.url}/console/jobs`,
      form({ type: "cron", schedule: "0 0 1 1 *", name: XSS_NAME, payload: `{"x":"</pre><b>"}` }),
    );
    await created.body?.cancel();
    assert.equal(created.status, 303);
    const location = created.headers.get("location")!;
    assert.match(location, /^\/console\/jobs\/\w+\?done=created$/);

    const page = await (await fetch(t.url + location)).text();
    assert.ok(!page.includes("<script>window"), "the name is not markup");
    assert.ok(!page.includes("<img src=x"), "the name is not markup");
    assert.ok(page.includes("&lt;script&gt;window.__xss = 1&lt;/script&gt;"));
    assert.ok(page.includes("&lt;/pre&gt;&lt;b&gt;"), "the payload is escaped too");
    assert.ok(page.includes("Job created."));

    const conflict = await fetch(`${t.url}${location.split("?")[0]}/resume`, form({}));
    assert.equal(conflict.status, 409);
    assert.match(await conflict.text(), /class="error"[^>]*>job \w+ is pending, not paused/);

    const refused = await fetch(
      `${t.url}/console/jobs`,
      form({ type: "cron", schedule: "not a cron", name: "kept", payload: "{oops" }),
    );
    const body = await refused.text();
    assert.equal(refused.status, 400);
    assert.match(body, /class="error"[^>]*>[^<]*payload: malformed JSON/);
    assert.match(body, /name="name" value="kept"/, "the form keeps what was typed");

    const badCron = await (await fetch(
      `${t.url}/console/jobs`,
      form({ type: "cron", schedule: "61 * * * *" }),
    )).text();
    assert.match(badCron, /cron_expression: /);

    const missing = await fetch(`${t.url}/console/jobs/01NOSUCHJOB`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /job 01NOSUCHJOB does not exist/);

    const badFilter = await fetch(`${t.url}/console/jobs?status=sleeping`);
    assert.equal(badFilter.status, 400);
    assert.match(await badFilter.text(), /status: /);
  });
});

/** The text of `selector`, whitespace collapsed. */
async function text(page: Page, selector = "main"): Promise<string> {
  return (await page.innerText(selector)).replace(/\s+/g, " ");
}

/** Reloads until the text of `selector` matches `pattern`; the node caches job counts for 1 s. */
async function reloadUntil(page: Page, selector: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 5_000;
  let seen = await text(page, selector);
  while (!pattern.test(seen)) {
    assert.ok(Date.now() < deadline, `${selector}: "${seen}" does not match ${pattern}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await page.reload();
    seen = await text(page, selector);
  }
}

/** Clicks `button` and waits for the page it leads to. */
async function submit(page: Page, button: string): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(button)]);
}

Deno.test({
  name: "console click path in headless Chromium: create, list, run now, pause, resume, cancel",
  ignore: CHROMIUM_MISSING !== null,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withNode({}, async (t) => {
    const sink = await t.sink();
    await withBrowser(async (page) => {
      const dialogs: string[] = [];
      page.on("dialog", (dialog) => {
        dialogs.push(dialog.message());
        void (dialog.message().startsWith("Delete") ? dialog.accept() : dialog.dismiss());
      });

      await page.goto(`${t.url}/`);
      assert.equal(new URL(page.url()).pathname, "/console");
      assert.match(await text(page), /Node node-1/);
      assert.match(
        await text(page, "#members"),
        /node-1 http:\/\/127\.0\.0\.1:\d+ leader \(voter\)/,
      );

      await submit(page, "header >> text=Jobs");
      assert.match(await text(page), /No jobs match\./);
      await page.fill("#create [name=name]", "nightly report");
      await page.selectOption("#create [name=type]", "cron");
      await page.fill("#create [name=schedule]", "0 0 1 1 *");
      await page.fill("#create [name=webhook_url]", `${sink.url}/hook`);
      await page.fill("#create [name=payload]", `{"report": "nightly"}`);
      await submit(page, "text=Create job");
      assert.match(await text(page), /Job created\. Job nightly report/);
      const jobUrl = new URL(page.url()).pathname;
      const id = jobUrl.split("/").at(-1)!;
      assert.match(await text(page, "#job"), /status pending/);

      await submit(page, "header >> text=Jobs");
      const row = await text(page, "#jobs");
      assert.match(row, new RegExp(`${id} nightly report cron 0 0 1 1 \\* \\(UTC\\) pending`));

      await page.fill("#create [name=name]", XSS_NAME);
      await page.fill("#create [name=schedule]", "0 0 1 1 *");
      await submit(page, "text=Create job");
      assert.ok((await text(page, "h1")).includes(XSS_NAME), "shown as text");
      assert.equal(await page.evaluate("window.__xss"), undefined, "the name ran no script");

      const ticks = await t.sink(); // an interval job's firings fill the lateness chart
      await submit(page, "header >> text=Jobs");
      await page.fill("#create [name=name]", "ticker");
      await page.selectOption("#create [name=type]", "interval");
      await page.fill("#create [name=schedule]", "1");
      await page.fill("#create [name=webhook_url]", `${ticks.url}/tick`);
      await submit(page, "text=Create job");
      assert.match(await text(page, "#job"), /schedule every 1 s/);
      const tickerUrl = page.url();

      await submit(page, "header >> text=Jobs");
      await page.selectOption("#filters [name=type]", "cron");
      await page.fill("#filters [name=q]", "nightly");
      await submit(page, "text=Filter");
      assert.match(await text(page, "#jobs"), /nightly report/);
      assert.doesNotMatch(await text(page, "#jobs"), /__xss/);
      await page.fill("#filters [name=q]", "no such job");
      await submit(page, "text=Filter");
      assert.match(await text(page), /No jobs match\./);

      await page.goto(`${t.url}/console/jobs?type=cron&q=nightly`);
      await submit(page, `a[href="/console/jobs/${id}"]`);
      assert.match(await text(page), /No executions yet\./);

      await submit(page, "text=Run now");
      assert.match(await text(page), /Run now: an execution was started/);
      await sink.waitFor((reqs) => reqs.length === 1, 10_000);
      assert.deepEqual((sink.requests[0].json as { payload: unknown }).payload, {
        report: "nightly",
      });
      // The page reloads itself while the execution is in flight.
      await page.waitForSelector("#executions >> text=completed", { timeout: 10_000 });
      assert.match(
        await text(page, "#executions"),
        /\w+ manual completed 1 200 — \d+ ms [\d-]+ [\d:]+Z [\d-]+ [\d:]+Z [\d.]+ m?s/,
      );

      await submit(page, "button:has-text('Pause')");
      assert.match(await text(page), /Paused: the job fires nothing until resumed/);
      assert.match(await text(page, "#job"), /status paused/);
      await submit(page, "button:has-text('Resume')");
      assert.match(await text(page), /Resumed/);
      assert.match(await text(page, "#job"), /status pending/);

      await page.fill("#actions [name=reason]", "replaced by <v2>");
      await submit(page, "button:has-text('Cancel')");
      assert.match(await text(page), /Cancelled\./);
      assert.match(await text(page, "#job"), /status cancelled cancel reason replaced by <v2>/);

      assert.equal(await text(page, "#actions"), "Delete", "a cancelled job can only be deleted");

      await ticks.waitFor((reqs) => reqs.length >= 3, 10_000);
      await page.goto(tickerUrl);
      await submit(page, "button:has-text('Pause')");

      await submit(page, "header >> text=Overview");
      // pending 1 (the second job), paused 1 (the ticker), cancelled 1, total 3
      await reloadUntil(page, "#job-counts", /timer entries 1 0 0 0 0 1 1 3 \/ 100000 /);
      assert.match(
        await text(page, "figure"),
        /p50 per 10 s over the last 10 minutes; \d+ occurrences/,
      );
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL("console.png", ARTIFACTS).pathname });

      await page.goto(t.url + jobUrl);
      await page.screenshot({
        path: new URL("console-job.png", ARTIFACTS).pathname,
        fullPage: true,
      });

      const xss = (await t.get(`/jobs?q=__xss`)).body.jobs[0].id;
      await page.goto(`${t.url}/console/jobs/${xss}`);
      await submit(page, "button:has-text('Delete')");
      assert.match(await text(page), /Job deleted with its history\./);
      assert.equal((await t.get(`/jobs/${xss}`)).status, 404);
      assert.deepEqual(dialogs, ["Delete this job and its history?"], "no script ran an alert");
    });
  });
});

Deno.test({
  name: "a follower's console shows the members and writes through the leader",
  ignore: CHROMIUM_MISSING !== null,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await withInProcessCluster("c", async (nodes, leader) => {
    const follower = [...nodes.keys()].find((n) => n !== leader)!;
    const followerUrl = nodes.get(follower)!.url;

    await withBrowser(async (page) => {
      await page.goto(`${followerUrl}/console`);
      assert.match(
        await text(page, "header"),
        new RegExp(`node ${follower} · follower · leader ${leader}`),
      );
      const members = await text(page, "#members");
      for (const name of nodes.keys()) assert.ok(members.includes(name), `${name} is listed`);
      assert.match(members, new RegExp(`${leader} http://\\S+ leader \\(voter\\)`));

      await page.goto(`${followerUrl}/console/jobs`);
      await page.fill("#create [name=name]", "made on a follower");
      await page.fill("#create [name=schedule]", "0 0 1 1 *");
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === "POST"),
        page.click("text=Create job"),
      ]);
      await page.waitForLoadState();
      assert.equal(response.headers()["x-tickraft-forwarded-by"], follower);
      assert.equal(response.headers()["x-tickraft-node"], leader, "the leader wrote it");
      assert.match(await text(page), /Job created\. Job made on a follower/);

      await page.goto(`${followerUrl}/console/jobs?q=follower`);
      await reloadUntil(page, "#jobs", /made on a follower/); // replicated to the follower
    });
  });
});
