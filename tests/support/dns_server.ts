/**
 * A tiny authoritative DNS responder over UDP on 127.0.0.1 for discovery tests. It answers A,
 * AAAA, TXT and SRV questions from a table the test may change at any time; a name missing from
 * the table gets NXDOMAIN, a name present without records of the asked type gets an empty
 * NOERROR answer, and a name in `servfail` gets SERVFAIL. Built on `node:dgram` because
 * `Deno.listenDatagram` still needs `--unstable-net`.
 *
 * @example
 * ```ts
 * const dns = await startDnsServer({ "svc.test": { A: ["10.0.0.1"] } });
 * try {
 *   await Deno.resolveDns("svc.test", "A", { nameServer: { ipAddr: "127.0.0.1", port: dns.port } });
 * } finally {
 *   await dns.close();
 * }
 * ```
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { Buffer } from "node:buffer";

/** One SRV record as served. */
export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** The records of one name; TXT records are lists of character strings (each at most 255 bytes). */
export interface NameRecords {
  A?: string[];
  AAAA?: string[];
  TXT?: string[][];
  SRV?: SrvAnswer[];
}

/** A running server; `records` and `servfail` are read on every query, so tests may mutate them. */
export interface DnsServer {
  port: number;
  /** Records by lower-case name without the trailing dot. */
  records: Record<string, NameRecords>;
  /** Names answered with SERVFAIL. */
  servfail: Set<string>;
  /** Every question received, as `"<TYPE> <name>"`, in arrival order. */
  queries: string[];
  close(): Promise<void>;
}

const TYPE_CODES = { A: 1, TXT: 16, AAAA: 28, SRV: 33 } as const;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;
const TTL_SECONDS = 1;

/** Starts the server on 127.0.0.1 with an ephemeral port. */
export async function startDnsServer(
  records: Record<string, NameRecords> = {},
): Promise<DnsServer> {
  const socket = createSocket("udp4");
  const server: DnsServer = {
    port: 0,
    records,
    servfail: new Set(),
    queries: [],
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on("message", (message: Buffer, remote: { address: string; port: number }) => {
    const reply = answer(server, message);
    if (reply !== null) socket.send(reply, remote.port, remote.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  server.port = socket.address().port;
  return server;
}

/** The reply to one query, or null when the packet is not a readable query. */
function answer(server: DnsServer, query: Buffer): Buffer | null {
  if (query.length < 12 || query.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length && query[offset] !== 0) {
    const length = query[offset];
    labels.push(query.subarray(offset + 1, offset + 1 + length).toString("latin1"));
    offset += 1 + length;
  }
  if (offset + 5 > query.length) return null;
  const questionEnd = offset + 5;
  const qtype = query.readUInt16BE(offset + 1);
  const name = labels.join(".").toLowerCase();
  const typeName = (Object.keys(TYPE_CODES) as (keyof typeof TYPE_CODES)[])
    .find((t) => TYPE_CODES[t] === qtype);
  server.queries.push(`${typeName ?? qtype} ${name}`);

  const entry = server.records[name];
  let rcode = 0;
  let rdatas: Buffer[] = [];
  if (server.servfail.has(name)) rcode = RCODE_SERVFAIL;
  else if (typeName === undefined) rcode = RCODE_NOTIMP;
  else if (entry === undefined) rcode = RCODE_NXDOMAIN;
  else rdatas = encodeRecords(entry, typeName);

  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  const rd = query.readUInt16BE(2) & 0x0100;
  header.writeUInt16BE(0x8000 | 0x0400 | rd | 0x0080 | rcode, 2); // QR, AA, RD echoed, RA
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rdatas.length, 6);
  const parts = [header, query.subarray(12, questionEnd)];
  for (const rdata of rdatas) {
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    fixed.writeUInt16BE(qtype, 2);
    fixed.writeUInt16BE(1, 4); // class IN
    fixed.writeUInt32BE(TTL_SECONDS, 6);
    fixed.writeUInt16BE(rdata.length, 10);
    parts.push(fixed, rdata);
  }
  return Buffer.concat(parts);
}

function encodeRecords(entry: NameRecords, type: keyof typeof TYPE_CODES): Buffer[] {
  switch (type) {
    case "A":
      return (entry.A ?? []).map((ip) => Buffer.from(ip.split(".").map(Number)));
    case "AAAA":
      return (entry.AAAA ?? []).map(encodeIpv6);
    case "TXT":
      return (entry.TXT ?? []).map((strings) =>
        Buffer.concat(strings.map((s) => {
          const bytes = Buffer.from(s, "utf8");
          if (bytes.length > 255) throw new Error(`TXT string over 255 bytes: ${s}`);
          return Buffer.concat([Buffer.from([bytes.length]), bytes]);
        }))
      );
    case "SRV":
      return (entry.SRV ?? []).map((srv) => {
        const fixed = Buffer.alloc(6);
        fixed.writeUInt16BE(srv.priority, 0);
        fixed.writeUInt16BE(srv.weight, 2);
        fixed.writeUInt16BE(srv.port, 4);
        return Buffer.concat([fixed, encodeName(srv.target)]);
      });
  }
}

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, "").split(".").filter((l) => l.length > 0);
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "latin1")])),
    Buffer.from([0]),
  ]);
}

function encodeIpv6(ip: string): Buffer {
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined
    ? []
    : Array(8 - headGroups.length - tailGroups.length).fill("0");
  const groups = [...headGroups, ...zeros, ...tailGroups];
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${ip}`);
  const bytes = Buffer.alloc(16);
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), i * 2));
  return bytes;
}
