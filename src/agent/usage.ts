/**
 * The usage a heartbeat reports: CPU and memory of the host from the OS, and the allocations per
 * second this agent handled since the previous heartbeat.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { HeartbeatBody } from "./protocol.ts";
import { loadAverage1m, memoryUsedPercent } from "./runtime.ts";

/** Counts handled allocations and turns them into a rate at each sample. */
export class UsageMeter {
  #clock: Clock;
  #cores: number;
  #handled = 0;
  #since_ms: number;

  constructor(clock: Clock, cores: number) {
    this.#clock = clock;
    this.#cores = Math.max(1, cores);
    this.#since_ms = clock.now();
  }

  /** One allocation was handled (run to its end, whatever the outcome). */
  handled(): void {
    this.#handled++;
  }

  /**
   * The usage now: `cpu_percent` is the 1-minute load average over the cores (capped at 100),
   * `memory_percent` the share of memory in use, `rps` the allocations handled per second since
   * the previous sample (which this one starts counting from again).
   */
  sample(running: string[]): HeartbeatBody["usage"] {
    const now_ms = this.#clock.now();
    const elapsed_s = Math.max(0.001, (now_ms - this.#since_ms) / 1000);
    const rps = this.#handled / elapsed_s;
    this.#handled = 0;
    this.#since_ms = now_ms;
    return {
      cpu_percent: round1(Math.min(100, (loadAverage1m() / this.#cores) * 100)),
      memory_percent: round1(memoryUsedPercent()),
      rps: round1(rps),
      running,
    };
  }
}

const round1 = (n: number) => Math.round(n * 10) / 10;
