/**
 * Entry of the binary: `jobs …` and `cluster …` run the CLI against a node over HTTP
 * (`src/cli/`), `worker …` runs the worker agent (`src/agent/`); anything else (`serve`, flags,
 * nothing) starts a node.
 */
import { isWorkerInvocation, runWorker } from "./agent/command.ts";
import { isCliInvocation, runCli } from "./cli/cli.ts";
import type { FaultHook } from "./faults.ts";
import { envObject, exitProcess, programArgs } from "./runtime.ts";
import type { VitalFailure } from "./node/vitals.ts";

/**
 * How long a node whose vital loop failed keeps answering (503 on `/health` and `/ready`, so a
 * load balancer sees why) before it exits with code 1 for its supervisor to restart it.
 */
const FATAL_EXIT_DELAY_MS = 300;

/**
 * Reads the configuration, starts a node, stops it on SIGTERM or SIGINT, and exits non-zero
 * within a second when one of its vital loops fails. The node's modules are imported here, not
 * above, so the CLI neither loads them nor needs their permissions (FFI). `fault` is for tests
 * only (tests/support/faulty_node.ts).
 */
export async function serve(args: string[], fault?: FaultHook): Promise<number> {
  const [
    { ConfigError, helpText, loadConfig },
    { createLogger },
    { startNode },
    { onShutdownSignal },
  ] = await Promise.all([
    import("./config.ts"),
    import("./logger.ts"),
    import("./node/node.ts"),
    import("./node/runtime.ts"),
  ]);
  let loaded;
  try {
    loaded = loadConfig(args, envObject());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`tickraft: ${error.message}`);
    return 2;
  }
  if (loaded.help) {
    console.log(helpText());
    return 0;
  }
  const { config } = loaded;
  const logger = createLogger(config.log_level);
  let node;
  try {
    node = await startNode(config, { logger, fault });
  } catch (error) {
    logger.error("node failed to start", { error: (error as Error).message });
    console.error(`tickraft: ${(error as Error).message}`);
    return 1;
  }
  const stop = await new Promise<{ signal: string } | { failure: VitalFailure }>((resolve) => {
    onShutdownSignal((signal) => resolve({ signal }));
    node.fatal.then((failure) => resolve({ failure }));
  });
  if ("failure" in stop) {
    // No graceful stop: a loop the node needs is gone, so nothing it would wait for can finish.
    // What was in flight is redelivered after the restart, with the same Idempotency-Key.
    logger.error("a vital loop stopped; exiting so that the supervisor restarts the node", {
      loop: stop.failure.loop,
      error: stop.failure.message,
    });
    await new Promise((resolve) => setTimeout(resolve, FATAL_EXIT_DELAY_MS));
    return 1;
  }
  logger.info("stopping", { node: config.node_id, reason: `signal ${stop.signal}` });
  await node.stop();
  return 0;
}

async function main(args: string[]): Promise<number> {
  if (isWorkerInvocation(args)) return await runWorker(args.slice(1));
  return isCliInvocation(args) ? await runCli(args) : await serve(args);
}

if (import.meta.main) exitProcess(await main(programArgs()));
