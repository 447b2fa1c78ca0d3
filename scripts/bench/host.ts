/**
 * What the benchmarks say about the machine and measure of their processes: the host line under
 * each table (cores, CPU model, Deno, the load average before and after), CPU seconds and memory
 * of a process from /proc, the CPU share of servers during one measurement, and a progress log
 * stamped with the seconds since the run began.
 *
 * @module
 */

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** The 1-minute load average: other work on the machine shows up here. */
export async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ")[0];
}

/** "load average (1 min) <before> at start, <now> at end", read now. */
export async function loadAverageSince(before: string): Promise<string> {
  return `load average (1 min) ${before} at start, ${await loadAverage()} at end`;
}

/** The CPU's model name from /proc/cpuinfo. */
export async function cpuModel(): Promise<string> {
  const text = await Deno.readTextFile("/proc/cpuinfo");
  return /^model name\s*:\s*(.+)$/m.exec(text)?.[1] ?? "unknown CPU";
}

/** The machine line of a report: "2 cores, <CPU model>, Deno 2.x; <load>". */
export async function hostLine(load: string): Promise<string> {
  return `${navigator.hardwareConcurrency} cores, ${await cpuModel()}, Deno ${Deno.version.deno}; ${load}`;
}

/** Resident set size (VmRSS) and its peak (VmHWM) of a process, in bytes, from /proc. */
export async function procMemory(pid: number): Promise<{ rss_bytes: number; hwm_bytes: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1_024;
  };
  return { rss_bytes: kib("VmRSS"), hwm_bytes: kib("VmHWM") };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command name: state is field 3, utime field 14 and stime field 15 (proc(5)).
  return (Number(fields[14 - 3]) + Number(fields[15 - 3])) / USER_HZ;
}

/**
 * CPU use of each of `pids` during `run`, as shares of one core joined by "/" ("45%/12%/11%";
 * one pid: "45%").
 */
export async function withCpu<T>(
  pids: number[],
  run: () => Promise<T>,
): Promise<{ value: T; cpu: string }> {
  const before = await Promise.all(pids.map(cpuSeconds));
  const started = performance.now();
  const value = await run();
  const wall_s = (performance.now() - started) / 1_000;
  const after = await Promise.all(pids.map(cpuSeconds));
  const shares = after.map((a, i) => `${Math.round((a - before[i]) / wall_s * 100)}%`);
  return { value, cpu: shares.join("/") };
}

/** A progress log on stderr, each line stamped with the seconds since this call ("[  12 s]"). */
export function elapsedLog(): (line: string) => void {
  const t0 = performance.now();
  return (line) =>
    console.error(`[${((performance.now() - t0) / 1_000).toFixed(0).padStart(4)} s] ${line}`);
}
