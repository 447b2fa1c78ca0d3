/**
 * The webhook sink as its own process, for benchmarks and multi-process tests. Writes one JSON
 * line per request (a {@link RecordedRequest}) to `--out` (default: stdout) and, once
 * listening, `listening <url>` on stderr. Stops on SIGINT or SIGTERM.
 *
 * ```sh
 * ./deno run --allow-net --allow-write tests/support/sink_main.ts --port 9100 --out /tmp/hooks.jsonl
 * ./deno run --allow-net tests/support/sink_main.ts --status 503 --delay-ms 50
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type RecordedRequest, startSink } from "./sink.ts";

const USAGE = `usage: sink_main.ts [--port N] [--out FILE] [--status CODE] [--delay-ms MS]
  --port      port on 127.0.0.1 (default 0: any free port)
  --out       append one JSON line per request to FILE (default: stdout)
  --status    status code of every answer (default 200)
  --delay-ms  wait this long before answering (default 0)`;

function integerOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer in [${min}, ${max}], got ${value}\n${USAGE}`);
    Deno.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    out: { type: "string" },
    status: { type: "string", default: "200" },
    "delay-ms": { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const port = integerOption("port", values.port, 0, 65535);
const status = integerOption("status", values.status, 200, 599);
const delay_ms = integerOption("delay-ms", values["delay-ms"], 0, 3_600_000);

const out = values.out === undefined
  ? Deno.stdout
  : await Deno.open(values.out, { create: true, append: true });
const encoder = new TextEncoder();
let writes: Promise<void> = Promise.resolve();

/** Queues one line; writes stay in arrival order and whole. */
function writeLine(req: RecordedRequest): void {
  const bytes = encoder.encode(JSON.stringify(req) + "\n");
  writes = writes.then(async () => {
    let offset = 0;
    while (offset < bytes.length) offset += await out.write(bytes.subarray(offset));
  });
}

const sink = await startSink({
  port,
  record: false,
  onRequest: writeLine,
  respond: () => ({ status, delay_ms }),
});
console.error(`listening ${sink.url}`);

const stop = async () => {
  await sink.close();
  await writes;
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
