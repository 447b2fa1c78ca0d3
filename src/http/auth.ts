/**
 * Bearer tokens for the public API (`Authorization: Bearer <token>`), apart from the cluster
 * secret: an admin token (API_TOKENS_ADMIN) may do everything, a read token (API_TOKENS_READ) only
 * GET and HEAD. With both lists empty the API is open, as before tokens existed.
 *
 * Not checked here: `/raft/*` (signed with the cluster secret, see src/cluster/raft_routes.ts), the OpenAPI document
 * and its UI (they describe the API and hold no data), and `/health` and `/metrics` while
 * AUTH_OPEN_HEALTH is true (load balancers and Prometheus scrape them without a token).
 *
 * Tokens are compared as SHA-256 digests with `timingSafeEqual`, against every configured token
 * without stopping at a match, so the time taken tells nothing about a token's content or length.
 * Nothing here logs; a refusal never echoes the token.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { CLUSTER_AUTH_HEADER, RaftAuth } from "../cluster/auth.ts";
import { DOCS_PATH, OPENAPI_PATH } from "./openapi.ts";

/** Why a request was refused: no bearer token, an unknown one, a read token on a write. */
export type RefusalReason = "missing" | "invalid" | "read_only";

/** The API's tokens and what to do with refusals. */
export interface ApiAuthOptions {
  admin_tokens: readonly string[];
  read_tokens: readonly string[];
  /** `/health` and `/metrics` without a token (AUTH_OPEN_HEALTH). */
  open_health: boolean;
  /**
   * The cluster secret, or empty outside cluster mode: a `POST /join` signed with it (header
   * `X-Tickraft-Cluster-Auth`, as a joining node sends) needs no API token.
   */
  cluster_secret?: string;
  /** Called once per refused request, for a metric. */
  onRefused(reason: RefusalReason): void;
}

/**
 * The console's sign-in page: a browser cannot send a bearer token, so the console takes the
 * token once and keeps it in an HttpOnly, SameSite=Strict cookie (which also keeps other sites
 * from posting the console's forms).
 */
export const CONSOLE_LOGIN_PATH = "/console/login";
/** Cookie holding the console's token. */
export const CONSOLE_TOKEN_COOKIE = "tickraft_token";

const digest = (token: string) => createHash("sha256").update(token).digest();

/** Whether `presented` (a digest) is one of `digests`; compares against all of them. */
function anyMatch(digests: readonly Uint8Array[], presented: Uint8Array): boolean {
  let found = false;
  for (const d of digests) found = timingSafeEqual(d, presented) || found;
  return found;
}

const BEARER = /^Bearer +([^ ]+) *$/i;

/** Whether the request carries a valid cluster signature of its path and body. */
async function signedByCluster(c: Context, auth: RaftAuth): Promise<boolean> {
  const claim = auth.claim(c.req.header(CLUSTER_AUTH_HEADER), Date.now());
  if (typeof claim === "string") return false;
  const body = new Uint8Array(await c.req.arrayBuffer());
  return auth.verify(claim, c.req.path, body);
}
const isRead = (method: string) => method === "GET" || method === "HEAD";

/** The middleware; mount it before the routes it protects. */
export function apiAuth(opts: ApiAuthOptions): MiddlewareHandler {
  const admin = opts.admin_tokens.map(digest);
  const read = opts.read_tokens.map(digest);
  const open = new Set([OPENAPI_PATH, DOCS_PATH]);
  if (opts.open_health) {
    open.add("/health");
    open.add("/ready");
    open.add("/metrics");
  }
  const clusterAuth = opts.cluster_secret ? new RaftAuth(opts.cluster_secret) : null;
  const refuse = (c: Context, reason: RefusalReason, error: string) => {
    opts.onRefused(reason);
    if (reason === "read_only") {
      c.header("WWW-Authenticate", 'Bearer realm="tickraft", error="insufficient_scope"');
      return c.json({ error, code: "forbidden" }, 403);
    }
    c.header(
      "WWW-Authenticate",
      reason === "invalid"
        ? 'Bearer realm="tickraft", error="invalid_token"'
        : 'Bearer realm="tickraft"',
    );
    return c.json({ error, code: "unauthorized" }, 401);
  };

  return async (c, next) => {
    if (admin.length === 0 && read.length === 0) return await next();
    const path = c.req.path;
    if (path.startsWith("/raft/") || open.has(path)) return await next();
    if (path === "/join" && clusterAuth !== null && await signedByCluster(c, clusterAuth)) {
      return await next();
    }
    if (path === CONSOLE_LOGIN_PATH) return await next();
    const console = path === "/console" || path.startsWith("/console/");
    const token = BEARER.exec(c.req.header("Authorization") ?? "")?.[1] ??
      (console ? getCookie(c, CONSOLE_TOKEN_COOKIE) : undefined);
    if (token === undefined) {
      if (console) return c.redirect(CONSOLE_LOGIN_PATH, 303);
      return refuse(c, "missing", "this API needs a token: send Authorization: Bearer <token>");
    }
    const presented = digest(token);
    if (anyMatch(admin, presented)) return await next();
    if (!anyMatch(read, presented)) {
      if (console) {
        opts.onRefused("invalid");
        return c.redirect(`${CONSOLE_LOGIN_PATH}?error=invalid`, 303);
      }
      return refuse(
        c,
        "invalid",
        "unknown API token; use one of API_TOKENS_ADMIN or API_TOKENS_READ",
      );
    }
    if (isRead(c.req.method)) return await next();
    return refuse(
      c,
      "read_only",
      `this token is read-only (API_TOKENS_READ): ${c.req.method} needs an admin token`,
    );
  };
}
