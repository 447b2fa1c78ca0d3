/**
 * The node's runtime edges: serving HTTP and listening for signals, on Deno (`Deno.serve`,
 * `Deno.addSignalListener`) or on Bun (`Bun.serve`, `process.on`). With `src/runtime.ts` (files,
 * environment, DNS, pinned connections) and `src/agent/runtime.ts`, the only code that knows which
 * runtime it is on; everything else uses Web standards.
 */
import process from "node:process";
import { bunGlobal } from "../runtime.ts";

/** A listening HTTP server. */
export interface HttpServer {
  port: number;
  shutdown(): Promise<void>;
}

/** What this module uses of `Bun.serve` (typed here: Deno's checker has no Bun types). */
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    /** Seconds a connection may be idle; 0 turns Bun's 10 s limit off, as Deno has none. */
    idleTimeout: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> };
}

/** Serves `handler` on `hostname:port` (port 0 picks a free one). */
export function serveHttp(
  handler: (request: Request) => Response | Promise<Response>,
  options: { hostname: string; port: number },
): HttpServer {
  if (bunGlobal !== undefined) {
    const server = (bunGlobal as unknown as BunServe).serve({
      ...options,
      idleTimeout: 0,
      fetch: (request) => handler(request),
    });
    return { port: server.port, shutdown: () => server.stop() };
  }
  const server = Deno.serve({ ...options, onListen: () => {} }, handler);
  return { port: server.addr.port, shutdown: () => server.shutdown() };
}

/** Calls `handler` once on SIGTERM or SIGINT. */
export function onShutdownSignal(handler: (signal: string) => void): void {
  let called = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const listener = () => {
      if (called) return;
      called = true;
      handler(signal);
    };
    if (bunGlobal !== undefined) process.on(signal, listener);
    else Deno.addSignalListener(signal, listener);
  }
}
