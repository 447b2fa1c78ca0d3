/**
 * The fault-injecting proxy in front of each node: every node reaches node j only through j's
 * proxy port (its address in CLUSTER_NODES), and the proxy drops the traffic of blocked
 * (from, to) pairs, which makes partitions of any shape, one-way ones included.
 *
 * Why one proxy per destination and not one per pair of nodes: the cluster replicates its
 * address book through the log (a new leader publishes every member's address), so every node
 * ends up using the same address for node j whatever its own CLUSTER_NODES said. The proxy
 * therefore tells the sender from the request itself: a Raft request carries its messages'
 * `from` (decoded with the node's own codec), a write forwarded by a follower carries
 * `X-Tickraft-Forwarded-By`, a join names its `node_id`, and a worker agent's request names its
 * worker (one of the run's worker ids): in the path (`/workers/{id}/...`) or the body
 * (`POST /workers` its `id`, an allocation's start or finish its `worker_id`). Anything else (the
 * harness's own requests) passes.
 *
 * A dropped request is black-holed: held without an answer until the partition heals or 10 s pass (the
 * sender has given up by then: its timeout), and then closed with a 503 that nobody reads.
 * The answers the proxy makes up (that 503, and a 502 when the node is down) carry
 * `X-Jepsen-Proxy`, so that when a node relays one (a follower forwarding to the leader) the
 * hostile checker does not take it for the node's own answer.
 *
 * @module
 */
import { decodeMessages } from "../../src/cluster/codec.ts";
import { nodeNumericId } from "../../src/cluster/discovery.ts";

/** Marks an answer the proxy made up rather than relayed. */
export const PROXY_HEADER = "x-jepsen-proxy";

/** Longest a black-holed request is held. */
const HOLD_MS = 10_000;
/** Longest a forwarded request may take (its sender gives up sooner). */
const FORWARD_TIMEOUT_MS = 35_000;

/** The proxies of a run and the set of blocked directed pairs. */
export class Proxies {
  readonly #blocked = new Set<string>();
  readonly #servers: Deno.HttpServer[] = [];
  readonly #byNumericId: Map<number, string>;
  #heal = Promise.withResolvers<void>();
  /** Requests dropped so far, by "from->to". */
  readonly dropped = new Map<string, number>();

  readonly #workers: ReadonlySet<string>;

  /** `names`: the nodes; `workers`: the worker agents' ids, told apart from their requests. */
  constructor(names: string[], workers: readonly string[] = []) {
    this.#byNumericId = new Map(names.map((n) => [nodeNumericId(n), n]));
    this.#workers = new Set(workers);
  }

  /** Starts the proxy of `name` on `port`, forwarding to `target_port`. */
  listen(name: string, port: number, target_port: number): void {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: () => {},
    }, (request) => this.#handle(name, target_port, request));
    this.#servers.push(server);
  }

  /** Blocks traffic from `from` to `to` (one direction). */
  block(from: string, to: string): void {
    this.#blocked.add(`${from}->${to}`);
  }

  /** Lifts every block and releases the held requests. */
  healAll(): void {
    this.#blocked.clear();
    this.#heal.resolve();
    this.#heal = Promise.withResolvers<void>();
  }

  /** The blocked pairs now, as "from->to". */
  blocked(): string[] {
    return [...this.#blocked].sort();
  }

  async close(): Promise<void> {
    this.healAll();
    await Promise.all(this.#servers.map((s) => s.shutdown()));
  }

  async #handle(to: string, target_port: number, request: Request): Promise<Response> {
    const url = new URL(request.url);
    let body: Uint8Array<ArrayBuffer> | undefined;
    try {
      body = request.method === "GET" || request.method === "HEAD"
        ? undefined
        : new Uint8Array(await request.arrayBuffer());
    } catch {
      // The sender died mid-request.
      return new Response(null, { status: 400 });
    }
    const from = this.#sender(url.pathname, request.headers, body);
    if (from !== null && this.#blocked.has(`${from}->${to}`)) {
      const pair = `${from}->${to}`;
      this.dropped.set(pair, (this.dropped.get(pair) ?? 0) + 1);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#heal.promise,
        new Promise((resolve) => timer = setTimeout(resolve, HOLD_MS)),
      ]);
      clearTimeout(timer);
      return new Response(null, { status: 503, headers: { [PROXY_HEADER]: "black-holed" } });
    }
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("content-length");
    try {
      const response = await fetch(`http://127.0.0.1:${target_port}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body,
        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
        redirect: "manual",
      });
      return new Response(response.body, response);
    } catch {
      // The node is down or paused and the sender gave up: a refused or broken connection.
      return new Response(null, { status: 502, headers: { [PROXY_HEADER]: "node down" } });
    }
  }

  #sender(path: string, headers: Headers, body: Uint8Array | undefined): string | null {
    const forwarded = headers.get("x-tickraft-forwarded-by");
    if (forwarded !== null) return forwarded;
    const worker = this.#worker(path, body);
    if (worker !== null) return worker;
    if (body === undefined) return null;
    if (path.startsWith("/raft/")) {
      try {
        const [first] = decodeMessages(body);
        return first === undefined ? null : this.#byNumericId.get(first.from) ?? null;
      } catch {
        return null;
      }
    }
    if (path === "/join") {
      try {
        return String(JSON.parse(new TextDecoder().decode(body)).node_id);
      } catch {
        return null;
      }
    }
    return null;
  }

  /** The run's worker a worker agent's request comes from, or null. */
  #worker(path: string, body: Uint8Array | undefined): string | null {
    if (this.#workers.size === 0) return null;
    const inPath = /^\/workers\/([^/]+)/.exec(path)?.[1];
    if (inPath !== undefined) return this.#workers.has(inPath) ? inPath : null;
    const named = path === "/workers" ||
      (path.startsWith("/allocations/") && /\/(start|finish)$/.test(path));
    if (!named || body === undefined) return null;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
      const id = String(path === "/workers" ? parsed.id : parsed.worker_id);
      return this.#workers.has(id) ? id : null;
    } catch {
      return null;
    }
  }
}
