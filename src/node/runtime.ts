/**
 * Runtime edges in one place: serving HTTP and listening for signals. Everything else uses Web
 * standards, so moving to another runtime means changing this file.
 */

/** A listening HTTP server. */
export interface HttpServer {
  port: number;
  shutdown(): Promise<void>;
}

/** Serves `handler` on `hostname:port` (port 0 picks a free one). */
export function serveHttp(
  handler: (request: Request) => Response | Promise<Response>,
  options: { hostname: string; port: number },
): HttpServer {
  const server = Deno.serve({ ...options, onListen: () => {} }, handler);
  return { port: server.addr.port, shutdown: () => server.shutdown() };
}

/** Calls `handler` once on SIGTERM or SIGINT. */
export function onShutdownSignal(handler: (signal: string) => void): void {
  let called = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      if (called) return;
      called = true;
      handler(signal);
    });
  }
}
