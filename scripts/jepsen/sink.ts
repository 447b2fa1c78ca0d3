/**
 * The webhook sink of a run: a real HTTP server on loopback that records every delivery (path
 * `/hook/<key>`) with its Idempotency-Key, arrival time and the node that sent it, and answers
 * 200.
 *
 * The request does not name the node that sent it, so the sink asks the kernel: the TCP source
 * port of the connection is looked up in /proc/net/tcp for the socket's inode, and the inode
 * among the file descriptors of the node processes. Connections are kept alive, so the lookup is
 * made once per connection. Where /proc is not there, `sender` is null.
 *
 * @module
 */
import type { Delivery } from "./history.ts";

export interface RunSink {
  url: string;
  deliveries: Delivery[];
  close(): Promise<void>;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

/** The inode of the loopback socket from `local_port` to `remote_port`, or null. */
async function socketInode(local_port: number, remote_port: number): Promise<string | null> {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if (
        cols[1].endsWith(`:${hexPort(local_port)}`) && cols[2].endsWith(`:${hexPort(remote_port)}`)
      ) {
        return cols[9];
      }
    }
  }
  return null;
}

async function ownerOf(inode: string, pids: Map<number, string>): Promise<string | null> {
  const target = `socket:[${inode}]`;
  for (const [pid, name] of pids) {
    try {
      for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
        try {
          if (await Deno.readLink(`/proc/${pid}/fd/${fd.name}`) === target) return name;
        } catch {
          // the descriptor closed meanwhile
        }
      }
    } catch {
      // the process is gone
    }
  }
  return null;
}

/**
 * Starts the sink. `now` is the run's clock, `started_at` the Unix ms of its time 0; `pids`
 * names the node processes alive now (for telling the sender).
 */
export function startRunSink(
  now: () => number,
  started_at: number,
  pids: () => Map<number, string>,
): Promise<RunSink> {
  const deliveries: Delivery[] = [];
  const senders = new Map<number, { at: number; owner: Promise<string | null> }>();
  let port = 0;
  const sender = (remote_port: number): Promise<string | null> => {
    const known = senders.get(remote_port);
    // A port is reused by later connections, though rarely within a minute (a lookup reads
    // /proc/net/tcp and every node's descriptors, too costly to repeat per delivery).
    if (known !== undefined && now() - known.at < 60_000) return known.owner;
    const owner = socketInode(remote_port, port).then((inode) =>
      inode === null ? null : ownerOf(inode, pids())
    );
    senders.set(remote_port, { at: now(), owner });
    return owner;
  };
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: (addr) => {
        port = addr.port;
        resolve({
          url: `http://127.0.0.1:${addr.port}`,
          deliveries,
          close: () => server.shutdown(),
        });
      },
    }, async (request, info) => {
      const arrival_ms = now();
      const from = sender(info.remoteAddr.port);
      let body: string;
      try {
        body = await request.text();
      } catch {
        // The sender died mid-request: not a delivery (it is sent again, with the same key).
        return new Response(null, { status: 400 });
      }
      const path = new URL(request.url).pathname;
      if (!path.startsWith("/hook/")) return new Response(null, { status: 404 });
      let parsed: { job_id?: string; scheduled_at?: string; attempt?: number } = {};
      try {
        parsed = JSON.parse(body);
      } catch {
        // recorded with what the headers say
      }
      deliveries.push({
        arrival_ms,
        key: decodeURIComponent(path.slice("/hook/".length)),
        job_id: parsed.job_id ?? "",
        scheduled_at_ms: parsed.scheduled_at === undefined
          ? NaN
          : Date.parse(parsed.scheduled_at) - started_at,
        attempt: parsed.attempt ?? 0,
        idempotency_key: request.headers.get("idempotency-key"),
        redelivery: request.headers.get("x-tickraft-redelivery") === "true",
        sender: await from,
      });
      return new Response(null, { status: 200 });
    });
  });
}
