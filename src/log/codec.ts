/**
 * The checked JSON of log entries: a command or an entry that does not encode or decode is a
 * {@link CommandCodecError}, never another exception, so a bad proposal is a 400 to its proposer
 * and a bad committed entry is refused the same way on every node. Each state machine checks the
 * shape of its own commands (`StateMachine.check`).
 *
 * @module
 */
import { ValidationError } from "../errors.ts";

/**
 * A command (or a log entry) is not a valid encoding: a field has the wrong type or range, a
 * free-form value is too deep or too large, the text is not JSON, or a value cannot be encoded.
 * A `ValidationError`, so a proposer whose command is refused gets a 400 naming the field.
 */
export class CommandCodecError extends ValidationError {
  override name = "CommandCodecError";

  constructor(readonly path: string, readonly reason: string) {
    super(`${path === "" ? "command" : path}: ${reason}`, [{ path, message: reason }]);
  }

  /**
   * `error` (thrown while checking the value at `prefix`) as a codec error whose path starts
   * with `prefix`. Anything else thrown (a getter or a proxy in an in-memory value) becomes one.
   */
  static within(error: unknown, prefix: string | number): CommandCodecError {
    if (!(error instanceof CommandCodecError)) {
      return new CommandCodecError(String(prefix), `cannot be read (${String(error)})`);
    }
    return new CommandCodecError(
      error.path === "" ? String(prefix) : `${prefix}.${error.path}`,
      error.reason,
    );
  }
}

/** `JSON.stringify` that cannot throw anything but {@link CommandCodecError}. */
export function stringifyChecked(value: unknown, what: string): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new CommandCodecError(
      "",
      `the ${what} cannot be encoded (${(error as Error).name}: ${(error as Error).message})`,
    );
  }
}

/** `JSON.parse` that cannot throw anything but {@link CommandCodecError}. */
export function parseChecked(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CommandCodecError("", `the ${what} is not JSON (${(error as Error).message})`);
  }
}
