/**
 * HTTP on loopback as the benchmarks use it: a JSON probe that answers undefined while a server is
 * not (yet) serving, a status check that fails a measurement with what the server said, and the
 * closed loop of POSTs that the Tickraft and etcd create measurements share.
 *
 * @module
 */
import { closedLoop, type LoadResult } from "./load.ts";

/** Headers of a JSON request body. */
export const JSON_HEADERS = { "content-type": "application/json" };

/** How much of an unexpected answer an error message quotes. */
const ANSWER_EXCERPT_CHARS = 500;

/**
 * The JSON answer of `url`, or undefined when the request fails (refused, reset, timed out) or
 * the status is not 2xx: for polling a server that is starting, restarting or electing.
 */
export async function tryJson<T>(url: string, init?: RequestInit): Promise<T | undefined> {
  try {
    const res = await fetch(url, init);
    if (res.ok) return await res.json() as T;
    await res.body?.cancel();
    return undefined;
  } catch {
    return undefined;
  }
}

/**
 * Consumes `res` when its status is `accept` (a number, or "2xx" for any success); otherwise
 * throws with `what`, the status and the start of the body.
 */
export async function expectStatus(
  res: Response,
  what: string,
  accept: number | "2xx",
): Promise<void> {
  if (accept === "2xx" ? res.ok : res.status === accept) {
    await res.body?.cancel();
    return;
  }
  throw new Error(
    `${what}: HTTP ${res.status}: ${(await res.text()).slice(0, ANSWER_EXCERPT_CHARS)}`,
  );
}

/**
 * POSTs each of `bodies` (JSON text) to `base_url` + `path`, `clients` requests in flight; each
 * must be answered with `accept`. The result counts requests.
 */
export function postEach(
  base_url: string,
  path: string,
  clients: number,
  bodies: readonly string[],
  accept: number | "2xx",
): Promise<LoadResult> {
  return closedLoop(clients, bodies.length, async (i) => {
    const res = await fetch(`${base_url}${path}`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: bodies[i],
    });
    await expectStatus(res, `POST ${path}`, accept);
    return 1;
  });
}
