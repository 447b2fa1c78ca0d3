/**
 * Free TCP ports on 127.0.0.1 for the processes and servers that tests, benchmarks and the
 * Jepsen harness start: each port is bound with port 0 (the kernel picks one), read, and released,
 * so the caller can bind it right after. The one home of this helper for `tests/` and `scripts/`.
 *
 * @example
 * ```ts
 * const [http_port, proxy_port] = freePorts(2);
 * const url = `http://127.0.0.1:${freePort()}`; // nothing listens there: a refused connection
 * ```
 *
 * @module
 */

/**
 * `n` distinct free loopback ports. They are all bound before any is released, so one call never
 * returns the same port twice.
 */
export function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/**
 * One free loopback port. Until something binds it, nothing listens there, so it also serves as a
 * port whose connections are refused.
 */
export function freePort(): number {
  return freePorts(1)[0];
}
