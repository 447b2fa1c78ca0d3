/**
 * Entry of the binary: `jobs …` and `cluster …` run the CLI against a node over HTTP
 * (`src/cli/`); anything else (`serve`, flags, nothing) starts a node.
 */
import { isCliInvocation, runCli } from "./cli/cli.ts";

/**
 * Reads the configuration, starts a node, stops it on SIGTERM or SIGINT. The node's modules are
 * imported here, not above, so the CLI neither loads them nor needs their permissions (FFI).
 */
async function serve(args: string[]): Promise<number> {
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
    loaded = loadConfig(args, Deno.env.toObject());
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
    node = await startNode(config, { logger });
  } catch (error) {
    logger.error("node failed to start", { error: (error as Error).message });
    console.error(`tickraft: ${(error as Error).message}`);
    return 1;
  }
  const reason = await new Promise<string>((resolve) => {
    onShutdownSignal((signal) => resolve(`signal ${signal}`));
    node.fatal.then((error) => resolve(`storage failure: ${error.message}`));
  });
  logger.info("stopping", { node: config.node_id, reason });
  await node.stop();
  return reason.startsWith("storage") ? 1 : 0;
}

async function main(args: string[]): Promise<number> {
  return isCliInvocation(args) ? await runCli(args) : await serve(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
