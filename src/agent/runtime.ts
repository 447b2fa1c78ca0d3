/**
 * The agent's runtime edges in one place: permissions, signals, subprocesses, the host's load and
 * memory, its name and the process id, on Deno or on Bun. The rest of `src/agent/` uses Web
 * standards (fetch, timers, streams).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { hostname, loadavg, totalmem } from "node:os";
import process from "node:process";
import { bunGlobal } from "../runtime.ts";

/** What this module uses of `Bun.spawn` (typed here: Deno's checker has no Bun types). */
interface BunSpawn {
  spawn(argv: string[], options: {
    env: Record<string, string | undefined>;
    stdin: "pipe";
    stdout: "pipe";
    stderr: "pipe";
  }): {
    stdin: { write(chunk: Uint8Array): number; end(): void };
    stdout: ReadableStream<Uint8Array>;
    stderr: ReadableStream<Uint8Array>;
    exited: Promise<number>;
    signalCode: string | null;
    kill(signal: string): void;
  };
}

/**
 * The runtime flags the agent lacks: `--allow-net` to talk to nodes and handlers, `--allow-sys`
 * for the host's name, load and memory, `--allow-env` for the defaults from the environment and
 * `--allow-run` when it runs commands (`--exec`).
 */
export function missingPermissions(runs_commands: boolean): string[] {
  if (bunGlobal !== undefined) return []; // Bun has no permissions: everything is allowed.
  const needed: Deno.PermissionDescriptor[] = [{ name: "net" }, { name: "sys" }, { name: "env" }];
  if (runs_commands) needed.push({ name: "run" });
  return needed
    .filter((p) => Deno.permissions.querySync(p).state !== "granted")
    .map((p) => `--allow-${p.name}`);
}

/** What the OS says about the host, for the default capacity and the heartbeat's usage. */
export interface HostInfo {
  hostname: string;
  pid: number;
  /** Logical cores the runtime may use. */
  cores: number;
  /** Physical memory, in MiB. */
  memory_total_mb: number;
}

/** The host's name, the pid, its cores and memory (needs `--allow-sys`). */
export function hostInfo(): HostInfo {
  return {
    hostname: hostname(),
    pid: process.pid,
    cores: Math.max(1, navigator.hardwareConcurrency || 1),
    memory_total_mb: Math.floor(totalmem() / (1024 * 1024)),
  };
}

/** The 1-minute load average of the host (0 where the OS has none, e.g. Windows). */
export function loadAverage1m(): number {
  return loadavg()[0];
}

/** The share of physical memory in use, in percent (total minus available, over total). */
export function memoryUsedPercent(): number {
  const { total, available } = bunGlobal === undefined ? Deno.systemMemoryInfo() : linuxMemInfo();
  return total <= 0 ? 0 : ((total - available) / total) * 100;
}

/**
 * Total and available memory in bytes from /proc/meminfo (what Deno reports on Linux; Node's
 * `os.freemem` differs between versions), or total only where the file is missing.
 */
function linuxMemInfo(): { total: number; available: number } {
  try {
    const text = new TextDecoder().decode(readFileSync("/proc/meminfo"));
    const kib = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
    return { total: kib("MemTotal") * 1024, available: kib("MemAvailable") * 1024 };
  } catch {
    return { total: totalmem(), available: totalmem() };
  }
}

/** Signals the agent stops on. */
export type StopSignal = "SIGTERM" | "SIGINT";

/** Conventional exit code of a process stopped by `signal` (128 + its number). */
export function signalExitCode(signal: StopSignal): number {
  return signal === "SIGINT" ? 130 : 143;
}

/** Calls `handler` on every SIGTERM and SIGINT (the agent counts them: drain, then exit). */
export function onStopSignal(handler: (signal: StopSignal) => void): () => void {
  const listeners = (["SIGTERM", "SIGINT"] as const).map((signal) => {
    const listener = () => handler(signal);
    if (bunGlobal !== undefined) process.on(signal, listener);
    else Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  return () => {
    for (const { signal, listener } of listeners) {
      if (bunGlobal !== undefined) process.off(signal, listener);
      else Deno.removeSignalListener(signal, listener);
    }
  };
}

/** Ends the process now with `code`. */
export function exitNow(code: number): never {
  return process.exit(code);
}

/** A subprocess started by {@link spawnProcess}. */
export interface ChildProcess {
  /** Its stdin; the caller writes the payload and closes it. */
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  /** Resolves with its exit code (128 + n when a signal ended it) and the signal, if any. */
  status: Promise<{ code: number; signal: string | null }>;
  /** Sends `signal`; does nothing when it has exited already. */
  kill(signal: "SIGTERM" | "SIGKILL"): void;
}

/**
 * Starts `argv[0]` with the arguments `argv.slice(1)` (no shell), the agent's environment plus
 * `env`, and all three standard streams piped (needs `--allow-run`). Throws when the program
 * cannot be started (not found, not executable).
 */
export function spawnProcess(argv: string[], env: Record<string, string>): ChildProcess {
  if (bunGlobal !== undefined) return spawnOnBun(argv, env);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    status: child.status.then((s) => ({ code: s.code, signal: s.signal })),
    kill(signal) {
      try {
        child.kill(signal);
      } catch {
        // It has exited: its status resolves on its own.
      }
    },
  };
}

/** {@link spawnProcess} on Bun: `Bun.spawn`, its stdin sink wrapped as a WritableStream. */
function spawnOnBun(argv: string[], env: Record<string, string>): ChildProcess {
  const child = (bunGlobal as unknown as BunSpawn).spawn(argv, {
    env: { ...process.env, ...env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const signalNumbers: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2 };
  return {
    stdin: new WritableStream<Uint8Array>({
      write: (chunk) => {
        child.stdin.write(chunk);
      },
      close: () => child.stdin.end(),
    }),
    stdout: child.stdout,
    stderr: child.stderr,
    status: child.exited.then((code) => {
      const signal = child.signalCode;
      return { code: signal === null ? code : 128 + (signalNumbers[signal] ?? 0), signal };
    }),
    kill(signal) {
      try {
        child.kill(signal);
      } catch {
        // It has exited: its status resolves on its own.
      }
    },
  };
}
