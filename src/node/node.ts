/**
 * One scheduler node: opens its libSQL file, rebuilds the state, starts the log, the firing loop
 * and the HTTP server, and stops them in order.
 */
import type { Config } from "../config.ts";
import { openDatabase } from "../db/open.ts";
import { type AppDeps, createApp } from "../http/app.ts";
import { inputLimits } from "../http/bounded_json.ts";
import { consoleRoutes } from "../console/routes.tsx";
import type { Logger } from "../logger.ts";
import { type Clock, systemClock } from "../clock.ts";
import { type CommandLog, subsystemLog } from "../log/command_log.ts";
import { Scheduler, type SchedulerOptions } from "../scheduler/scheduler.ts";
import { JobService } from "../scheduler/service.ts";
import { WebhookDispatcher } from "../scheduler/webhook/dispatcher.ts";
import type { Dispatcher } from "../scheduler/dispatcher.ts";
import type { JobRecord } from "../scheduler/model.ts";
import { WORKER_EFFECT_KINDS, type WorkerCommand, type WorkerEffect } from "../workers/commands.ts";
import { WorkerLeader, type WorkerLeaderOptions } from "../workers/leader.ts";
import { WorkersService } from "../workers/service.ts";
import { WorkersState } from "../workers/state.ts";
import { RESOURCE_NAMES, type Resources } from "../placement/types.ts";
import { type Effect, JOB_EFFECT_KINDS, SchedulerState } from "../scheduler/state.ts";
import type { Command } from "../scheduler/commands.ts";
import { composeStateMachines } from "../log/state_machine.ts";
import { ClusterNode, clusterWanted } from "../cluster/member.ts";
import { LocalLog } from "../log/local_log.ts";
import { NodeMetrics } from "./metrics.ts";
import { serveHttp } from "./runtime.ts";
import {
  envGet,
  envObject,
  residentSetBytes,
  runtimeVersion,
  systemMemoryTotalBytes,
} from "../runtime.ts";
import type { FaultHook } from "../faults.ts";
import { type VitalFailure, Vitals } from "./vitals.ts";

/** A running node. */
export interface RunningNode {
  url: string;
  port: number;
  /** Stops serving, lets deliveries in flight finish (up to `grace_ms`), closes the file. */
  stop(grace_ms?: number): Promise<void>;
  /**
   * Resolves with the first failure of a loop the node cannot run without; from then on
   * `/health` and `/ready` answer 503 and the process must exit (src/main.ts does).
   */
  readonly fatal: Promise<VitalFailure>;
}

export interface NodeDeps {
  logger: Logger;
  clock?: Clock;
  fetch?: typeof fetch;
  /** Test-only fault injection into the vital loops (tests/support/faulty_node.ts). */
  fault?: FaultHook;
}

/** Every command of the node's state machine: the jobs' and the workers' (namespaces next). */
type NodeCommand = Command | WorkerCommand;
/** Every effect of the node's state machine. */
type NodeEffect = Effect | WorkerEffect;

/** A follower is ready while it has applied all but this many entries of the known commit. */
const READY_LAG_MAX_ENTRIES = 1_000;

const MEMORY_SAMPLE_MS = 1_000;
const COUNTS_CACHE_MS = 1_000;

/** Starts a node with `config`. */
export async function startNode(config: Config, deps: NodeDeps): Promise<RunningNode> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger.child({ node: config.node_id });
  const started_ms = Date.now();
  const load_started = performance.now();
  const clustered = clusterWanted(config, envObject());
  const db = await openDatabase(
    config.data_dir,
    undefined,
    undefined,
    clustered ? "NORMAL" : "FULL",
  );
  // The node's state machine: one sub-machine per subsystem, each owning its commands.
  const state = new SchedulerState();
  const workersState = new WorkersState();
  const machine = composeStateMachines<NodeCommand, NodeEffect>([state, workersState]);
  await machine.load(db);
  const metrics = new NodeMetrics();
  const vitals = new Vitals();
  let scheduler: Scheduler | null = null;
  let workerLeader: WorkerLeader | null = null;
  let log: CommandLog<NodeCommand, NodeEffect> & { readonly queued_commands: number };
  let cluster: ClusterNode<NodeCommand, NodeEffect> | null = null;
  let local: LocalLog<NodeCommand, NodeEffect> | null = null;
  const startFiring = () => {
    workerLeader = new WorkerLeader(workerLeaderOptions());
    workerLeader.start();
    scheduler = new Scheduler(schedulerOptions(workerLeader));
    scheduler.start();
  };
  const stopFiring = async (grace_ms: number) => {
    const running = scheduler;
    const leading = workerLeader;
    scheduler = null;
    workerLeader = null;
    leading?.stop();
    await running?.stop(grace_ms);
  };
  if (clustered) {
    cluster = await ClusterNode.start({
      config,
      stateDb: db,
      machine,
      logger,
      metrics,
      onCanFire: (can) => {
        metrics.raftRole.set(can ? 1 : 0);
        logger.info(can ? "leader: firing" : "not leader: firing stopped");
        if (can) startFiring();
        else void stopFiring(0);
      },
      onFatal: (error) => vitals.fail("raft_loop", error),
      fault: deps.fault,
    });
    log = cluster.log;
  } else {
    local = await LocalLog.open(db, machine, {
      batch_max: config.commit_batch_max,
      queue_max: config.proposal_queue_max,
      logger,
      observer: metrics,
      onFatal: (loop, error) => vitals.fail(loop, error),
      fault: deps.fault,
    });
    log = local;
  }
  const memory_limit = config.queue_memory_limit_bytes ??
    Math.round(systemMemoryTotalBytes() * config.queue_memory_percent / 100);
  let rss = residentSetBytes();
  const sampler = setInterval(() => {
    rss = residentSetBytes();
    metrics.memoryBytes.set(rss);
    metrics.jobsStored.set(state.jobs.size);
    sampleWorkers(metrics, workersState);
  }, MEMORY_SAMPLE_MS);
  metrics.memoryLimit.set(memory_limit);
  metrics.jobLimit.set(config.queue_job_limit);
  metrics.logIndex.set(log.applied_index);

  const webhooks = new WebhookDispatcher({
    clock,
    secrets: config.webhook_secrets,
    deny_private: config.webhook_deny_private,
    fetch: deps.fetch,
  });
  // Each subsystem proposes its own commands and follows its own effects.
  const jobsLog = subsystemLog<Command, Effect, NodeCommand>(log, JOB_EFFECT_KINDS);
  const workersLog = subsystemLog<WorkerCommand, WorkerEffect, NodeCommand>(
    log,
    WORKER_EFFECT_KINDS,
  );
  const workerLeaderOptions = (): WorkerLeaderOptions => ({
    clock,
    log: workersLog,
    state: workersState,
    db,
    logger,
    metrics,
    loadJobs: async (ids) => {
      const found = new Map<string, JobRecord>();
      for (const id of ids) {
        const job = await service.get(id).catch(() => null);
        if (job !== null) found.set(id, job);
      }
      return found;
    },
    ttl_ms: config.worker_ttl_ms,
    default_lease_ms: config.inprogress_timeout_ms,
    default_strategy: config.placement_strategy,
  });
  // Each attempt runs as a webhook call, or on workers when the job has a worker executor.
  const dispatcherFor = (workers: WorkerLeader): Dispatcher => ({
    run: (attempt, signal) =>
      attempt.job.executor === null ? webhooks.run(attempt, signal) : workers.run(attempt, signal),
  });
  const schedulerOptions = (workers: WorkerLeader): SchedulerOptions => ({
    clock,
    log: jobsLog,
    state,
    db,
    logger,
    metrics,
    max_inflight: config.max_inflight_deliveries,
    dispatcher: dispatcherFor(workers),
    backoff: { base_ms: config.retry_backoff_base_ms, max_ms: config.retry_backoff_max_ms },
    history: {
      retention_ms: config.history_retention_ms,
      per_job_max: config.history_per_job,
    },
    onFatal: (loop, error) => vitals.fail(loop, error),
    fault: deps.fault,
  });
  const service = new JobService(db, jobsLog, state, clock, {
    job_limit: config.queue_job_limit,
    default_catchup_window_ms: config.catchup_window_ms,
    default_max_attempts: config.max_attempts,
    default_timeout_ms: config.execution_timeout_ms,
    memory_limit_bytes: memory_limit,
    memory_bytes: () => rss,
    deny_private_targets: config.webhook_deny_private,
  });

  const workersService = new WorkersService(db, workersLog, workersState, clock, {
    leader: () => workerLeader,
    ttl_ms: config.worker_ttl_ms,
  });

  let counts: { at_ms: number; by_status: Record<string, number> } = { at_ms: 0, by_status: {} };
  const countByStatus = () => {
    if (Date.now() - counts.at_ms > COUNTS_CACHE_MS) {
      const by_status: Record<string, number> = {};
      for (const job of state.jobs.values()) {
        by_status[job.status] = (by_status[job.status] ?? 0) + 1;
      }
      counts = { at_ms: Date.now(), by_status };
    }
    return counts.by_status;
  };

  let url = "";
  const appDeps: AppDeps = {
    service,
    workers: {
      workers: workersService,
      jobPayload: async (job_id) => (await service.get(job_id)).payload,
      ttl_ms: config.worker_ttl_ms,
    },
    logger,
    batch_max_jobs: config.batch_max_jobs,
    max_body_bytes: config.max_body_bytes,
    input_limits: inputLimits(config),
    onCreated: (n) => metrics.jobsCreated.inc(n),
    onRejected: (reason) => metrics.rejections.inc({ reason }),
    onDeleted: () => metrics.jobsDeleted.inc(),
    auth: {
      admin_tokens: config.api_tokens_admin,
      read_tokens: config.api_tokens_read,
      open_health: config.auth_open_health,
      cluster_secret: cluster === null ? "" : config.cluster_secret,
      onRefused: (reason) => metrics.apiUnauthorized.inc({ reason }),
    },
    cluster: cluster === null ? undefined : {
      raft: cluster.routes,
      api: {
        self: cluster.self.name,
        isLeader: () => cluster.log.isLeader(),
        leader: () => cluster.leader(),
        join: (name, address) => cluster.join(name, address),
        remove: (name) => cluster.remove(name),
        transferLeadership: (to) => cluster.transferLeadership(to),
        readBarrier: () => cluster.log.readBarrier(),
        fly_replay: envGet("FLY_APP_NAME") !== undefined,
      },
    },
    node: {
      node_id: cluster?.self.name ?? config.node_id,
      health: () => {
        const status = cluster?.log.status();
        const failure = vitals.failure;
        return {
          status: failure !== null
            ? "failed"
            : metrics.recentOutcomes.summary.failure_ratio > config.health_failure_threshold
            ? "degraded"
            : "ok",
          ...(failure === null ? {} : { failure: { loop: failure.loop, error: failure.message } }),
          node_id: cluster?.self.name ?? config.node_id,
          mode: cluster === null ? "single" : "cluster",
          role: status?.role ?? "leader",
          leader: cluster === null ? config.node_id : cluster.leader()?.name ?? null,
          firing: scheduler !== null,
          uptime_seconds: Math.round((Date.now() - started_ms) / 1_000),
          applied_index: log.applied_index,
          jobs: {
            total: state.jobs.size,
            limit: config.queue_job_limit,
            by_status: countByStatus(),
          },
          queue: {
            timer_entries: scheduler?.timerSize ?? 0,
            inflight_deliveries: scheduler?.inflight ?? 0,
            max_inflight_deliveries: config.max_inflight_deliveries,
            proposals_queued: log.queued_commands,
          },
          deliveries: {
            ...metrics.recentOutcomes.summary,
            failure_threshold: config.health_failure_threshold,
          },
          memory: {
            rss_bytes: rss,
            limit_bytes: memory_limit,
            utilization_percent: Math.round(rss / memory_limit * 1_000) / 10,
          },
        };
      },
      ready: () => {
        const failure = vitals.failure;
        const status = cluster?.log.status();
        const leader = cluster === null ? config.node_id : cluster.leader()?.name ?? null;
        const commit_index = status?.commit ?? log.applied_index;
        const lag = Math.max(0, commit_index - log.applied_index);
        const reason = failure !== null
          ? `${failure.loop} stopped: ${failure.message}`
          : leader === null
          ? "no leader is known"
          : lag > READY_LAG_MAX_ENTRIES
          ? `applying the log: ${lag} committed entries behind`
          : null;
        return {
          ready: reason === null,
          reason,
          leader,
          applied_index: log.applied_index,
          commit_index,
        };
      },
      cluster: () =>
        cluster?.view() ?? {
          node_id: config.node_id,
          role: "leader",
          leader: config.node_id,
          term: 1,
          commit_index: log.applied_index,
          applied_index: log.applied_index,
          members: [{
            id: config.node_id,
            address: url,
            role: "voter",
            match_index: log.applied_index,
            lag: 0,
          }],
        },
      metricsText: () => metrics.registry.metrics(),
      observeRequest: (method, route, status, seconds) =>
        metrics.httpDuration.observe({ method, route, status: String(status) }, seconds),
    },
  };
  const app = createApp({
    ...appDeps,
    home: {
      path: "/console",
      app: consoleRoutes({ ...appDeps, lateness: metrics.recentLateness }),
    },
  });

  if (config.api_tokens_admin.length === 0 && config.api_tokens_read.length === 0) {
    logger.warn("the API is unauthenticated: anyone who reaches the port can change jobs", {
      fix: "set API_TOKENS_ADMIN (and API_TOKENS_READ for read-only clients)",
    });
  }
  const server = serveHttp(app.fetch, { hostname: config.host, port: config.http_port });
  const port = server.port;
  url = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`;
  if (cluster === null) startFiring();
  logger.info("node started", {
    url,
    data_dir: config.data_dir,
    jobs: state.jobs.size,
    applied_index: log.applied_index,
    active_executions: state.active.size,
    load_ms: Math.round(performance.now() - load_started),
    mode: cluster === null ? "single" : "cluster",
    runtime: runtimeVersion(),
  });

  let stopped = false;
  const stop = async (grace_ms = 5_000) => {
    if (stopped) return;
    stopped = true;
    await stopFiring(grace_ms);
    await cluster?.stop();
    workersService.close();
    await server.shutdown();
    clearInterval(sampler);
    local?.close();
    db.close();
    logger.info("node stopped");
  };
  return { url, port, stop, fatal: vitals.failed };
}

/** Workers by status, pending allocations, capacity and allocated per pool and resource. */
function sampleWorkers(metrics: NodeMetrics, workers: WorkersState): void {
  const by_status = { ready: 0, draining: 0, lost: 0 };
  const capacity = new Map<string, Resources>();
  const allocated = new Map<string, Resources>();
  const zero = (): Resources => ({ cpu_millis: 0, memory_mb: 0, disk_mb: 0, slots: 0 });
  for (const w of workers.workers.values()) {
    by_status[w.status]++;
    const held = workers.allocated(w.id);
    const cap = capacity.get(w.pool) ?? zero();
    const all = allocated.get(w.pool) ?? zero();
    for (const r of RESOURCE_NAMES) {
      cap[r] += w.capacity[r];
      all[r] += held[r];
    }
    capacity.set(w.pool, cap);
    allocated.set(w.pool, all);
  }
  for (const [status, n] of Object.entries(by_status)) metrics.workersByStatus.set({ status }, n);
  let pending = 0;
  for (const a of workers.active.values()) if (a.status === "pending") pending++;
  metrics.pendingAllocations.set(pending);
  for (const [pool, cap] of capacity) {
    for (const r of RESOURCE_NAMES) {
      metrics.workerCapacity.set({ pool, resource: r }, cap[r]);
      metrics.workerAllocated.set({ pool, resource: r }, allocated.get(pool)![r]);
    }
  }
}
