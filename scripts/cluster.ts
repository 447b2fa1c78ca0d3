/**
 * `deno task cluster`: a 3-node cluster on loopback (HTTP 8080, 8081, 8082 by default), each
 * node with its own data dir under `./data/cluster/`. Prints the URLs, prefixes each node's log
 * lines with its name, and stops every node (SIGTERM, then SIGKILL after a grace period) on
 * Ctrl-C or SIGTERM.
 *
 *   deno task cluster [--nodes 3] [--base-port 8080] [--data-dir ./data/cluster]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "3" },
    "base-port": { type: "string", default: "8080" },
    "data-dir": { type: "string", default: "./data/cluster" },
    "log-level": { type: "string", default: "info" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(
    "deno task cluster [--nodes 3] [--base-port 8080] [--data-dir ./data/cluster] [--log-level info]",
  );
  Deno.exit(0);
}
const count = Number(values.nodes);
const basePort = Number(values["base-port"]);
if (!Number.isInteger(count) || count < 1 || count > 9) {
  console.error("--nodes takes 1 to 9");
  Deno.exit(2);
}
const names = Array.from({ length: count }, (_, i) => `node-${i + 1}`);
const peers = names.map((name, i) => `${name}=http://127.0.0.1:${basePort + i}`).join(",");
const secret = Deno.env.get("CLUSTER_SECRET") ?? "local-cluster-secret-0123456789";
const main = new URL("../src/main.ts", import.meta.url).pathname;

const children = names.map((name, i) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", main],
    env: {
      NODE_ID: name,
      HTTP_HOST: "127.0.0.1",
      HTTP_PORT: String(basePort + i),
      DATA_DIR: `${values["data-dir"]}/${name}`,
      CLUSTER_NODES: peers,
      CLUSTER_SECRET: secret,
      LOG_LEVEL: values["log-level"],
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const prefix = new TextEncoder().encode(`[${name}] `);
  const relay = async (stream: ReadableStream<Uint8Array>, out: typeof Deno.stdout) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        await out.write(prefix);
        await out.write(new TextEncoder().encode(line + "\n"));
      }
    }
  };
  void relay(child.stdout, Deno.stdout);
  void relay(child.stderr, Deno.stderr);
  return { name, child, url: `http://127.0.0.1:${basePort + i}` };
});

console.log(`started ${count} nodes (Ctrl-C stops them):`);
for (const { name, url } of children) console.log(`  ${name}  ${url}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("stopping the cluster ...");
  for (const { child } of children) {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
  }
  const grace = setTimeout(() => {
    for (const { child } of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }
  }, 15_000);
  await Promise.all(children.map(({ child }) => child.status));
  clearTimeout(grace);
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
await Promise.all(children.map(async ({ name, child }) => {
  const status = await child.status;
  if (!stopping) console.error(`${name} exited with code ${status.code}`);
}));
