/**
 * The reference Raft store on the same machine: etcd 3.4 (Debian's `etcd-server`) as three
 * members on loopback, each a child process with a data dir of its own and etcd's defaults
 * (every write fsynced by the leader and the followers before it is acknowledged). The load goes
 * through etcd's JSON gateway (`POST /v3/kv/put`; 3.3 called it `/v3beta`) to the leader, with
 * the benchmark's closed-loop load generator.
 *
 * @module
 */
import { freePort } from "../../tests/support/ports.ts";
import { JOB_BODY_BYTES, paddedJson } from "./cluster.ts";
import { expectStatus, JSON_HEADERS, postEach, tryJson } from "./http.ts";
import { ensureDebianPackage } from "./install.ts";
import { batchedLoop, type LoadResult } from "./load.ts";
import { type Child, spawnChild, waitFor } from "./proc.ts";

const START_TIMEOUT_MS = 60_000;
/** A member that is not ready holds requests; a probe gives up after this. */
const STATUS_TIMEOUT_MS = 1_000;
/** etcd's default `--max-txn-ops`: the most puts one transaction may hold. */
export const ETCD_TXN_OPS_MAX = 128;

/** Makes sure `etcd` is on PATH (installs Debian's etcd-server as root); returns its version. */
export function ensureEtcd(log: (line: string) => void): Promise<string> {
  return ensureDebianPackage({
    command: "etcd",
    package_name: "etcd-server",
    version_pattern: /etcd Version: (\S+)/,
    install_hint: "install it with `apt-get install -y etcd-server` (as root), or pass --skip-etcd",
  }, log);
}

/** One etcd member. */
interface EtcdMember {
  name: string;
  client_url: string;
  child: Child;
}

/** What `POST /v3/maintenance/status` answers (the fields read here; ids are strings). */
interface EtcdStatus {
  header: { member_id: string };
  leader: string;
}

const base64 = (text: string) => btoa(text);

/** Three etcd members on loopback. */
export class EtcdCluster {
  private constructor(readonly members: EtcdMember[]) {}

  /** Starts etcd1..3 with data under `dir` and waits until every member names one leader. */
  static async start(dir: string): Promise<EtcdCluster> {
    const specs = ["etcd1", "etcd2", "etcd3"].map((name) => ({
      name,
      client_url: `http://127.0.0.1:${freePort()}`,
      peer_url: `http://127.0.0.1:${freePort()}`,
    }));
    const initial = specs.map((s) => `${s.name}=${s.peer_url}`).join(",");
    const token = `bench-${crypto.randomUUID()}`;
    const members = specs.map((s) => ({
      name: s.name,
      client_url: s.client_url,
      child: spawnChild(s.name, "etcd", [
        "--name",
        s.name,
        "--data-dir",
        `${dir}/${s.name}`,
        "--listen-client-urls",
        s.client_url,
        "--advertise-client-urls",
        s.client_url,
        "--listen-peer-urls",
        s.peer_url,
        "--initial-advertise-peer-urls",
        s.peer_url,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        token,
        "--logger",
        "zap",
        "--log-level",
        "error",
      ]),
    }));
    const cluster = new EtcdCluster(members);
    try {
      await cluster.leader();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The member every member names as leader (by `/v3/maintenance/status`); waits for it. */
  leader(): Promise<EtcdMember> {
    return waitFor(
      "an etcd leader all members agree on",
      async () => {
        const statuses = await Promise.all(this.members.map((m) => tryStatus(m.client_url)));
        const leader_id = statuses[0]?.leader;
        if (leader_id === undefined || leader_id === "0") return undefined;
        if (!statuses.every((s) => s?.leader === leader_id)) return undefined;
        const index = statuses.findIndex((s) => s?.header.member_id === leader_id);
        return index === -1 ? undefined : this.members[index];
      },
      START_TIMEOUT_MS,
      this.members[0].child,
    );
  }

  /** Stops every member (SIGTERM, then SIGKILL after the grace period). */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.child.stop()));
  }
}

function tryStatus(url: string): Promise<EtcdStatus | undefined> {
  return tryJson<EtcdStatus>(`${url}/v3/maintenance/status`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: "{}",
    signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
  });
}

/** Put `i`: key `bench/<i>`, value the same {@link JOB_BODY_BYTES} bytes a Tickraft job has. */
function putOp(i: number): { key: string; value: string } {
  const value = paddedJson(JOB_BODY_BYTES, (pad) => ({ i, pad }));
  return { key: base64(`bench/${String(i).padStart(9, "0")}`), value: base64(value) };
}

/** `total` puts (`POST /v3/kv/put`) to `url` with `clients` in flight; key offset `first`. */
export function etcdPuts(
  url: string,
  clients: number,
  total: number,
  first: number,
): Promise<LoadResult> {
  const bodies = Array.from({ length: total }, (_, i) => JSON.stringify(putOp(first + i)));
  return postEach(url, "/v3/kv/put", clients, bodies, "2xx");
}

/**
 * `puts` puts in transactions (`POST /v3/kv/txn`) of up to {@link ETCD_TXN_OPS_MAX} each, the
 * closest etcd has to `POST /jobs/batch`; `clients` transactions in flight.
 */
export function etcdTxnPuts(
  url: string,
  clients: number,
  puts: number,
  first: number,
): Promise<LoadResult> {
  return batchedLoop(clients, puts, ETCD_TXN_OPS_MAX, async (txn_first, size) => {
    const success = Array.from(
      { length: size },
      (_, j) => ({ request_put: putOp(first + txn_first + j) }),
    );
    const res = await fetch(`${url}/v3/kv/txn`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ success }),
    });
    await expectStatus(res, "POST /v3/kv/txn", "2xx");
    return size;
  });
}
