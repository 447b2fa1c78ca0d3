/**
 * The replicated state machine the logs apply, made of sub-machines (the jobs today; workers,
 * namespaces and pools next). Each sub-machine owns its command types, its tables and its
 * effects; `composeStateMachines` is the one place that routes a command to its owner. Applying
 * is deterministic: the same command on the same state gives the same result, statements and
 * effects on every node.
 *
 * @module
 */
import type { InStatement } from "@libsql/client/node";
import type { Database } from "../db/open.ts";

/** Why a command was not applied. The HTTP layer maps codes to status codes in one place. */
export type ApplyErrorCode = "not_found" | "conflict" | "capacity" | "stale" | "invalid";

/** What applying one command returned to its proposer. */
export type ApplyResult =
  | { ok: true; created?: { id: string; created: boolean }[] }
  | { ok: false; code: ApplyErrorCode; message: string };

/** Every command names its type; a sub-machine owns a fixed set of types. */
export interface TypedCommand {
  type: string;
}

/** Output of applying one command: the result, the SQL that makes it durable, the effects. */
export interface Applied<E> {
  result: ApplyResult;
  statements: InStatement[];
  effects: E[];
}

/** A state machine over tables of the node's state file. */
export interface StateMachine<C extends TypedCommand, E> {
  /** The command types this machine applies. */
  readonly command_types: readonly C["type"][];
  /** Rebuilds the in-memory index from the tables (at start, or after a snapshot install). */
  load(db: Database): Promise<void>;
  /** Applies one command; a command that does not fit the state is a result, never a throw. */
  apply(command: C): Applied<E>;
}

/**
 * One state machine made of `parts`, each applying its own command types. A type claimed by two
 * parts is a programming error, found at start.
 */
export function composeStateMachines<C extends TypedCommand, E>(
  parts: readonly StateMachine<C, E>[],
): StateMachine<C, E> {
  const owners = new Map<string, StateMachine<C, E>>();
  for (const part of parts) {
    for (const type of part.command_types) {
      if (owners.has(type)) throw new Error(`two state machines claim command type ${type}`);
      owners.set(type, part);
    }
  }
  return {
    command_types: [...owners.keys()] as C["type"][],
    async load(db) {
      for (const part of parts) await part.load(db);
    },
    apply(command) {
      const owner = owners.get(command.type);
      if (owner === undefined) {
        return {
          result: {
            ok: false,
            code: "invalid",
            message: `no state machine applies command type ${command.type}`,
          },
          statements: [],
          effects: [],
        };
      }
      return owner.apply(command);
    },
  };
}
