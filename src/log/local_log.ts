/**
 * The single-node log: commits at once, with group commit. Proposals that arrive while a write
 * is in progress wait and go together into the next transaction, so many concurrent creates share
 * one fsync. A transaction holds at most `batch_max` commands, which bounds how long the
 * (synchronous) libSQL write blocks the event loop.
 *
 * Each group commit is one log entry, applied in the same transaction as it is appended: the
 * tables and `meta.applied_index` never disagree. If a write (or anything else in the flush)
 * fails, the in-memory index may be ahead of the disk, so the log stops accepting anything,
 * rejects every waiting proposal and reports the failure; the node exits and rebuilds from the
 * file on restart. A failure in an effects listener (the timer, the dispatcher) after a commit
 * is reported the same way: the commit stands, but nothing would act on it.
 */
import type { InStatement } from "@libsql/client/node";
import type { Database } from "../db/open.ts";
import type { Logger } from "../logger.ts";
import type { FaultHook, VitalLoop } from "../faults.ts";
import { type CommandLog, LogFailedError } from "./command_log.ts";
import { type Proposal, ProposalQueue } from "./proposal_queue.ts";
import type { ApplyResult, StateMachine, TypedCommand } from "./state_machine.ts";
import { stringifyChecked } from "./codec.ts";

/** Log entries kept behind the applied index; older ones are compacted away. */
const LOG_RETAIN_ENTRIES = 1_000;

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
  /** Called once when the flush or an effects listener fails; the node must stop. */
  onFatal?: (loop: VitalLoop, error: Error) => void;
  /** Test-only fault injection at `log.flush` and `apply.effects`. */
  fault?: FaultHook;
}

export class LocalLog<C extends TypedCommand, E> implements CommandLog<C, E> {
  readonly #queue: ProposalQueue<C>;
  #flushing = false;
  readonly #channel = new MessageChannel();
  readonly #wakePort = this.#channel.port2;
  #failed: Error | null = null;
  #applied_index = 0;
  #listeners: ((effects: E[]) => void)[] = [];
  readonly #db: Database;
  readonly #machine: StateMachine<C, E>;
  readonly #options: LocalLogOptions;

  private constructor(db: Database, machine: StateMachine<C, E>, options: LocalLogOptions) {
    this.#db = db;
    this.#machine = machine;
    this.#options = options;
    this.#queue = new ProposalQueue(options.queue_max, (n) => options.observer?.queued(n));
  }

  /** Opens the log over a loaded state machine: reads the applied index. */
  static async open<C extends TypedCommand, E>(
    db: Database,
    machine: StateMachine<C, E>,
    options: LocalLogOptions,
  ): Promise<LocalLog<C, E>> {
    const log = new LocalLog(db, machine, options);
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
    return this.#queue.queued_commands;
  }

  canFire(): boolean {
    return this.#failed === null;
  }

  onEffects(listener: (effects: E[]) => void): () => void {
    this.#listeners.push(listener);
    return () => this.#listeners = this.#listeners.filter((l) => l !== listener);
  }

  propose(commands: C[]): Promise<ApplyResult[]> {
    if (this.#failed !== null) {
      return Promise.reject(new LogFailedError(`storage failed: ${this.#failed.message}`));
    }
    try {
      this.#machine.check(commands);
    } catch (error) {
      return Promise.reject(error);
    }
    const queued = this.#queue.push(commands);
    if (!this.#flushing && !this.#queue.empty) {
      this.#flushing = true;
      this.#yieldThenFlush();
    }
    return queued;
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
      while (!this.#queue.empty && this.#failed === null) await this.#flushOnce();
    } catch (error) {
      this.#fail("log_flush", error as Error, []);
    } finally {
      this.#flushing = false;
    }
  }

  async #flushOnce(): Promise<void> {
    const batch = this.#queue.take(this.#options.batch_max);
    let committed: { results: ApplyResult[][]; effects: E[] };
    try {
      committed = await this.#commit(batch);
    } catch (error) {
      this.#fail("log_flush", error as Error, batch);
      return;
    }
    batch.forEach((proposal, i) => proposal.resolve(committed.results[i]));
    if (committed.effects.length === 0) return;
    try {
      this.#options.fault?.("apply.effects");
      for (const listener of this.#listeners) listener(committed.effects);
    } catch (error) {
      this.#fail("apply", error as Error, []);
    }
  }

  /** Applies `batch` and writes it with the log entry in one transaction. */
  async #commit(
    batch: Proposal<C>[],
  ): Promise<{ results: ApplyResult[][]; effects: E[] }> {
    this.#options.fault?.("log.flush");
    const count = batch.reduce((n, p) => n + p.commands.length, 0);
    const index = this.#applied_index + 1;
    const started_ms = performance.now();
    const statements: InStatement[] = [{
      sql: "INSERT INTO log_entries (idx, term, data) VALUES (?, 1, ?)",
      args: [index, stringifyChecked(batch.flatMap((p) => p.commands), "commands")],
    }];
    const results: ApplyResult[][] = [];
    const effects: E[] = [];
    for (const proposal of batch) {
      const own: ApplyResult[] = [];
      for (const command of proposal.commands) {
        const applied = this.#machine.apply(command);
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
    await this.#db.write(statements);
    this.#applied_index = index;
    this.#options.observer?.committed(count, performance.now() - started_ms, index);
    return { results, effects };
  }

  #fail(loop: VitalLoop, error: Error, batch: Proposal<C>[]): void {
    if (this.#failed !== null) return;
    this.#failed = error;
    this.#options.logger.error("the log stopped; the node stops accepting writes", {
      loop,
      error: error.message,
    });
    const failure = new LogFailedError(`storage failed: ${error.message}`);
    for (const proposal of batch) proposal.reject(failure);
    this.#queue.rejectAll(failure);
    this.#options.onFatal?.(loop, error);
  }
}
