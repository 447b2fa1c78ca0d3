/** The CLI's pure helpers: which command lines go to the CLI, the `--json` body, durations. */
import assert from "node:assert/strict";
import { takeJsonBody, UsageError } from "../../src/cli/args.ts";
import { isCliInvocation } from "../../src/cli/cli.ts";
import { durationText } from "../../src/cli/format.ts";
import { parseDurationSeconds } from "../../src/cli/jobs.ts";

Deno.test("isCliInvocation: a group first or after global flags; server flags never read as one", () => {
  assert.equal(isCliInvocation(["jobs", "list"]), true);
  assert.equal(isCliInvocation(["cluster", "status"]), true);
  assert.equal(isCliInvocation(["--url", "http://n:1", "--json", "jobs", "list"]), true);
  assert.equal(isCliInvocation(["--token=t", "cluster"]), true);
  assert.equal(isCliInvocation([]), false);
  assert.equal(isCliInvocation(["serve", "jobs"]), false);
  assert.equal(isCliInvocation(["--help", "jobs"]), false);
  assert.equal(isCliInvocation(["--data-dir", "jobs"]), false);
  assert.equal(isCliInvocation(["--url", "jobs"]), false);
});

Deno.test("takeJsonBody: --json takes a value only when it is a JSON object", () => {
  assert.deepEqual(takeJsonBody(["--json", '{"a":1}', "--json"]), {
    body: '{"a":1}',
    rest: ["--json"],
  });
  assert.deepEqual(takeJsonBody(["--json={}", "x"]), { body: "{}", rest: ["x"] });
  assert.deepEqual(takeJsonBody(["--json", "abc"]), { body: undefined, rest: ["--json", "abc"] });
  assert.throws(() => takeJsonBody(["--json", "{}", "--json", "{}"]), UsageError);
});

Deno.test("durations: --every in seconds, intervals shown in their largest whole unit", () => {
  assert.equal(parseDurationSeconds("30s"), 30);
  assert.equal(parseDurationSeconds("90"), 90);
  assert.equal(parseDurationSeconds("1.5h"), 5_400);
  assert.equal(parseDurationSeconds("1500ms"), 1.5);
  assert.throws(() => parseDurationSeconds("soon"), /--every "soon" is not a duration/);
  assert.deepEqual([30, 90, 300, 7_200, 86_400].map(durationText), [
    "30s",
    "90s",
    "5m",
    "2h",
    "1d",
  ]);
});
