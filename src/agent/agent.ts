/**
 * The worker agent's loop (docs/workers.md, "A worker's life"): register; heartbeat every
 * `heartbeat_ms` with the usage; long-poll the allocations while a slot is free; for each, start
 * it (a 409 skips it), run it, finish it. A 404 on a heartbeat or a poll means the cluster lost
 * the worker: it registers again. {@link Agent.drain} stops polling, tells the cluster, lets what
 * runs finish (each within its lease), deregisters and ends {@link Agent.run}.
 *
 * @example
 * ```ts
 * const agent = new Agent(options, { clock: systemClock, logger, client, cores: 2 });
 * Deno.addSignalListener("SIGTERM", () => agent.drain());
 * await agent.run(); // resolves once drained
 * ```
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { AbortedError, type Answer, type ServerClient, serverMessage, sleep } from "./client.ts";
import type { AgentOptions } from "./options.ts";
import {
  type Allocation,
  allocationsAnswerSchema,
  allocationSchema,
  type FinishBody,
  heartbeatAnswerSchema,
  type Outcome,
  registerAnswerSchema,
  type RegisterBody,
} from "./protocol.ts";
import { runExec, runHandler } from "./run.ts";
import { UsageMeter } from "./usage.ts";

/** Heartbeat period until the cluster says its own. */
const DEFAULT_HEARTBEAT_MS = 5_000;
/** Limit of one call other than the long poll. */
const REQUEST_TIMEOUT_MS = 5_000;
/** How long the node holds a poll that has nothing for us (docs/workers.md: at most 60 s). */
const POLL_WAIT_S = 30;
/** When a poll brings only allocations already handled (a node lagging behind), wait this long. */
const STALE_POLL_PAUSE_MS = 500;
/** A finish is retried (across nodes) this long past the lease; after it the cluster has moved on. */
const FINISH_GRACE_MS = 30_000;
/** Tries of the drain and deregistration calls on the way out, per node. */
const EXIT_TRIES_PER_SERVER = 2;
/**
 * The work stops this share of the lease (at most {@link REPORT_MARGIN_MAX_MS}) before the lease
 * ends, so that its outcome reaches the cluster while the allocation is still this worker's.
 */
const REPORT_MARGIN_SHARE = 0.1;
const REPORT_MARGIN_MAX_MS = 1_000;
/** Allocation ids remembered as handled, so a lagging poll does not start one twice. */
const SEEN_MAX = 4_096;

/** The cluster refused the worker for a reason a retry cannot fix (a bad spec, a bad token). */
export class AgentFatalError extends Error {}

/** What the agent needs besides its options. */
export interface AgentDeps {
  clock: Clock;
  logger: Logger;
  client: ServerClient;
  /** Cores of the host, to turn the load average into a percentage. */
  cores: number;
}

/** One worker agent: {@link run} it, {@link drain} it. */
export class Agent {
  #options: AgentOptions;
  #clock: Clock;
  #logger: Logger;
  #client: ServerClient;
  #usage: UsageMeter;
  #heartbeat_ms = DEFAULT_HEARTBEAT_MS;
  /** Allocations taken from a poll and not yet done, by id. */
  #running = new Map<string, Promise<void>>();
  /** Ids of those that were started (what heartbeats report). */
  #started = new Set<string>();
  #seen = new Map<string, true>();
  #registering: Promise<void> | null = null;
  #slot_freed: () => void = () => {};
  /** Aborted by {@link drain}: no more polls, nothing new starts. */
  #draining = new AbortController();
  /** Aborted when the agent is done: heartbeats stop. */
  #done = new AbortController();
  #fatal: (error: AgentFatalError) => void = () => {};

  constructor(options: AgentOptions, deps: AgentDeps) {
    this.#options = options;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#client = deps.client;
    this.#usage = new UsageMeter(deps.clock, deps.cores);
  }

  /**
   * Registers, then heartbeats and polls until {@link drain} has run its course. Rejects with
   * {@link AgentFatalError} when the cluster refuses the worker.
   */
  async run(): Promise<void> {
    const fatal = new Promise<never>((_, reject) => this.#fatal = reject);
    // A refusal after run() ended has nobody to tell; the races below still see any before.
    fatal.catch(() => {});
    try {
      try {
        await Promise.race([this.#register(this.#draining.signal), fatal]);
      } catch (error) {
        if (error instanceof AbortedError) return; // stopped before any node answered
        throw error;
      }
      const heartbeats = this.#heartbeatLoop();
      await Promise.race([this.#pollLoop(), fatal]);
      await Promise.race([this.#leave(), fatal]);
      this.#done.abort();
      await heartbeats;
    } finally {
      this.#draining.abort();
      this.#done.abort();
    }
  }

  /** Stops taking work: polling ends, the cluster is told, what runs finishes, then run() ends. */
  drain(): void {
    this.#draining.abort();
    this.#slot_freed();
  }

  /** `POST /workers`; one registration at a time, however many calls found the worker gone. */
  #register(signal: AbortSignal = this.#done.signal): Promise<void> {
    this.#registering ??= this.#registerOnce(signal).finally(() => this.#registering = null);
    return this.#registering;
  }

  async #registerOnce(signal: AbortSignal): Promise<void> {
    const o = this.#options;
    const body: RegisterBody = {
      id: o.id,
      pool: o.pool,
      region: o.region,
      zone: o.zone,
      labels: o.labels,
      taints: o.taints,
      capacity: o.capacity,
    };
    const answer = await this.#client.request("POST", "/workers", body, {
      timeout_ms: REQUEST_TIMEOUT_MS,
      signal,
    });
    if (answer.status !== 200 && answer.status !== 201) {
      throw new AgentFatalError(refusal("the registration", answer));
    }
    const parsed = registerAnswerSchema.safeParse(answer.json);
    if (parsed.success && parsed.data.heartbeat_ms !== undefined) {
      this.#heartbeat_ms = parsed.data.heartbeat_ms;
    }
    this.#logger.info("worker registered", {
      server: this.#client.server,
      status: answer.status,
      capacity: o.capacity,
    });
  }

  /** The first heartbeat right after registering (it says the period), then every period. */
  async #heartbeatLoop(): Promise<void> {
    const signal = this.#done.signal;
    while (!signal.aborted) {
      try {
        await this.#heartbeat();
      } catch (error) {
        if (error instanceof AbortedError) return;
        if (error instanceof AgentFatalError) return this.#fatal(error);
        throw error;
      }
      await sleep(this.#heartbeat_ms, signal);
    }
  }

  async #heartbeat(): Promise<void> {
    const usage = this.#usage.sample([...this.#started]);
    const answer = await this.#client.request(
      "POST",
      `/workers/${encodeURIComponent(this.#options.id)}/heartbeat`,
      { usage },
      { timeout_ms: REQUEST_TIMEOUT_MS, signal: this.#done.signal },
    );
    if (answer.status === 404) {
      this.#logger.warn("the cluster does not know this worker: registering again", {
        server: this.#client.server,
      });
      return await this.#register();
    }
    const parsed = heartbeatAnswerSchema.safeParse(answer.json);
    if (answer.status !== 200 || !parsed.success) {
      this.#unexpected("heartbeat", answer);
      return;
    }
    this.#heartbeat_ms = parsed.data.heartbeat_ms;
    this.#logger.debug("heartbeat", { status: parsed.data.status, usage });
  }

  /** Polls while a slot is free, until drained. */
  async #pollLoop(): Promise<void> {
    const signal = this.#draining.signal;
    while (!signal.aborted) {
      await this.#freeSlot();
      if (signal.aborted) break;
      let allocations: Allocation[];
      try {
        allocations = await this.#poll();
      } catch (error) {
        if (error instanceof AbortedError) break;
        throw error;
      }
      const fresh = allocations.filter((a) => !this.#seen.has(a.id));
      for (const allocation of fresh) {
        if (this.#running.size >= this.#options.capacity.slots || signal.aborted) break;
        this.#take(allocation);
      }
      if (allocations.length > 0 && fresh.length === 0) {
        await sleep(STALE_POLL_PAUSE_MS, signal);
      }
    }
  }

  /** Resolves once fewer than `--slots` allocations run, or at once when draining. */
  async #freeSlot(): Promise<void> {
    while (this.#running.size >= this.#options.capacity.slots && !this.#draining.signal.aborted) {
      await new Promise<void>((resolve) => this.#slot_freed = resolve);
    }
  }

  async #poll(): Promise<Allocation[]> {
    const answer = await this.#client.request(
      "GET",
      `/workers/${encodeURIComponent(this.#options.id)}/allocations?wait=${POLL_WAIT_S}s`,
      undefined,
      { timeout_ms: POLL_WAIT_S * 1000 + REQUEST_TIMEOUT_MS, signal: this.#draining.signal },
    );
    if (answer.status === 404) {
      this.#logger.warn("the cluster does not know this worker: registering again", {
        server: this.#client.server,
      });
      await this.#register();
      return [];
    }
    const parsed = allocationsAnswerSchema.safeParse(answer.json);
    if (answer.status !== 200 || !parsed.success) {
      this.#unexpected("poll", answer);
      await sleep(STALE_POLL_PAUSE_MS, this.#draining.signal);
      return [];
    }
    return parsed.data.allocations;
  }

  /** Takes one allocation into a slot; the slot frees when it is done, whatever happened. */
  #take(allocation: Allocation): void {
    this.#remember(allocation.id);
    const done = this.#handle(allocation)
      .catch((error) => {
        if (error instanceof AbortedError) {
          this.#logger.warn("allocation given up: no node answered within its lease", {
            allocation: allocation.id,
          });
          return;
        }
        this.#logger.error("allocation failed in the agent", {
          allocation: allocation.id,
          error: (error as Error).message,
        });
      })
      .finally(() => {
        this.#running.delete(allocation.id);
        this.#started.delete(allocation.id);
        this.#slot_freed();
      });
    this.#running.set(allocation.id, done);
  }

  #remember(id: string): void {
    this.#seen.set(id, true);
    if (this.#seen.size > SEEN_MAX) this.#seen.delete(this.#seen.keys().next().value as string);
  }

  /** start, run, finish. */
  async #handle(placed: Allocation): Promise<void> {
    if (this.#draining.signal.aborted) return;
    const fields = { allocation: placed.id, job: placed.job_id, attempt: placed.attempt };
    // The lease starts when the cluster applies the start, after this: a deadline counted from
    // here ends no later than the cluster's.
    const sent_ms = this.#clock.now();
    const answer = await this.#client.request(
      "POST",
      `/allocations/${encodeURIComponent(placed.id)}/start`,
      { worker_id: this.#options.id },
      { timeout_ms: REQUEST_TIMEOUT_MS, signal: AbortSignal.timeout(placed.lease_seconds * 1000) },
    );
    if (answer.status === 409 || answer.status === 404) {
      this.#logger.info("allocation skipped: no longer this worker's", {
        ...fields,
        status: answer.status,
        reason: serverMessage(answer),
      });
      return;
    }
    if (answer.status !== 200) return this.#unexpected("start", answer);
    const started = allocationSchema.safeParse(answer.json);
    const allocation = started.success ? started.data : placed;
    const lease_ms = allocation.lease_seconds * 1000;
    const margin_ms = Math.min(REPORT_MARGIN_MAX_MS, lease_ms * REPORT_MARGIN_SHARE);
    const deadline_ms = sent_ms + lease_ms - margin_ms;
    this.#started.add(allocation.id);
    this.#logger.info("allocation started", { ...fields, lease_seconds: allocation.lease_seconds });
    const outcome = await this.#runOne(allocation, deadline_ms);
    this.#usage.handled();
    await this.#finish(allocation, outcome, deadline_ms);
  }

  #runOne(allocation: Allocation, deadline_ms: number): Promise<Outcome> {
    const runner = this.#options.runner;
    const ctx = { clock: this.#clock, deadline_ms };
    return runner.kind === "handler"
      ? runHandler(allocation, runner.url, this.#options.secret, ctx)
      : runExec(allocation, runner.argv, ctx);
  }

  async #finish(allocation: Allocation, outcome: Outcome, deadline_ms: number): Promise<void> {
    const body: FinishBody = { worker_id: this.#options.id, ...outcome };
    const answer = await this.#client.request(
      "POST",
      `/allocations/${encodeURIComponent(allocation.id)}/finish`,
      body,
      {
        timeout_ms: REQUEST_TIMEOUT_MS,
        signal: AbortSignal.timeout(deadline_ms - this.#clock.now() + FINISH_GRACE_MS),
      },
    );
    const fields = {
      allocation: allocation.id,
      job: allocation.job_id,
      attempt: allocation.attempt,
      ok: outcome.ok,
      exit_code: outcome.exit_code,
      status_code: outcome.status_code,
      error: outcome.error,
      duration_ms: outcome.duration_ms,
    };
    if (answer.status === 409) {
      this.#logger.warn("allocation finished, but the cluster had lost it meanwhile", fields);
    } else if (answer.status === 200) {
      this.#logger.info("allocation finished", fields);
    } else {
      this.#unexpected("finish", answer);
    }
  }

  /** After the drain: tell the cluster (best effort), wait for what runs, deregister. */
  async #leave(): Promise<void> {
    const id = encodeURIComponent(this.#options.id);
    const tries_max = EXIT_TRIES_PER_SERVER * this.#options.servers.length;
    const exit_call = { timeout_ms: REQUEST_TIMEOUT_MS, tries_max };
    this.#logger.info("draining", { running: [...this.#running.keys()] });
    try {
      const drained = await this.#client.request("POST", `/workers/${id}/drain`, {}, exit_call);
      if (drained.status !== 200) this.#unexpected("drain", drained);
      await Promise.all(this.#running.values());
      const removed = await this.#client.request("DELETE", `/workers/${id}`, undefined, exit_call);
      if (removed.status !== 200) this.#unexpected("deregister", removed);
      this.#logger.info("worker stopped", { server: this.#client.server });
    } catch (error) {
      await Promise.all(this.#running.values());
      this.#logger.warn("worker stopped without telling the cluster", {
        error: (error as Error).message,
      });
    }
  }

  /** An answer docs/workers.md does not list for `call`: 401/403/400 cannot heal by retrying. */
  #unexpected(call: string, answer: Answer): void {
    if (answer.status === 400 || answer.status === 401 || answer.status === 403) {
      this.#fatal(new AgentFatalError(refusal(call, answer)));
      return;
    }
    this.#logger.warn("unexpected answer", {
      call,
      status: answer.status,
      server: this.#client.server,
    });
  }
}

/** Why the cluster refused `call`, with what to check. */
function refusal(call: string, answer: Answer): string {
  const hint = answer.status === 401 || answer.status === 403
    ? " (check --token or $TICKRAFT_TOKEN: an admin token of the cluster)"
    : "";
  return `the cluster refused ${call} (HTTP ${answer.status}): ${serverMessage(answer)}${hint}`;
}
