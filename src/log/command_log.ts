/**
 * The log every change goes through. Every change is proposed as commands; the promise resolves
 * once they are durable and applied by the node's state machine, with one result per command. A
 * single node commits at once (`LocalLog`); a Raft cluster commits on a quorum behind the same
 * interface (`src/cluster/replicated_log.ts`).
 *
 * A subsystem sees the log through its own command and effect types: it proposes only its
 * commands, and its effects listener is given every sub-machine's effects and acts on its own
 * kinds only.
 */
import type { ApplyResult } from "./state_machine.ts";

export interface CommandLog<C, E> {
  /** Appends `commands` as one unit, waits until they are committed and applied. */
  propose(commands: C[]): Promise<ApplyResult[]>;
  /** Index of the last applied log entry. */
  readonly applied_index: number;
  /** Whether this node may fire jobs now (the leader, while its term holds). */
  canFire(): boolean;
  /**
   * Calls `listener` after each commit with the effects of the commands it applied, in order.
   * Returns a function that stops the calls.
   */
  onEffects(listener: (effects: E[]) => void): () => void;
}

/** The log refused a proposal because too many commands wait already (HTTP 503). */
export class LogOverloadedError extends Error {}

/**
 * The log refused this proposal for a reason that passes (a leadership transfer under way, a
 * membership change pending): the same proposal may succeed shortly.
 */
export class LogRefusedError extends Error {}

/** The log cannot write any more (a failed fsync or a broken file); the node must restart. */
export class LogFailedError extends Error {}

/** This node is not the leader; the HTTP layer forwards or redirects to the one named here. */
export class NotLeaderError extends Error {
  constructor(
    message: string,
    readonly leader_name: string | null,
    readonly leader_address: string | null,
  ) {
    super(message);
  }
}

/**
 * One subsystem's view of the node's log: it proposes its own commands and its listeners are
 * given only the effects whose `kind` it owns (`kinds`), so each subsystem handles its own effect
 * types and never sees another's.
 */
export function subsystemLog<C extends TE, E extends { kind: string }, TE = C>(
  log: CommandLog<TE, { kind: string }>,
  kinds: ReadonlySet<E["kind"]>,
): CommandLog<C, E> {
  return {
    propose: (commands) => log.propose(commands),
    get applied_index() {
      return log.applied_index;
    },
    canFire: () => log.canFire(),
    onEffects(listener) {
      return log.onEffects((effects) => {
        const own = effects.filter((e): e is E => kinds.has(e.kind));
        if (own.length > 0) listener(own);
      });
    },
  };
}
