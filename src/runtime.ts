/**
 * The runtime edges that the layers below `node/` need: arguments, environment, exit, files,
 * standard input, memory, DNS lookups at a given name server and a connection pinned to one
 * address. The same sources run on Deno and on Bun; this module (with `node/runtime.ts` for serving
 * HTTP and signals, and `agent/runtime.ts` for the agent) is the only place that knows which one it
 * is on. It sits in layer 0 so that `db/`, `cluster/`, `scheduler/` and `cli/` may import it.
 *
 * Files, environment, memory and exit go through `node:` built-ins, which both runtimes implement
 * alike; DNS and pinned connections differ and are chosen here.
 *
 * @module
 */
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { statSync } from "node:fs";
import { totalmem } from "node:os";
import { Resolver } from "node:dns/promises";
import process from "node:process";

/** What this module reads of Bun's global (typed here: Deno's checker has no Bun types). */
interface BunGlobal {
  version: string;
  stdin: { text(): Promise<string> };
}

/** Bun's global object when running on Bun, otherwise undefined. */
export const bunGlobal: BunGlobal | undefined = (globalThis as { Bun?: BunGlobal }).Bun;

/** Which runtime runs the process and its version, for the start log. */
export function runtimeVersion(): string {
  return bunGlobal === undefined ? `deno ${Deno.version.deno}` : `bun ${bunGlobal.version}`;
}

/** The program's arguments, without the runtime and the script. */
export function programArgs(): string[] {
  return bunGlobal === undefined ? Deno.args : process.argv.slice(2);
}

/** Ends the process now with `code`. */
export function exitProcess(code: number): never {
  return process.exit(code);
}

/** A copy of the environment (variables that are set only). */
export function envObject(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** One environment variable, undefined when unset. */
export function envGet(name: string): string | undefined {
  return process.env[name];
}

/** Physical memory of the host, in bytes. */
export function systemMemoryTotalBytes(): number {
  return totalmem();
}

/** The process's resident set size, in bytes. */
export function residentSetBytes(): number {
  return process.memoryUsage().rss;
}

/** All of standard input as text (until it closes). */
export async function readStdinText(): Promise<string> {
  if (bunGlobal !== undefined) return await bunGlobal.stdin.text();
  return await new Response(Deno.stdin.readable).text();
}

/** Creates `path` and its parents; nothing when it exists. */
export async function makeDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}

/** The bytes of the file at `path`. */
export async function readBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

/** The text (UTF-8) of the file at `path`. */
export async function readText(path: string): Promise<string> {
  return await readFile(path, "utf8");
}

/** Writes `bytes` to `path` and fsyncs the file before returning. */
export async function writeBytesSynced(path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(path, bytes);
  const file = await open(path, "r+");
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Removes the file at `path`; nothing when it is missing. */
export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Renames `from` to `to`, replacing `to`. */
export async function renameFile(from: string, to: string): Promise<void> {
  await rename(from, to);
}

/** Whether something exists at `path`; other errors (permissions) are thrown. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return false;
    throw error;
  }
}

/** Whether something exists at `path`, synchronously; any error reads as no. */
export function pathExistsSync(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A DNS record type {@link resolveDns} asks for. */
export type DnsRecordType = "A" | "AAAA" | "TXT" | "SRV";

/** An SRV answer. */
export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** The answers of each record type. */
export interface DnsRecords {
  A: string[];
  AAAA: string[];
  /** Each record as its character strings. */
  TXT: string[][];
  SRV: SrvRecord[];
}

/** Where and how long {@link resolveDns} asks. */
export interface DnsOptions {
  /** A name server to ask instead of the system's. */
  nameServer?: { ipAddr: string; port?: number };
  signal: AbortSignal;
}

/**
 * The answers for `query` of `type`. A name without such records, NXDOMAIN and SERVFAIL resolve to
 * an empty list on both runtimes (Deno reports all three as NotFound, Node-style resolvers as
 * ENODATA, ENOTFOUND and ESERVFAIL); a timeout or an unreachable server rejects.
 */
export async function resolveDns<T extends DnsRecordType>(
  query: string,
  type: T,
  options: DnsOptions,
): Promise<DnsRecords[T]> {
  if (bunGlobal === undefined) {
    try {
      return await Deno.resolveDns(query, type, options) as DnsRecords[T];
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [] as DnsRecords[T];
      throw error;
    }
  }
  const resolver = new Resolver({ timeout: -1, tries: 1 });
  if (options.nameServer !== undefined) {
    const { ipAddr, port } = options.nameServer;
    const host = ipAddr.includes(":") ? `[${ipAddr}]` : ipAddr;
    resolver.setServers([port === undefined ? ipAddr : `${host}:${port}`]);
  }
  const lookup = type === "SRV"
    ? resolver.resolveSrv(query).then((answers) =>
      answers.map((a) => ({ priority: a.priority, weight: a.weight, port: a.port, target: a.name }))
    )
    : type === "TXT"
    ? resolver.resolveTxt(query)
    : type === "A"
    ? resolver.resolve4(query)
    : resolver.resolve6(query);
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => {
      resolver.cancel();
      reject(options.signal.reason);
    };
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([lookup, aborted]) as DnsRecords[T];
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ENODATA" || code === "ENOTFOUND" || code === "ESERVFAIL") {
      return [] as DnsRecords[T];
    }
    throw error;
  }
}

/**
 * How an http request reaches one checked address only (no second lookup, so no DNS rebinding):
 * the URL to fetch, what to add to fetch's options, and what to call once the response is read.
 */
export interface PinnedRequest {
  url: string;
  /** Headers to set on the request (the original Host on Bun, where the URL names the address). */
  headers: Record<string, string>;
  /** Extra fetch options (Deno's `client`). */
  init: Record<string, unknown>;
  close(): void;
}

/**
 * Pins an http request for `url` to `address` (an IP address, brackets added for IPv6). On Deno a
 * `tcp` proxy transport connects to the address and the request keeps its URL; on Bun, which has
 * no such transport, the URL names the address and the Host header keeps the name.
 */
export function pinRequest(url: URL, address: string): PinnedRequest {
  const port = url.port === "" ? 80 : Number(url.port);
  const hostname = address.includes(":") ? `[${address}]` : address;
  if (bunGlobal === undefined) {
    const client = Deno.createHttpClient({ proxy: { transport: "tcp", hostname, port } });
    return { url: url.href, headers: {}, init: { client }, close: () => client.close() };
  }
  const pinned = new URL(url.href);
  pinned.hostname = hostname;
  return { url: pinned.href, headers: { host: url.host }, init: {}, close: () => {} };
}
