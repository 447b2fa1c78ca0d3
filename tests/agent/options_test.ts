/** `tickraft worker` flags: defaults from the host, lists, taints, and what a mistake says. */
import assert from "node:assert/strict";
import { AgentUsageError, parseAgentArgs, splitCommand } from "../../src/agent/options.ts";

const HOST = { hostname: "box.example", pid: 4242, cores: 4, memory_total_mb: 8192 };
const BASE = ["--server", "http://127.0.0.1:8080", "--handler", "http://127.0.0.1:3000/run"];

function parse(args: string[], env: Record<string, string> = {}) {
  const parsed = parseAgentArgs(args, HOST, env);
  assert.ok(!("help" in parsed));
  return parsed;
}

Deno.test("defaults: id from host and pid, pool default, cpu and memory from the host, 1 slot", () => {
  const o = parse(BASE);
  assert.equal(o.id, "box.example-4242");
  assert.equal(o.pool, "default");
  assert.deepEqual([o.region, o.zone], ["", ""]);
  assert.deepEqual(o.capacity, { cpu_millis: 4000, memory_mb: 8192, disk_mb: 0, slots: 1 });
  assert.deepEqual([o.token, o.secret, o.log_level], [null, null, "info"]);
  assert.deepEqual(o.runner, { kind: "handler", url: "http://127.0.0.1:3000/run" });
});

Deno.test("a host name an id cannot hold is made to fit", () => {
  const o = parseAgentArgs(BASE, { ...HOST, hostname: "ä b/".padEnd(100, "x") }, {});
  assert.ok(!("help" in o));
  assert.match(o.id, /^[A-Za-z0-9._-]{1,64}$/);
  assert.ok(o.id.endsWith("-4242"));
});

Deno.test("servers, labels and taints take comma lists and repeat", () => {
  const o = parse([
    ...BASE,
    "--server",
    "http://10.0.0.2:8080/, http://10.0.0.3:8080",
    "--labels",
    "gpu=false,tier=a=b",
    "--labels",
    "empty=",
    "--taints",
    "dedicated=ml:NoSchedule,spot:PreferNoSchedule",
  ]);
  assert.deepEqual(o.servers, [
    "http://127.0.0.1:8080",
    "http://10.0.0.2:8080",
    "http://10.0.0.3:8080",
  ]);
  assert.deepEqual(o.labels, { gpu: "false", tier: "a=b", empty: "" });
  assert.deepEqual(o.taints, [
    { key: "dedicated", value: "ml", effect: "NoSchedule" },
    { key: "spot", value: "", effect: "PreferNoSchedule" },
  ]);
});

Deno.test("token and secret fall back to the environment", () => {
  const env = { TICKRAFT_TOKEN: "t", TICKRAFT_WORKER_SECRET: "s" };
  assert.deepEqual([parse(BASE, env).token, parse(BASE, env).secret], ["t", "s"]);
  assert.equal(parse([...BASE, "--token", "flag"], env).token, "flag");
});

Deno.test("mistakes say what to fix", () => {
  const cases: [string[], RegExp][] = [
    [["--handler", "http://127.0.0.1:1/run"], /give --server/],
    [["--server", "ftp://x", "--exec", "true"], /--server "ftp:\/\/x" is not an http\(s\) URL/],
    [["--server", "http://a:1"], /exactly one of --handler URL or --exec/],
    [[...BASE, "--exec", "true"], /exactly one of/],
    [[...BASE, "--id", "bad id"], /--id "bad id" must be 1-64/],
    [[...BASE, "--labels", "novalue"], /--labels "novalue" must be key=value/],
    [[...BASE, "--taints", "a=b:Never"], /Effect one of NoSchedule, PreferNoSchedule/],
    [[...BASE, "--taints", "=b:NoSchedule"], /empty key/],
    [[...BASE, "--slots", "0"], /--slots must be an integer ≥ 1, got "0"/],
    [[...BASE, "--cpu", "1.5"], /--cpu must be an integer ≥ 0/],
    [[...BASE, "--memory", ""], /--memory must be an integer/],
    [[...BASE, "--log-level", "loud"], /--log-level must be one of/],
    [[...BASE, "--bogus"], /bogus/],
    [["--server", "http://a:1", "--exec", "  "], /--exec needs a command/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseAgentArgs(args, HOST, {}), (e: Error) => {
      assert.ok(e instanceof AgentUsageError, `${args.join(" ")}: ${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("--help asks for the help", () => {
  assert.deepEqual(parseAgentArgs(["--help"], HOST, {}), { help: true });
});

Deno.test("--exec is split into words like a shell quotes them, without a shell", () => {
  assert.deepEqual(splitCommand(`sh -c 'cat; exit 3'`), ["sh", "-c", "cat; exit 3"]);
  assert.deepEqual(splitCommand(`  ./job.sh  "a b" c\\ d '' "q\\"x" `), [
    "./job.sh",
    "a b",
    "c d",
    "",
    'q"x',
  ]);
  assert.deepEqual(splitCommand(`a'b'"c"`), ["abc"]);
  assert.deepEqual(splitCommand(`echo $HOME *`), ["echo", "$HOME", "*"]);
  assert.throws(() => splitCommand(`sh -c 'open`), /unclosed '/);
  assert.throws(() => splitCommand(`sh -c "open`), /unclosed "/);
});
