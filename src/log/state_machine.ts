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
import { CommandCodecError } from "./codec.ts";

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
  /**
   * The statements the log writes in one transaction with the entry (`Database.write`), each
   * through a prepared statement cached by its SQL text. So the SQL text of a statement must
   * come from a fixed set of strings, with every value bound as an argument: no variable-length
   * `IN (?,?,…)` and no multi-row `VALUES` of arbitrary count (cut the rows with `fixedChunks`
   * of src/db/statement_cache.ts into a few fixed sizes), no values spliced into the text. A
   * text built per call is prepared again on every write and evicts the statements that hit.
   */
  statements: InStatement[];
  effects: E[];
}

/** A state machine over tables of the node's state file. */
export interface StateMachine<C extends TypedCommand, E> {
  /** The command types this machine applies. */
  readonly command_types: readonly C["type"][];
  /**
   * Checks commands (a proposal before it is queued, an entry's commands after they are read
   * back): every field's type and range, the size of free-form values. Returns them typed, or
   * throws a {@link CommandCodecError} naming the field (a 400 for a proposer).
   */
  check(commands: readonly unknown[]): C[];
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
  const ownerOf = (command: unknown, i: number) => {
    const type = typeof command === "object" && command !== null
      ? (command as { type?: unknown }).type
      : undefined;
    const owner = typeof type === "string" ? owners.get(type) : undefined;
    if (owner === undefined) {
      throw new CommandCodecError(`${i}.type`, `no state machine applies command type ${type}`);
    }
    return owner;
  };
  return {
    command_types: [...owners.keys()] as C["type"][],
    check(commands) {
      if (!Array.isArray(commands)) throw new CommandCodecError("", "must be an array of commands");
      if (parts.length === 1) {
        commands.forEach(ownerOf);
        return parts[0].check(commands);
      }
      return commands.map((command, i) => {
        try {
          return ownerOf(command, i).check([command])[0];
        } catch (error) {
          throw CommandCodecError.within(error, i);
        }
      });
    },
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
