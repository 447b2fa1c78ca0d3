/**
 * How the node ships. The `deno task compile` binary end to end: it is built the way the task builds it, starts on a
 * fresh data dir (so libSQL's native addon loads from inside the binary and the migrations run),
 * creates and reads back a job over HTTP, and stops cleanly on SIGTERM.
 *
 * Skipped, with a line saying why, where `denort` (the runtime `deno compile` copies) is neither in
 * DENORT_BIN nor in Deno's cache: it cannot be downloaded on the build machines. The Bun binary
 * (`deno task compile:bun`) needs no download and is tested here always: alone in an empty
 * folder it starts a node, fires a job to a real webhook receiver, serves the CLI, and stops on
 * SIGTERM. Docker cannot run there either, so the Dockerfile is checked for its structure, and the
 * Grafana dashboard for metric names the node really exports.
 */
import assert from "node:assert/strict";
import { compile, findDenort } from "../scripts/compile.ts";
import { CLUSTER_COMMANDS } from "../src/cli/cluster_commands.ts";
import { NodeMetrics } from "../src/node/metrics.ts";
import { startSink } from "./support/sink.ts";

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

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs `program args` in `cwd` to its end; its exit code and both streams. */
async function run(program: string, args: string[], cwd: string) {
  const out = await new Deno.Command(program, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

Deno.test("Bun binary: alone in an empty folder it fires a job to a webhook, serves the CLI, stops on SIGTERM", async () => {
  const build_dir = await Deno.makeTempDir({ prefix: "tickraft-bun-build-" });
  const empty = await Deno.makeTempDir({ prefix: "tickraft-bun-run-" });
  await using sink = await startSink();
  try {
    const built = `${build_dir}/tickraft`;
    const build = await run(`${ROOT}bun`, ["run", "scripts/compile_bun.ts", built], ROOT);
    assert.equal(build.code, 0, build.stdout + build.stderr);
    // Only the binary in the folder: no sources, no node_modules, no toolchain.
    const binary = `${empty}/tickraft`;
    await Deno.copyFile(built, binary);
    await Deno.chmod(binary, 0o755);
    assert.deepEqual([...Deno.readDirSync(empty)].map((e) => e.name), ["tickraft"]);

    const child = new Deno.Command(binary, {
      args: ["--host", "127.0.0.1", "--http-port", "0"],
      cwd: empty,
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output: string[] = [];
    const node = await waitForStart(child, output);
    let code: number;
    try {
      const [status, created] = await request(`${node.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          type: "once",
          timestamp: new Date(Date.now() + 1_000).toISOString(),
          name: "fired by the Bun binary",
          webhook_url: `${sink.url}/hook`,
          payload: { from: "bun" },
        }),
      });
      assert.equal(status, 201, JSON.stringify(created));
      await sink.waitFor((requests) => requests.length >= 1, 15_000);
      assert.equal(sink.requests[0].path, "/hook");
      assert.deepEqual((sink.requests[0].json as { payload?: unknown }).payload, { from: "bun" });

      const cli = await run(binary, ["jobs", "get", String(created.id), "--url", node.url], empty);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /fired by the Bun binary/);
      const missing = await run(binary, ["jobs", "get", "no-such-job", "--url", node.url], empty);
      assert.notEqual(missing.code, 0, "the CLI's exit code says the job is missing");
    } finally {
      child.kill("SIGTERM");
      code = (await child.status).code;
      await node.drained;
    }
    assert.equal(code, 0, output.join(""));
    assert.match(output.join(""), /"msg":"node stopped"/);
    // The node kept its state beside the binary, in the default ./data.
    assert.ok((await Deno.stat(`${empty}/data/node.db`)).isFile);
  } finally {
    await Deno.remove(build_dir, { recursive: true });
    await Deno.remove(empty, { recursive: true });
  }
});

const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

Deno.test("Dockerfile: builders run deno task compile and compile_bun.ts; both images are non-root with /data and a health check", async () => {
  const dockerfile = await read("Dockerfile");
  const stages = [...dockerfile.matchAll(/^FROM (\S+)(?: AS ([\w-]+))?$/gm)];
  assert.deepEqual(stages.map((s) => [s[1], s[2]]), [
    [`denoland/deno:${Deno.version.deno}`, "builder"],
    ["node:22-bookworm-slim", "bun-builder"],
    ["gcr.io/distroless/cc-debian12:nonroot", "bun"],
    ["gcr.io/distroless/cc-debian12:nonroot", undefined],
  ]);
  assert.match(dockerfile, /^RUN deno task compile/m);
  assert.match(dockerfile, /^RUN \.\/bun run scripts\/compile_bun\.ts /m);
  // Each of the two images (the `bun` stage and the last one) says all of this once.
  const count = (pattern: RegExp) => [...dockerfile.matchAll(pattern)].length;
  const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
  assert.equal(users.length, 2);
  for (const user of users) {
    assert.ok(!/^(0|root)(:|$)/.test(user), `USER ${user} is not root`);
  }
  assert.equal(count(/^VOLUME \/data$/gm), 2);
  assert.equal(count(/^ENV DATA_DIR=\/data/gm), 2);
  assert.equal(count(/^EXPOSE 8080$/gm), 2);
  const health = [...dockerfile.matchAll(/^HEALTHCHECK .*\n?.*CMD (\[.*\])$/gm)];
  assert.equal(health.length, 2, "HEALTHCHECK in exec form in both images");
  for (const check of health) {
    const [binary, , , group, command] = JSON.parse(check[1]);
    assert.equal(binary, "/usr/local/bin/tickraft");
    assert.equal(group, "cluster");
    assert.ok(Object.hasOwn(CLUSTER_COMMANDS, command), `the CLI has "cluster ${command}"`);
  }
});

Deno.test(".dockerignore keeps every path the builder stage copies", async () => {
  const kept = (await read(".dockerignore")).split("\n")
    .filter((line) => line.startsWith("!"))
    .map((line) => line.slice(1));
  const copied = [...(await read("Dockerfile")).matchAll(/^COPY (?!--from)(.+) \S+$/gm)]
    .flatMap((m) => m[1].split(" "));
  assert.ok(copied.length > 0);
  for (const path of copied) assert.ok(kept.includes(path), `.dockerignore keeps ${path}`);
});

Deno.test("Grafana dashboard queries only metrics the node exports", async () => {
  const exported = new Set(
    (await new NodeMetrics().registry.getMetricsAsJSON()).map((m) => m.name),
  );
  const queried = new Set(
    [...(await read("deploy/grafana/tickraft-dashboard.json")).matchAll(/tickraft_\w+/g)]
      .map((m) => m[0].replace(/_(bucket|count|sum)$/, "")),
  );
  assert.ok(queried.size > 0);
  for (const name of queried) assert.ok(exported.has(name), `${name} is exported`);
});
