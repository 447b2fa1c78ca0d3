/**
 * The `deno task compile` binary end to end: it is built the way the task builds it, starts on a
 * fresh data dir (so libSQL's native addon loads from inside the binary and the migrations run),
 * creates and reads back a job over HTTP, and stops cleanly on SIGTERM.
 *
 * Skipped, with a line saying why, where `denort` (the runtime `deno compile` copies) is neither in
 * DENORT_BIN nor in Deno's cache: it cannot be downloaded on the build machines.
 */
import assert from "node:assert/strict";
import { compile, findDenort } from "../scripts/compile.ts";

const START_TIMEOUT_MS = 30_000;

const denort = await findDenort();
if (!denort.ok) {
  console.log(
    `compile_test skipped: denort unavailable: ${denort.reason} ` +
      "(run `deno task compile` where it can be downloaded, or set DENORT_BIN)",
  );
}

/**
 * Collects the child's output into `output` until it ends (`drained`) and resolves once its
 * "node started" line has announced the URL it serves.
 */
async function waitForStart(
  child: Deno.ChildProcess,
  output: string[],
): Promise<{ url: string; drained: Promise<unknown> }> {
  const decoder = new TextDecoder();
  let announce: (url: string) => void = () => {};
  const started = new Promise<string>((resolve) => announce = resolve);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output.push(decoder.decode(chunk, { stream: true }));
      const match = /"msg":"node started".*?"url":"([^"]+)"/.exec(output.join(""));
      if (match !== null) announce(match[1]);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no start line")), START_TIMEOUT_MS);
  });
  const exited = child.status.then((s) => {
    throw new Error(`exited with code ${s.code} before listening`);
  });
  exited.catch(() => {});
  try {
    return { url: await Promise.race([started, timeout, exited]), drained: pumps };
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    await pumps;
    throw new Error(`${(error as Error).message}:\n${output.join("")}`);
  } finally {
    clearTimeout(timer);
  }
}

async function request(
  url: string,
  init?: RequestInit,
): Promise<[number, Record<string, unknown>]> {
  const response = await fetch(url, init);
  return [response.status, await response.json()];
}

async function createAndRead(url: string): Promise<void> {
  const [healthStatus] = await request(`${url}/health`);
  assert.equal(healthStatus, 200);
  const [createStatus, created] = await request(`${url}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      type: "once",
      timestamp: new Date(Date.now() + 3_600_000).toISOString(),
      name: "from the compiled binary",
    }),
  });
  assert.equal(createStatus, 201, JSON.stringify(created));
  const [getStatus, job] = await request(`${url}/jobs/${created.id}`);
  assert.equal(getStatus, 200);
  assert.equal(job.id, created.id);
  assert.equal(job.name, "from the compiled binary");
}

Deno.test({
  name: "compiled binary: starts, creates and reads a job, stops on SIGTERM",
  ignore: !denort.ok,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tickraft-compile-" });
    try {
      const binary = `${dir}/tickraft`;
      assert.equal(await compile(binary), null);
      const child = new Deno.Command(binary, {
        args: ["--host", "127.0.0.1", "--http-port", "0", "--data-dir", `${dir}/data`],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output: string[] = [];
      const node = await waitForStart(child, output);
      let code: number;
      try {
        await createAndRead(node.url);
      } finally {
        child.kill("SIGTERM");
        code = (await child.status).code;
        await node.drained;
      }
      assert.equal(code, 0, output.join(""));
      assert.match(output.join(""), /"msg":"node stopped"/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
