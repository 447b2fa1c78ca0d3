/**
 * The proposals waiting for a commit, shared by both logs: bounded in commands (a proposal that
 * would pass `queue_max` is refused with `LogOverloadedError`, HTTP 503), taken in groups of at
 * most `batch_max` commands for one commit (group commit).
 *
 * @module
 */
import { LogOverloadedError } from "./command_log.ts";
import type { ApplyResult } from "./state_machine.ts";

/** One caller's commands, applied in order, answered together. */
export interface Proposal<C> {
  commands: C[];
  resolve: (results: ApplyResult[]) => void;
  reject: (error: Error) => void;
}

export class ProposalQueue<C> {
  #proposals: Proposal<C>[] = [];
  #queued_commands = 0;
  readonly #queue_max: number;
  readonly #onQueued: (commands: number) => void;

  /** `onQueued` is told the number of waiting commands whenever it changes. */
  constructor(queue_max: number, onQueued: (commands: number) => void = () => {}) {
    this.#queue_max = queue_max;
    this.#onQueued = onQueued;
  }

  /** Commands waiting. */
  get queued_commands(): number {
    return this.#queued_commands;
  }

  /** Whether nothing waits. */
  get empty(): boolean {
    return this.#proposals.length === 0;
  }

  /** Queues `commands`; resolves with their results once committed and applied. */
  push(commands: C[]): Promise<ApplyResult[]> {
    if (this.#queued_commands + commands.length > this.#queue_max) {
      return Promise.reject(
        new LogOverloadedError(
          `${this.#queued_commands} commands are waiting for a commit (limit PROPOSAL_QUEUE_MAX=${this.#queue_max}); retry shortly`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#proposals.push({ commands, resolve, reject });
      this.#queued_commands += commands.length;
      this.#onQueued(this.#queued_commands);
    });
  }

  /** Takes the next proposals, up to `batch_max` commands (always at least one proposal). */
  take(batch_max: number): Proposal<C>[] {
    const batch: Proposal<C>[] = [];
    let count = 0;
    while (this.#proposals.length > 0) {
      const next = this.#proposals[0];
      if (batch.length > 0 && count + next.commands.length > batch_max) break;
      batch.push(this.#proposals.shift()!);
      count += next.commands.length;
    }
    this.#queued_commands -= count;
    this.#onQueued(this.#queued_commands);
    return batch;
  }

  /** Rejects every waiting proposal with `error`. */
  rejectAll(error: Error): void {
    const proposals = this.#proposals;
    this.#proposals = [];
    this.#queued_commands = 0;
    for (const p of proposals) p.reject(error);
    this.#onQueued(0);
  }
}
