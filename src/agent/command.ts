/**
 * `tickraft worker …`: reads the command line, runs an {@link Agent} until it is drained, and
 * maps what happened to the exit code: 0 after a drain, 1 when the cluster refused the worker,
 * 2 for a usage error (with the help) or a missing runtime permission, 128 + n on a second
 * SIGTERM or SIGINT (exit at once).
 *
 * @example
 * ```ts
 * if (isWorkerInvocation(Deno.args)) Deno.exit(await runWorker(Deno.args.slice(1)));
 * ```
 *
 * @module
 */
import { systemClock } from "../clock.ts";
import { createLogger } from "../logger.ts";
import { envObject } from "../runtime.ts";
import { Agent, AgentFatalError } from "./agent.ts";
import { ServerClient } from "./client.ts";
import { AGENT_HELP, AgentUsageError, parseAgentArgs } from "./options.ts";
import { exitNow, hostInfo, missingPermissions, onStopSignal, signalExitCode } from "./runtime.ts";

/** Whether `args` start the worker agent (`tickraft worker …`). */
export function isWorkerInvocation(args: string[]): boolean {
  return args[0] === "worker";
}

/** Runs the agent with `args` (the words after `worker`); resolves with the exit code. */
export async function runWorker(args: string[]): Promise<number> {
  const missing = missingPermissions(args.some((a) => a === "--exec" || a.startsWith("--exec=")));
  if (missing.length > 0) {
    console.error(`tickraft worker: run it with ${missing.join(" ")} (or --allow-all)`);
    return 2;
  }
  const host = hostInfo();
  let parsed;
  try {
    parsed = parseAgentArgs(args, host, envObject());
  } catch (error) {
    if (!(error instanceof AgentUsageError)) throw error;
    console.error(`tickraft worker: ${error.message}\n\n${AGENT_HELP}`);
    return 2;
  }
  if ("help" in parsed) {
    console.log(AGENT_HELP);
    return 0;
  }
  const logger = createLogger(parsed.log_level, { worker: parsed.id });
  const client = new ServerClient(parsed.servers, parsed.token, logger);
  const agent = new Agent(parsed, { clock: systemClock, logger, client, cores: host.cores });
  let signals = 0;
  const stopListening = onStopSignal((signal) => {
    signals++;
    if (signals === 1) {
      logger.info("stop signal: draining", { signal });
      agent.drain();
      return;
    }
    logger.warn("second stop signal: exiting at once", { signal });
    exitNow(signalExitCode(signal));
  });
  try {
    await agent.run();
    return 0;
  } catch (error) {
    if (!(error instanceof AgentFatalError)) throw error;
    logger.error("worker stopped", { error: error.message });
    console.error(`tickraft worker: ${error.message}`);
    return 1;
  } finally {
    stopListening();
  }
}
