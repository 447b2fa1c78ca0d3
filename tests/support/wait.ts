/**
 * Waiting in tests, benchmarks and the Jepsen harness: a plain sleep and a poll until a check
 * answers. The one home of these helpers for `tests/` and `scripts/`.
 *
 * @example
 * ```ts
 * await sleep(100);
 * const leader = await eventually("a leader", async () => (await view()).leader ?? undefined);
 * ```
 *
 * @module
 */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every 50 ms until it returns a value other than undefined, or throws after
 * `timeout_ms` with the last error `check` threw (a check that throws is tried again).
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeout_ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeout_ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last === undefined ? "" : `: ${last}`}`);
}
