/**
 * The data of a normal Raft entry of the replicated log: UTF-8 JSON, either `{"c": Command[][]}`
 * (the proposals of one group commit, each applied in order) or `{"m": member}` (an address
 * book entry of the cluster). Decoding validates the whole shape and every command (with the
 * state machine's `check`) and throws only {@link CommandCodecError}: a committed
 * entry that does not decode is refused the same way on every node (same bytes, same checks),
 * never an exception in the apply loop.
 *
 * @module
 */
import { CommandCodecError, parseChecked, stringifyChecked } from "../log/codec.ts";
import type { NodeId } from "../raft/types.ts";

/** One node of the cluster's address book. */
export interface Member {
  id: NodeId;
  name: string;
  address: string;
}

/** What a normal entry carries. */
export type EntryData<C> = { c: C[][] } | { m: Member };

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Most characters of a member's name and address. */
const MEMBER_TEXT_CHARS_MAX = 65_536;

function checkMember(value: unknown): Member {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CommandCodecError("m", "must be an object {id, name, address}");
  }
  const m = value as Record<string, unknown>;
  if (!Number.isSafeInteger(m.id) || (m.id as number) < 1) {
    throw new CommandCodecError("m.id", "must be a node id ≥ 1");
  }
  for (const key of ["name", "address"]) {
    const v = m[key];
    if (typeof v !== "string" || v.length === 0 || v.length > MEMBER_TEXT_CHARS_MAX) {
      throw new CommandCodecError(
        `m.${key}`,
        `must be a string of 1 to ${MEMBER_TEXT_CHARS_MAX} characters`,
      );
    }
  }
  return value as Member;
}

/**
 * Encodes entry data. The proposals of `{c}` must each have passed the state machine's `check` when they
 * were proposed (they are not checked twice on this path); a member is checked here. Throws only
 * {@link CommandCodecError}.
 */
export function encodeEntryData<C>(data: EntryData<C>): Uint8Array {
  if ("m" in data) checkMember(data.m);
  return utf8.encode(stringifyChecked(data, "entry"));
}

/**
 * Decodes and validates entry data, each proposal's commands with `check`; throws only
 * {@link CommandCodecError}.
 */
export function decodeEntryData<C>(
  bytes: Uint8Array,
  check: (commands: readonly unknown[]) => C[],
): EntryData<C> {
  let text: string;
  try {
    text = utf8Strict.decode(bytes);
  } catch {
    throw new CommandCodecError("", "the entry is not valid UTF-8");
  }
  const value = parseChecked(text, "entry");
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CommandCodecError("", 'the entry must be an object {"c": [...]} or {"m": {...}}');
  }
  const data = value as Record<string, unknown>;
  const keys = Object.keys(data);
  if (keys.length !== 1 || (keys[0] !== "c" && keys[0] !== "m")) {
    throw new CommandCodecError("", 'the entry must have exactly one key, "c" or "m"');
  }
  if (keys[0] === "m") return { m: checkMember(data.m) };
  const proposals = data.c;
  if (!Array.isArray(proposals)) throw new CommandCodecError("c", "must be an array of arrays");
  for (let i = 0; i < proposals.length; i++) {
    const commands = proposals[i];
    if (!Array.isArray(commands)) {
      throw new CommandCodecError(`c.${i}`, "must be an array of commands");
    }
    try {
      check(commands);
    } catch (error) {
      throw CommandCodecError.within(error, `c.${i}`);
    }
  }
  return { c: proposals as C[][] };
}
