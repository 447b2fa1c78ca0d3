/**
 * Cluster routes (`/join`, `/cluster/...`) and leader routing: a follower proxies writes to the
 * leader (or answers `fly-replay` behind Fly's proxy, or 307 when the client asks with
 * `X-Tickraft-Redirect: true`), and serves `?consistency=linearizable` reads only after a
 * ReadIndex round on the leader.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { ValidationError } from "../errors.ts";
import { NotLeaderError } from "../log/command_log.ts";
import { fieldIssues } from "./errors.ts";
import { CONSOLE_LOGIN_PATH } from "./auth.ts";
import { readJson } from "./jobs.ts";
import { joinSchema, transferSchema } from "./schemas.ts";

/** What the HTTP layer needs of a cluster member. */
export interface ClusterApi {
  self: string;
  isLeader(): boolean;
  /** The leader's name and URL, when one is known. */
  leader(): { name: string; address: string } | null;
  join(name: string, address: string): Promise<{ name: string; address: string }>;
  remove(name: string): Promise<void>;
  transferLeadership(to?: string): Promise<string>;
  readBarrier(): Promise<void>;
  /** On Fly: answer `fly-replay` to requests that came through Fly's proxy, instead of proxying. */
  fly_replay: boolean;
}

const FORWARDED = "X-Tickraft-Forwarded-By";

/** `/join`, `DELETE /cluster/members/{id}`, `POST /cluster/transfer-leader` (leader only). */
export function clusterRoutes(api: ClusterApi): Hono {
  const app = new Hono();
  app.post("/join", async (c) => {
    const parsed = joinSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw new ValidationError(`invalid join request: ${issues[0].message}`, issues);
    }
    const member = await api.join(parsed.data.node_id, parsed.data.address);
    return c.json({ ...member, role: "learner", status: "joining" }, 202);
  });
  app.delete("/cluster/members/:id", async (c) => {
    await api.remove(c.req.param("id"));
    return c.json({ id: c.req.param("id"), removed: true });
  });
  app.post("/cluster/transfer-leader", async (c) => {
    const parsed = transferSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      throw new ValidationError("invalid transfer request", fieldIssues(parsed.error));
    }
    const leader = await api.transferLeadership(parsed.data.to);
    return c.json({ leader });
  });
  return app;
}

const isWrite = (method: string) => method !== "GET" && method !== "HEAD";

/**
 * Routes requests by leadership: writes and linearizable reads need the leader. Raft RPCs and
 * local reads are served where they arrive.
 */
export function leaderRouting(api: ClusterApi): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    if (url.pathname.startsWith("/raft/") || url.pathname === CONSOLE_LOGIN_PATH) {
      return await next();
    }
    const linearizable = url.searchParams.get("consistency") === "linearizable";
    if (!isWrite(c.req.method) && !linearizable) return await next();
    if (api.isLeader()) {
      if (linearizable) await api.readBarrier();
      return await next();
    }
    const leader = api.leader();
    if (leader === null || c.req.header(FORWARDED) !== undefined) {
      throw new NotLeaderError(
        leader === null
          ? "no leader is known yet (election in progress); retry shortly"
          : `this node is not the leader (${leader.name} is)`,
        leader?.name ?? null,
        leader?.address ?? null,
      );
    }
    // Only requests that came through Fly's proxy (it adds Fly-Request-Id) can be replayed by it.
    if (api.fly_replay && c.req.header("Fly-Request-Id") !== undefined) {
      c.header("fly-replay", `instance=${leader.name}`);
      return c.json({ error: `replaying on the leader ${leader.name}`, code: "replay" }, 409);
    }
    const target = `${leader.address.replace(/\/$/, "")}${url.pathname}${url.search}`;
    if (c.req.header("X-Tickraft-Redirect") === "true") {
      c.header("Location", target);
      return c.json(
        { error: `the leader is ${leader.name}`, code: "redirect", location: target },
        307,
      );
    }
    const headers = new Headers(c.req.raw.headers);
    headers.delete("host");
    headers.set(FORWARDED, api.self);
    const body = isWrite(c.req.method) ? await c.req.arrayBuffer() : undefined;
    let proxied: Response;
    try {
      proxied = await fetch(target, {
        method: c.req.method,
        headers,
        body,
        signal: AbortSignal.timeout(30_000),
        // The client follows redirects itself (the console's 303 after a form post).
        redirect: "manual",
      });
    } catch (error) {
      // The leader went away mid-request (killed, partitioned): whether the write happened is
      // unknown, as with any lost answer; idempotency keys make the retry safe.
      throw new NotLeaderError(
        `the leader ${leader.name} did not answer (${(error as Error).message}); retry shortly`,
        leader.name,
        leader.address,
      );
    }
    const response = new Response(proxied.body, proxied);
    response.headers.set(FORWARDED, api.self);
    return response;
  };
}
