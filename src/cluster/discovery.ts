/**
 * Peer discovery: how a node learns the names and addresses of the other members of its cluster.
 *
 * Three strategies sit behind one {@link Discovery} interface:
 *
 * - `static`: a fixed list (`CLUSTER_NODES` / `--peers`), parsed by {@link parsePeers}.
 * - `fly`: Fly.io internal DNS: TXT `vms.<app>.internal` lists the started Machines with their
 *   regions, AAAA `<machine id>.vm.<app>.internal` gives each one's 6PN address.
 * - `dns`: a Kubernetes headless Service: A/AAAA records of the Service (peers named by IP) or SRV
 *   records `_<port>._tcp.<service>` (peers named by pod hostname; the recommended path with a
 *   StatefulSet, since the names survive restarts).
 *
 * Discovery only reports who is there. Deciding membership (bootstrap, join, removal) is the
 * caller's job; `docs/discovery.md` describes what each strategy relies on and how it fails.
 *
 * @module
 */
import { resolveDns } from "../runtime.ts";

/** One cluster member as discovery reports it. */
export interface PeerSpec {
  /** Stable node name; the Raft id is {@link nodeNumericId} of it. */
  name: string;
  /** Base URL of the node's HTTP server, without a path, e.g. `http://[fdaa::3]:8080`. */
  address: string;
  /** Where the node runs, when the platform says (Fly.io region code, e.g. `ams`). */
  region?: string;
}

/** A way to find the cluster's members. */
export interface Discovery {
  /** Which strategy this is. */
  readonly strategy: "static" | "fly" | "dns";
  /** This node's own name and advertised address. */
  readonly self: PeerSpec;
  /**
   * All members currently visible, self included (even when the platform does not list it yet),
   * sorted by name. Rejects when a lookup fails (timeout, unreachable resolver) or an answer is
   * malformed; a name without records is not a failure, it only contributes no peers.
   */
  discover(): Promise<PeerSpec[]>;
}

/** One SRV record: the pod (or host) `target` serves on `port`. */
export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** What a lookup of each record type yields; a TXT record is a list of character strings. */
export interface DnsAnswers {
  A: string[];
  AAAA: string[];
  TXT: string[][];
  SRV: SrvAnswer[];
}

/**
 * A DNS lookup. Resolves to an empty list when the name has no records of that type (NXDOMAIN
 * or an empty answer); rejects on timeouts and transport errors. Tests pass one that queries a
 * local server.
 */
export type Resolver = <T extends keyof DnsAnswers>(
  query: string,
  type: T,
) => Promise<DnsAnswers[T]>;

/** A discovery setting or answer that cannot work; retrying will not help. */
export class DiscoveryError extends Error {}

/** Node names: the same rule as `NODE_ID` in the configuration. */
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const NAME_RULE = "use 1-64 letters, digits, . _ or -";
const DEFAULT_DNS_TIMEOUT_MS = 5_000;

/**
 * A {@link Resolver} over the runtime's DNS (`resolveDns` in src/runtime.ts: the system resolver
 * unless `nameServer` is given), each lookup bounded by `timeout_ms` (default 5 s; Deno's own is
 * 15 s).
 *
 * NXDOMAIN, an empty answer and SERVFAIL all become an empty list, so a failing server looks like a
 * name without records (Deno reports the three alike).
 */
export function denoResolver(
  options: { nameServer?: { ipAddr: string; port?: number }; timeout_ms?: number } = {},
): Resolver {
  const timeout_ms = options.timeout_ms ?? DEFAULT_DNS_TIMEOUT_MS;
  return async <T extends keyof DnsAnswers>(query: string, type: T): Promise<DnsAnswers[T]> => {
    try {
      const answers = await resolveDns(query, type, {
        nameServer: options.nameServer,
        signal: AbortSignal.timeout(timeout_ms),
      });
      return answers as DnsAnswers[T];
    } catch (error) {
      throw new Error(`DNS ${type} lookup of ${query} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
}

/**
 * The Raft id of a node name: 32-bit FNV-1a over the name's UTF-8 bytes, folded into
 * 1..2^31-1 (`hash % (2^31 - 1) + 1`), so it is positive, fits a 31-bit integer and is never 0
 * (the Raft core's "no node"). Stable across versions and platforms: never change it, ids are
 * stored in the log.
 *
 * Two names can share an id (for five nodes the odds are about 1 in 200 million). Every
 * discovery result and {@link parsePeers} reject such a pair; the membership layer must also
 * refuse a join whose id equals that of a current member with a different name, since the two
 * would be indistinguishable to Raft. The fix is to rename one node.
 */
export function nodeNumericId(name: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return ((hash >>> 0) % 0x7fffffff) + 1;
}

/**
 * Parses a static peer list: comma-separated `name=url` entries, e.g.
 * `node-1=http://127.0.0.1:8080,node-2=http://127.0.0.1:8081`. Whitespace around entries is
 * ignored and an empty string is an empty list. Addresses are normalized to their origin
 * (`http://host:port`). Throws {@link DiscoveryError} on a missing name, a bad name or URL, an
 * empty entry, or a name, address or Raft id used twice.
 */
export function parsePeers(spec: string): PeerSpec[] {
  if (spec.trim() === "") return [];
  const peers: PeerSpec[] = [];
  spec.split(",").forEach((raw, i) => {
    const entry = raw.trim();
    if (entry === "") {
      throw new DiscoveryError(`peer entry ${i + 1} is empty: remove the stray comma`);
    }
    const eq = entry.indexOf("=");
    const name = eq < 0 ? "" : entry.slice(0, eq).trim();
    if (name === "") {
      const example = eq < 0 ? entry : entry.slice(eq + 1).trim();
      throw new DiscoveryError(
        `peer entry "${entry}" has no name: write name=url, e.g. node-${i + 1}=${example}`,
      );
    }
    checkName(name, "peer name");
    peers.push({ name, address: normalizeAddress(entry.slice(eq + 1).trim(), `peer ${name}`) });
  });
  for (const key of ["name", "address"] as const) {
    const seen = new Set<string>();
    for (const p of peers) {
      if (seen.has(p[key])) {
        throw new DiscoveryError(`peer ${key} ${p[key]} is listed twice: each node once`);
      }
      seen.add(p[key]);
    }
  }
  checkDistinctIds(peers);
  return peers;
}

/**
 * A fixed member list. `self` is added when `peers` does not list it; when it does, the listed
 * address must be the one `self` advertises. Throws {@link DiscoveryError} on a conflict.
 */
export function staticDiscovery(self: PeerSpec, peers: PeerSpec[]): Discovery {
  checkName(self.name, "node name");
  const me = { ...self, address: normalizeAddress(self.address, `node ${self.name}`) };
  const listed = peers.find((p) => p.name === me.name);
  if (listed !== undefined && listed.address !== me.address) {
    throw new DiscoveryError(
      `node ${me.name} is listed at ${listed.address} but advertises ${me.address}: make them agree`,
    );
  }
  const other = peers.find((p) => p.address === me.address && p.name !== me.name);
  if (other !== undefined) {
    throw new DiscoveryError(
      `node ${me.name} advertises ${me.address}, which the peer list gives to ${other.name}`,
    );
  }
  const members = withSelf(peers, me);
  return { strategy: "static", self: me, discover: () => Promise.resolve(members.slice()) };
}

/** The Fly.io runtime variables discovery reads (set by Fly on every Machine). */
export interface FlyEnv {
  FLY_APP_NAME: string;
  FLY_MACHINE_ID: string;
  FLY_REGION?: string;
  FLY_PRIVATE_IP?: string;
}

/**
 * Discovery over Fly.io internal DNS (`fdaa::3` on every Machine). This node is
 * `{ name: FLY_MACHINE_ID, address: http://[FLY_PRIVATE_IP]:port, region: FLY_REGION }`
 * (without FLY_PRIVATE_IP the address is `http://<machine id>.vm.<app>.internal:port`).
 *
 * Each `discover()` reads TXT `vms.<app>.internal`, which lists the app's started Machines as
 * comma-separated `<machine id> <region>` entries (possibly split over several character
 * strings), then AAAA `<machine id>.vm.<app>.internal` for each listed Machine. A Machine
 * whose AAAA name gives no address is left out of that round (it is stopping or not yet in
 * DNS). `<app>.internal` AAAA is not used: it gives addresses without saying whose they are.
 * Throws {@link DiscoveryError} at once on a missing variable; `discover()` rejects on a TXT
 * entry that is not a Machine id.
 */
export function flyDiscovery(
  env: FlyEnv,
  opts: { port: number; resolve?: Resolver },
): Discovery {
  const app = env.FLY_APP_NAME.trim();
  if (app === "") throw new DiscoveryError("fly discovery needs FLY_APP_NAME (set by Fly.io)");
  const machine = env.FLY_MACHINE_ID.trim();
  if (machine === "") {
    throw new DiscoveryError("fly discovery needs FLY_MACHINE_ID (set by Fly.io)");
  }
  checkName(machine, "FLY_MACHINE_ID");
  checkPort(opts.port);
  const resolve = opts.resolve ?? denoResolver();
  const privateIp = env.FLY_PRIVATE_IP?.trim() ?? "";
  const self: PeerSpec = {
    name: machine,
    address: privateIp === ""
      ? `http://${machine}.vm.${app}.internal:${opts.port}`
      : normalizeAddress(hostUrl(privateIp, opts.port), "FLY_PRIVATE_IP"),
  };
  if (env.FLY_REGION) self.region = env.FLY_REGION;

  return {
    strategy: "fly",
    self,
    async discover() {
      const vmsName = `vms.${app}.internal`;
      const machines = parseFlyVms(await resolve(vmsName, "TXT"), vmsName);
      const found = await Promise.all(
        machines.filter((m) => m.id !== self.name).map(async (m) => {
          const ips = (await resolve(`${m.id}.vm.${app}.internal`, "AAAA")).slice().sort();
          if (ips.length === 0) return null;
          const peer: PeerSpec = { name: m.id, address: hostUrl(ips[0], opts.port) };
          if (m.region !== undefined) peer.region = m.region;
          return peer;
        }),
      );
      return withSelf(found.filter((p): p is PeerSpec => p !== null), self);
    },
  };
}

/** Options of {@link dnsDiscovery}. */
export interface DnsDiscoveryOptions {
  /** FQDN of the headless Service, e.g. `tickraft.default.svc.cluster.local`. */
  service: string;
  /** This node's name: its pod hostname with SRV, its IP without. */
  self_name: string;
  /** This node's base URL; without SRV its host must be the pod IP. */
  self_address: string;
  /** HTTP port of peers found by A/AAAA records (SRV records carry their own). */
  port: number;
  resolve?: Resolver;
  /** Query SRV `_<port_name>._tcp.<service>` instead of A/AAAA `<service>`. */
  srv?: boolean;
  /** Name of the Service port for SRV (default `http`). */
  port_name?: string;
}

/**
 * Discovery over a Kubernetes headless Service (any DNS that serves the same records).
 *
 * With `srv`, each SRV record `_<port_name>._tcp.<service>` is one pod: the peer's name is the
 * first label of the target (`tickraft-0` for `tickraft-0.tickraft.ns.svc.cluster.local`) and
 * its address `http://<target>:<record port>`. A StatefulSet gives pods stable hostnames, so a
 * restarted pod keeps its name, Raft id and address. This is the recommended setup.
 *
 * Without `srv`, the Service's A records (AAAA when this node's address is IPv6) are the pods'
 * IPs, and each peer is named by its IP (`:` written as `-`). Names then change whenever a pod
 * gets a new IP, so a restarted pod is a new member to Raft and the old one must be removed;
 * suitable for throwaway clusters only. `self_name` must be the IP of `self_address`.
 *
 * Only ready pods are published unless the Service sets `publishNotReadyAddresses: true`; a
 * Service without ready pods answers NXDOMAIN, which counts as no peers. Throws
 * {@link DiscoveryError} at once on settings that cannot work.
 */
export function dnsDiscovery(opts: DnsDiscoveryOptions): Discovery {
  const service = opts.service.trim().replace(/\.$/, "");
  if (service === "") throw new DiscoveryError("dns discovery needs the headless Service name");
  checkPort(opts.port);
  const resolve = opts.resolve ?? denoResolver();
  const address = normalizeAddress(opts.self_address, "this node's advertised address");

  if (opts.srv === true) {
    checkName(opts.self_name, "node name");
    const self: PeerSpec = { name: opts.self_name, address };
    const query = `_${opts.port_name ?? "http"}._tcp.${service}`;
    return {
      strategy: "dns",
      self,
      async discover() {
        const records = (await resolve(query, "SRV"))
          .map((r) => ({ ...r, target: r.target.replace(/\.$/, "").toLowerCase() }))
          .sort((a, b) => compare(a.target, b.target));
        const byName = new Map<string, PeerSpec>();
        for (const r of records) {
          const name = r.target.split(".")[0];
          if (!NAME_PATTERN.test(name)) {
            throw new DiscoveryError(`SRV ${query} has target ${r.target}: not a usable node name`);
          }
          if (!byName.has(name)) byName.set(name, { name, address: hostUrl(r.target, r.port) });
        }
        return withSelf([...byName.values()], self);
      },
    };
  }

  const host = new URL(address).hostname.replace(/^\[|\]$/g, "");
  const type = host.includes(":") ? "AAAA" : "A";
  if (type === "A" && !/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
    throw new DiscoveryError(
      `this node advertises ${address}, but without SRV peers are found by IP: advertise the pod IP ` +
        `(http://<pod IP>:${opts.port}) or use SRV records`,
    );
  }
  const selfName = ipName(host);
  if (opts.self_name !== selfName && opts.self_name !== host) {
    throw new DiscoveryError(
      `without SRV peers are named by IP, so this node's name must be ${selfName} ` +
        `(the IP it advertises), not ${opts.self_name}; or use SRV records`,
    );
  }
  const self: PeerSpec = { name: selfName, address };
  return {
    strategy: "dns",
    self,
    async discover() {
      const ips = [...new Set(await resolve(service, type))];
      return withSelf(
        ips.map((ip) => ({ name: ipName(ip), address: hostUrl(ip, opts.port) })),
        self,
      );
    },
  };
}

/** The discovery settings of the node configuration. */
export interface DiscoveryConfig {
  strategy: "static" | "fly" | "dns" | "auto";
  /** Static peer list, {@link parsePeers} syntax (`CLUSTER_NODES`). */
  peers: string;
  node_id: string;
  /** This node's base URL for peers; empty: derived where the strategy can. */
  advertise_url: string;
  /** Headless Service FQDN, or `_<port>._tcp.<service>` for SRV (`DNS_SERVICE`). */
  dns_service: string;
  /** This node's HTTP port. */
  port: number;
}

/**
 * Builds the {@link Discovery} the configuration asks for. `auto` picks `static` when
 * CLUSTER_NODES is set, `fly` when FLY_APP_NAME is set (running on Fly.io), and `static`
 * (a cluster of one unless peers are listed) otherwise.
 *
 * - static: this node is its CLUSTER_NODES entry; ADVERTISE_URL is needed only when NODE_ID is
 *   not listed (a single node defaults to `http://127.0.0.1:<port>`).
 * - fly: name and address come from FLY_MACHINE_ID and FLY_PRIVATE_IP; CLUSTER_NODES and
 *   ADVERTISE_URL must be empty, NODE_ID is not used.
 * - dns: DNS_SERVICE `_<port>._tcp.<service>` selects SRV (ADVERTISE_URL defaults to
 *   `http://<NODE_ID>.<service>:<port>`); a bare `<service>` selects A/AAAA (ADVERTISE_URL with
 *   the pod IP required, NODE_ID must be that IP).
 *
 * Throws {@link DiscoveryError} naming the setting to fix.
 */
export function discoveryFromConfig(
  cfg: DiscoveryConfig,
  env: Record<string, string | undefined>,
  resolve?: Resolver,
): Discovery {
  const onFly = (env.FLY_APP_NAME ?? "").trim() !== "";
  const strategy = cfg.strategy !== "auto"
    ? cfg.strategy
    : cfg.peers.trim() !== ""
    ? "static"
    : onFly
    ? "fly"
    : "static";
  if (strategy !== "static" && cfg.peers.trim() !== "") {
    throw new DiscoveryError(
      `CLUSTER_NODES is only read by static discovery; unset it or set DISCOVERY_STRATEGY=static`,
    );
  }

  if (strategy === "static") {
    const peers = parsePeers(cfg.peers);
    const listed = peers.find((p) => p.name === cfg.node_id);
    let address = cfg.advertise_url.trim();
    if (address === "") {
      if (listed !== undefined) address = listed.address;
      else if (peers.length === 0) address = `http://127.0.0.1:${cfg.port}`;
      else {
        throw new DiscoveryError(
          `NODE_ID ${cfg.node_id} is not in CLUSTER_NODES (${
            peers.map((p) => p.name).join(", ")
          }): ` +
            `add it, or set ADVERTISE_URL so peers can reach this node`,
        );
      }
    }
    return staticDiscovery({ name: cfg.node_id, address }, peers);
  }

  if (strategy === "fly") {
    if (!onFly) {
      throw new DiscoveryError("DISCOVERY_STRATEGY=fly needs FLY_APP_NAME: run on Fly.io");
    }
    if (cfg.advertise_url.trim() !== "") {
      throw new DiscoveryError(
        "ADVERTISE_URL is derived from FLY_PRIVATE_IP under fly discovery: unset it",
      );
    }
    return flyDiscovery({
      FLY_APP_NAME: env.FLY_APP_NAME ?? "",
      FLY_MACHINE_ID: env.FLY_MACHINE_ID ?? "",
      FLY_REGION: env.FLY_REGION,
      FLY_PRIVATE_IP: env.FLY_PRIVATE_IP,
    }, { port: cfg.port, resolve });
  }

  const name = cfg.dns_service.trim().replace(/\.$/, "");
  if (name === "") {
    throw new DiscoveryError(
      "DISCOVERY_STRATEGY=dns needs DNS_SERVICE: the headless Service FQDN, or " +
        "_<port name>._tcp.<service> for SRV records",
    );
  }
  const srv = /^_([A-Za-z0-9-]+)\._tcp\.(.+)$/.exec(name);
  if (srv === null && name.startsWith("_")) {
    throw new DiscoveryError(
      `DNS_SERVICE ${name}: an SRV name has the form _<port name>._tcp.<service>`,
    );
  }
  const service = srv === null ? name : srv[2];
  let address = cfg.advertise_url.trim();
  if (address === "") {
    if (srv === null) {
      throw new DiscoveryError(
        `DISCOVERY_STRATEGY=dns with A records needs ADVERTISE_URL=http://<pod IP>:${cfg.port} ` +
          `(from the downward API, status.podIP), or an SRV DNS_SERVICE`,
      );
    }
    address = `http://${cfg.node_id}.${service}:${cfg.port}`;
  }
  return dnsDiscovery({
    service,
    self_name: cfg.node_id,
    self_address: address,
    port: cfg.port,
    resolve,
    srv: srv !== null,
    port_name: srv?.[1],
  });
}

/**
 * Calls `d.discover()` until it reports at least `min_peers` members (self included), up to
 * `attempts` times with `delay_ms` between tries: at boot, DNS may not list every node yet.
 * Lookup failures are retried too; a {@link DiscoveryError} (bad settings or answers) is thrown
 * at once. After the last attempt it throws a {@link DiscoveryError} saying what it saw, rather
 * than returning too few members: bootstrapping Raft from a partial list could form two
 * clusters.
 */
export async function discoverWithRetry(
  d: Discovery,
  opts: {
    attempts: number;
    delay_ms: number;
    min_peers: number;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<PeerSpec[]> {
  if (!Number.isInteger(opts.attempts) || opts.attempts < 1) {
    throw new DiscoveryError(`attempts must be a positive integer, not ${opts.attempts}`);
  }
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let last: PeerSpec[] = [];
  let lastError: Error | null = null;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    if (attempt > 1) await sleep(opts.delay_ms);
    try {
      last = await d.discover();
      lastError = null;
      if (last.length >= opts.min_peers) return last;
    } catch (error) {
      if (error instanceof DiscoveryError) throw error;
      lastError = error as Error;
    }
  }
  const saw = lastError !== null
    ? `the last attempt failed: ${lastError.message}`
    : `found ${last.length} (${last.map((p) => p.name).join(", ")})`;
  throw new DiscoveryError(
    `${d.strategy} discovery needs ${opts.min_peers} nodes; after ${opts.attempts} attempts ${saw}`,
    { cause: lastError ?? undefined },
  );
}

/** `peers` without any entry named like `self`, plus `self`, sorted by name, ids checked. */
function withSelf(peers: PeerSpec[], self: PeerSpec): PeerSpec[] {
  const members = [...peers.filter((p) => p.name !== self.name), self]
    .sort((a, b) => compare(a.name, b.name));
  checkDistinctIds(members);
  return members;
}

function checkDistinctIds(peers: PeerSpec[]): void {
  const byId = new Map<number, string>();
  for (const p of peers) {
    const id = nodeNumericId(p.name);
    const other = byId.get(id);
    if (other !== undefined && other !== p.name) {
      throw new DiscoveryError(
        `nodes ${other} and ${p.name} have the same Raft id ${id}: rename one of them`,
      );
    }
    byId.set(id, p.name);
  }
}

function checkName(name: string, what: string): void {
  if (!NAME_PATTERN.test(name)) throw new DiscoveryError(`${what} "${name}": ${NAME_RULE}`);
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new DiscoveryError(`port ${port}: peers need a real port (1-65535)`);
  }
}

/** `url` reduced to its origin; throws unless it is a plain http(s) base URL. */
function normalizeAddress(url: string, what: string): string {
  if (!url.includes("://")) {
    throw new DiscoveryError(`${what}: "${url}" has no scheme; write http://${url}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DiscoveryError(`${what}: "${url}" is not a URL; write it as http://host:port`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new DiscoveryError(`${what}: "${url}" must start with http:// or https://`);
  }
  if (
    parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "" ||
    parsed.username !== "" || parsed.password !== ""
  ) {
    throw new DiscoveryError(`${what}: "${url}" must be only scheme, host and port`);
  }
  return parsed.origin;
}

/** `http://host:port`, with IPv6 literals in brackets. */
function hostUrl(host: string, port: number): string {
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/** A node name for an IP: IPv4 as is, IPv6 with `:` written as `-`. */
function ipName(ip: string): string {
  return ip.replaceAll(":", "-");
}

/** Machines in a `vms.<app>.internal` TXT answer: `<id> <region>` entries, comma-separated. */
function parseFlyVms(records: string[][], query: string): { id: string; region?: string }[] {
  const machines = new Map<string, string | undefined>();
  for (const record of records) {
    for (const entry of record.join("").split(",")) {
      const fields = entry.trim().split(/\s+/).filter((f) => f !== "");
      if (fields.length === 0) continue;
      if (fields.length > 2 || !NAME_PATTERN.test(fields[0])) {
        throw new DiscoveryError(`TXT ${query} has "${entry.trim()}", not "<machine id> <region>"`);
      }
      machines.set(fields[0], fields[1]);
    }
  }
  return [...machines].map(([id, region]) => (region === undefined ? { id } : { id, region }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
