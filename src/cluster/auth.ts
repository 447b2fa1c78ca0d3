/**
 * Request authentication between nodes: HMAC-SHA256 under the cluster secret over (path,
 * timestamp, body), with a replay window, compared in constant time. It signs the Raft RPCs
 * (`src/cluster/transport.ts` sends, `src/cluster/raft_routes.ts` checks) and the cluster's other
 * node-to-node requests (`POST /join`, under {@link CLUSTER_AUTH_HEADER}).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** How far a request's timestamp may be from the receiver's clock, either way. */
export const RAFT_REPLAY_WINDOW_MS = 30_000;

const AUTH_SCHEME = "Tickraft-HMAC-SHA256";
const AUTH_PATTERN = /^Tickraft-HMAC-SHA256 ([0-9]{1,16}):([0-9a-f]{64})$/;

/** A well-formed, fresh Authorization header, not yet checked against the body. */
export interface RaftClaim {
  readonly timestamp_ms: number;
  readonly mac: Uint8Array;
}

/** Header of a request other than a Raft RPC (`POST /join`) signed with the cluster secret. */
export const CLUSTER_AUTH_HEADER = "X-Tickraft-Cluster-Auth";

/**
 * Signs and checks Raft requests with the cluster secret: `Authorization: Tickraft-HMAC-SHA256
 * <timestamp_ms>:<hex HMAC-SHA256 of "tickraft-raft-v1\n" + path + "\n" + timestamp_ms + "\n" +
 * body>`. The path in the MAC stops a body signed for one route from being accepted on another;
 * the timestamp bounds replays to {@link RAFT_REPLAY_WINDOW_MS} (a replay inside the window is a
 * duplicated message, which Raft tolerates). The secret itself never travels.
 *
 * Uses `node:crypto` (built into Deno and Bun, not a dependency): synchronous and streaming, so
 * the body is hashed in place, about 3x cheaper than `crypto.subtle` on small bodies
 * (docs/transport.md).
 */
export class RaftAuth {
  readonly #secret: Buffer;

  /** Throws RangeError for an empty secret: an empty key would authenticate anyone. */
  constructor(secret: string) {
    if (secret.length === 0) throw new RangeError("the cluster secret must not be empty");
    this.#secret = Buffer.from(secret, "utf8");
  }

  #mac(path: string, timestamp_ms: number, body: Uint8Array): Buffer {
    return createHmac("sha256", this.#secret)
      .update(`tickraft-raft-v1\n${path}\n${timestamp_ms}\n`)
      .update(body)
      .digest();
  }

  /** The Authorization header value for `body` posted to `path` at `timestamp_ms`. */
  authorization(path: string, body: Uint8Array, timestamp_ms: number): string {
    return `${AUTH_SCHEME} ${timestamp_ms}:${this.#mac(path, timestamp_ms, body).toString("hex")}`;
  }

  /**
   * The header checks that need no body: well-formed, and its timestamp within the replay window
   * of `now_ms`. Returns the claim, or why it was refused.
   */
  claim(header: string | undefined, now_ms: number): RaftClaim | string {
    const match = header === undefined ? null : AUTH_PATTERN.exec(header);
    if (match === null) return `missing or malformed Authorization (want ${AUTH_SCHEME})`;
    const timestamp_ms = Number(match[1]);
    if (Math.abs(now_ms - timestamp_ms) > RAFT_REPLAY_WINDOW_MS) {
      return `timestamp ${timestamp_ms} is more than ${RAFT_REPLAY_WINDOW_MS} ms from ${now_ms}: ` +
        "a replayed request, or the two nodes' clocks differ by more than that (sync them with NTP)";
    }
    return { timestamp_ms, mac: Buffer.from(match[2], "hex") };
  }

  /** Whether the claim's MAC matches `body` posted to `path` (constant-time compare). */
  verify(claim: RaftClaim, path: string, body: Uint8Array): boolean {
    const expected = this.#mac(path, claim.timestamp_ms, body);
    return claim.mac.byteLength === expected.byteLength && timingSafeEqual(claim.mac, expected);
  }
}
