/** CLI entry: reads the configuration, starts a node, stops it on SIGTERM or SIGINT. */
import { ConfigError, helpText, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { startNode } from "./node/node.ts";
import { onShutdownSignal } from "./node/runtime.ts";

async function main(args: string[]): Promise<number> {
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
  const node = await startNode(config, { logger });
  const reason = await new Promise<string>((resolve) => {
    onShutdownSignal((signal) => resolve(`signal ${signal}`));
    node.fatal.then((error) => resolve(`storage failure: ${error.message}`));
  });
  logger.info("stopping", { node: config.node_id, reason });
  await node.stop();
  return reason.startsWith("storage") ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
