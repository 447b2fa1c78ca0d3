/**
 * The single-node log: commits at once, with group commit. Proposals that arrive while a write
 * is in progress wait and go together into the next transaction, so many concurrent creates share
 * one fsync. A transaction holds at most `batch_max` commands, which bounds how long the
 * (synchronous) libSQL write blocks the event loop.
 *
 * Each group commit is one log entry, applied in the same transaction as it is appended: the
 * tables and `meta.applied_index` never disagree. If a write fails, the in-memory index may be
 * ahead of the disk, so the log stops accepting anything and reports the failure; the node exits
 * and rebuilds from the file on restart.
 */
import type { InStatement } from "@libsql/client/node";
import type { Database } from "../db/open.ts";
import type { Logger } from "../logger.ts";
import { encodeValidatedCommands, validateCommands } from "../scheduler/command_codec.ts";
import type { ApplyResult, Command } from "../scheduler/commands.ts";
import { type CommandLog, LogFailedError, LogOverloadedError } from "../scheduler/log.ts";
import type { Effect, SchedulerState } from "../scheduler/state.ts";

/** Log entries kept behind the applied index; older ones are compacted away. */
const LOG_RETAIN_ENTRIES = 1_000;

interface Proposal {
  commands: Command[];
  resolve: (results: ApplyResult[]) => void;
  reject: (error: Error) => void;
}

/** Observations for metrics. */
export interface LogObserver {
  committed(commands: number, duration_ms: number, index: number): void;
  queued(commands: number): void;
}

export interface LocalLogOptions {
  batch_max: number;
  queue_max: number;
  logger: Logger;
  observer?: LogObserver;
  /** Called once when a write fails; the node should stop. */
  onFatal?: (error: Error) => void;
}

export class LocalLog implements CommandLog {
  #queue: Proposal[] = [];
  #queued_commands = 0;
  #flushing = false;
  readonly #channel = new MessageChannel();
  readonly #wakePort = this.#channel.port2;
  #failed: Error | null = null;
  #applied_index = 0;
  #listeners: ((effects: Effect[]) => void)[] = [];

  private constructor(
    private readonly db: Database,
    private readonly state: SchedulerState,
    private readonly options: LocalLogOptions,
  ) {}

  /** Opens the log over a loaded state: reads the applied index. */
  static async open(
    db: Database,
    state: SchedulerState,
    options: LocalLogOptions,
  ): Promise<LocalLog> {
    const log = new LocalLog(db, state, options);
    log.#channel.port1.onmessage = () => log.#flushLoop();
    const row = await db.client.execute("SELECT value FROM meta WHERE key = 'applied_index'");
    log.#applied_index = row.rows.length === 0 ? 0 : Number(row.rows[0].value);
    return log;
  }

  /** Stops the flush wake-up port (the node is stopping; nothing more is proposed). */
  close(): void {
    this.#channel.port1.close();
    this.#channel.port2.close();
  }

  get applied_index(): number {
    return this.#applied_index;
  }

  get queued_commands(): number {
    return this.#queued_commands;
  }

  canFire(): boolean {
    return this.#failed === null;
  }

  onEffects(listener: (effects: Effect[]) => void): () => void {
    this.#listeners.push(listener);
    return () => this.#listeners = this.#listeners.filter((l) => l !== listener);
  }

  propose(commands: Command[]): Promise<ApplyResult[]> {
    if (this.#failed !== null) {
      return Promise.reject(new LogFailedError(`storage failed: ${this.#failed.message}`));
    }
    if (this.#queued_commands + commands.length > this.options.queue_max) {
      return Promise.reject(
        new LogOverloadedError(
          `${this.#queued_commands} commands are waiting for a commit (limit PROPOSAL_QUEUE_MAX=${this.options.queue_max}); retry shortly`,
        ),
      );
    }
    try {
      validateCommands(commands);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ commands, resolve, reject });
      this.#queued_commands += commands.length;
      this.options.observer?.queued(this.#queued_commands);
      if (!this.#flushing) {
        this.#flushing = true;
        this.#yieldThenFlush();
      }
    });
  }

  /**
   * Starts the flush after one turn of the event loop rather than at once: the libSQL write is
   * synchronous, so requests that arrive during it are only read when the loop turns, and a
   * flush started from a microtask would commit each of them alone. A message port costs ~40 µs
   * (a zero timer ~1-2 ms), so a lone client barely waits.
   */
  #yieldThenFlush(): void {
    this.#wakePort.postMessage(null);
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failed === null) await this.#flushOnce();
    } finally {
      this.#flushing = false;
    }
  }

  async #flushOnce(): Promise<void> {
    const batch: Proposal[] = [];
    let count = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0];
      if (batch.length > 0 && count + next.commands.length > this.options.batch_max) break;
      batch.push(this.#queue.shift()!);
      count += next.commands.length;
    }
    this.#queued_commands -= count;
    const index = this.#applied_index + 1;
    const started_ms = performance.now();
    const statements: InStatement[] = [{
      sql: "INSERT INTO log_entries (idx, term, data) VALUES (?, 1, ?)",
      args: [index, encodeValidatedCommands(batch.flatMap((p) => p.commands))],
    }];
    const results: ApplyResult[][] = [];
    const effects: Effect[] = [];
    for (const proposal of batch) {
      const own: ApplyResult[] = [];
      for (const command of proposal.commands) {
        const applied = this.state.apply(command);
        own.push(applied.result);
        statements.push(...applied.statements);
        effects.push(...applied.effects);
      }
      results.push(own);
    }
    statements.push({
      sql:
        "INSERT INTO meta (key, value) VALUES ('applied_index', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      args: [String(index)],
    });
    if (index % 100 === 0 && index > LOG_RETAIN_ENTRIES) {
      statements.push({
        sql: "DELETE FROM log_entries WHERE idx <= ?",
        args: [index - LOG_RETAIN_ENTRIES],
      });
    }
    try {
      await this.db.client.batch(statements, "write");
    } catch (error) {
      this.#fail(error as Error, batch);
      return;
    }
    this.#applied_index = index;
    this.options.observer?.committed(count, performance.now() - started_ms, index);
    batch.forEach((proposal, i) => proposal.resolve(results[i]));
    if (effects.length > 0) { for (const listener of this.#listeners) listener(effects); }
  }

  #fail(error: Error, batch: Proposal[]): void {
    this.#failed = error;
    this.options.logger.error("log write failed; the node stops accepting writes", { error });
    const failure = new LogFailedError(`storage failed: ${error.message}`);
    for (const proposal of [...batch, ...this.#queue]) proposal.reject(failure);
    this.#queue = [];
    this.#queued_commands = 0;
    this.options.onFatal?.(error);
  }
}
