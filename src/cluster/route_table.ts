/**
 * The route table of the Raft RPCs: which `/raft/…` route carries each message type, and its
 * URL path. The sending transport (`src/cluster/transport.ts`) queues and batches per route, the
 * receiving routes (`src/cluster/raft_routes.ts`) register one handler per route and refuse a
 * message that belongs to another; both take the table from here so they cannot disagree.
 *
 * @module
 */
import type { MessageType } from "../raft/types.ts";

/** The `/raft/` routes; each request carries messages of one route only. */
export type RaftRoute = "append" | "vote" | "pre-vote" | "snapshot" | "timeout-now";

/** Every route, in the order the server registers them. */
export const RAFT_ROUTES: readonly RaftRoute[] = [
  "append",
  "vote",
  "pre-vote",
  "snapshot",
  "timeout-now",
];

const ROUTE_OF: Record<MessageType, RaftRoute> = {
  app: "append",
  appResp: "append",
  heartbeat: "append",
  heartbeatResp: "append",
  vote: "vote",
  voteResp: "vote",
  preVote: "pre-vote",
  preVoteResp: "pre-vote",
  snap: "snapshot",
  snapResp: "snapshot",
  timeoutNow: "timeout-now",
};

/** The route that carries messages of `type`. */
export function routeOf(type: MessageType): RaftRoute {
  return ROUTE_OF[type];
}

/** The URL path of a route, e.g. `/raft/pre-vote`. */
export function raftPath(route: RaftRoute): string {
  return `/raft/${route}`;
}
