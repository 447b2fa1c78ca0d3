/**
 * The Raft RPC routes, served on the API's port: `POST /raft/append`, `/raft/vote`,
 * `/raft/pre-vote`, `/raft/snapshot`, `/raft/timeout-now`. Each request carries a batch of
 * messages of its route (`src/cluster/route_table.ts`) in the binary codec of
 * `src/cluster/codec.ts`, signed with the cluster secret (`src/cluster/auth.ts`). The answer is only an acknowledgement of receipt (204): Raft responses travel back as
 * requests from the receiver's own transport.
 *
 * Order of checks, cheapest and least trusting first:
 * 1. Authorization header well-formed and fresh (within the replay window on the steady clock)
 *    → else 401 (no body read);
 * 2. body within `max_body_bytes` → else 413 (a declared Content-Length is refused unread);
 * 3. HMAC over path, timestamp and body → else 401;
 * 4. body decodes → else 400 `invalid_message`;
 * 5. every message belongs to this route and is addressed to this node → else 400;
 * 6. `onMessages` (synchronously), then 204.
 *
 * Mount it before any body-limit middleware meant for the jobs API: snapshot chunks are larger.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { Message, NodeId } from "../raft/types.ts";
import { systemClock } from "../clock.ts";
import { RaftAuth } from "./auth.ts";
import { CodecError, decodeMessages } from "./codec.ts";
import { RAFT_ROUTES, raftPath, type RaftRoute, routeOf } from "./route_table.ts";

/** What the Raft routes need from the node. */
export interface RaftRoutesOptions {
  /** The cluster secret every request must be signed with. */
  secret: string;
  /** This node: every message must be addressed to it. */
  self: NodeId;
  /** Takes authenticated, validated messages; called synchronously before the 204. */
  onMessages(msgs: Message[]): void;
  /** Called once per refused (401) request, with the route, for a metric. */
  onUnauthorized(route: RaftRoute): void;
  /** Largest request body accepted (413 beyond); at least the largest batch a peer sends. */
  max_body_bytes: number;
  /**
   * The clock a request's timestamp is checked against (replay window). Default: the node's
   * steady wall clock (`systemClock`, which absorbs wall-clock steps), so an NTP step on this
   * node does not make it refuse its peers; senders sign with the same clock.
   */
  now_ms?: () => number;
}

/** Reads the body unless it exceeds `max_bytes` (then null, reading no more than that). */
async function readBounded(req: Request, max_bytes: number): Promise<Uint8Array | null> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > max_bytes) return null;
    return new Uint8Array(await req.arrayBuffer());
  }
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total_bytes = 0;
  for await (const chunk of req.body) {
    total_bytes += chunk.byteLength;
    if (total_bytes > max_bytes) return null; // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  const body = new Uint8Array(total_bytes);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** The five `POST /raft/…` routes, as a Hono app to mount at `/`. */
export function raftRoutes(opts: RaftRoutesOptions): Hono {
  const auth = new RaftAuth(opts.secret);
  const now_ms = opts.now_ms ?? (() => systemClock.now());
  const app = new Hono();
  const refuse = (c: Context, status: 400 | 401 | 413, code: string, error: string) =>
    c.json({ error, code }, status);

  for (const route of RAFT_ROUTES) {
    const path = raftPath(route);
    app.post(path, async (c) => {
      const claim = auth.claim(c.req.header("Authorization"), now_ms());
      if (typeof claim === "string") {
        opts.onUnauthorized(route);
        return refuse(c, 401, "unauthorized", claim);
      }
      const body = await readBounded(c.req.raw, opts.max_body_bytes);
      if (body === null) {
        return refuse(
          c,
          413,
          "payload_too_large",
          `Raft request body is larger than ${opts.max_body_bytes} bytes`,
        );
      }
      if (!auth.verify(claim, path, body)) {
        opts.onUnauthorized(route);
        return refuse(c, 401, "unauthorized", "signature does not match (wrong cluster secret?)");
      }
      let msgs: Message[];
      try {
        msgs = decodeMessages(body);
      } catch (error) {
        if (!(error instanceof CodecError)) throw error;
        return refuse(c, 400, "invalid_message", error.message);
      }
      for (const m of msgs) {
        if (routeOf(m.type) !== route) {
          return refuse(c, 400, "wrong_route", `a ${m.type} message does not belong on ${path}`);
        }
        if (m.to !== opts.self) {
          return refuse(c, 400, "wrong_node", `message for node ${m.to} sent to node ${opts.self}`);
        }
      }
      if (msgs.length > 0) opts.onMessages(msgs);
      return c.body(null, 204);
    });
  }
  return app;
}
