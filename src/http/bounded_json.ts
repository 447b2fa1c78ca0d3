/**
 * The bounded JSON reader: every JSON request body is parsed here, so that no body can overflow
 * the stack or hold a shape the rest of the node cannot carry (issue 9).
 *
 * Three steps, each linear in the body and none recursive:
 * 1. {@link prescanDepth} walks the raw text once and refuses a body nested deeper than the limit
 *    before `JSON.parse` allocates it. (V8's `JSON.parse` is iterative, but `JSON.stringify` and
 *    every recursive walker downstream are not: a 200 KB `[[[[…]]]]` payload used to end the
 *    node's log loop with a RangeError in the group-commit flush.)
 * 2. `JSON.parse`.
 * 3. {@link checkShape} walks the parsed value with an explicit stack: keys per object, items per
 *    array, string lengths, well-formed strings without NUL outside `payload`, and the encoded size of
 *    `payload` and `headers`.
 *
 * A body is an envelope around fields: a job's fields are the keys of the body object
 * (`field_depth` 1); a batch's are the keys of each item of `jobs` (`field_depth` 3, paths like
 * `jobs.3.payload`). Errors name the field, the limit and its setting: a shape over a limit is a
 * `ValidationError` (400), a size over a limit a `PayloadTooLargeError` (413).
 *
 * @example
 * ```ts
 * const limits = inputLimits(defaultConfig());
 * parseBoundedJson('{"jobs":[{"payload":[1]}]}', limits, 3); // { jobs: [{ payload: [1] }] }
 * parseBoundedJson(`{"payload":${"[".repeat(100)}${"]".repeat(100)}}`, limits, 1);
 * // throws ValidationError: payload nests deeper than 64 levels (INPUT_MAX_DEPTH) ...
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { type Config, defaultConfig, SETTINGS } from "../config.ts";
import { ValidationError } from "../errors.ts";
import { PayloadTooLargeError } from "./errors.ts";

/** Limits on the shape of a request; see the `INPUT_MAX_*` settings in `src/config.ts`. */
export interface InputLimits {
  /** Nesting levels of arrays and objects inside one field (`[[1]]` is 2). */
  depth_max: number;
  /** Keys of one object, anywhere in the body. */
  keys_max: number;
  /** Items of one array inside a field (a batch's `jobs` is bounded by BATCH_MAX_JOBS). */
  items_max: number;
  /** UTF-16 code units of one string, key or value, anywhere in the body. */
  string_chars_max: number;
  /** `payload` as compact JSON, in UTF-8 bytes. */
  payload_bytes_max: number;
  /** `headers` as compact JSON, in UTF-8 bytes. */
  headers_bytes_max: number;
  /** The query string of a `/jobs` request, in bytes as sent (percent-encoded). */
  query_bytes_max: number;
}

/** The limits of a node's configuration. */
export function inputLimits(config: Config): InputLimits {
  return {
    depth_max: config.input_depth_max,
    keys_max: config.input_keys_max,
    items_max: config.input_items_max,
    string_chars_max: config.input_string_chars_max,
    payload_bytes_max: config.payload_bytes_max,
    headers_bytes_max: config.headers_bytes_max,
    query_bytes_max: config.query_bytes_max,
  };
}

/** The limits of the default configuration, for routes whose deps do not carry them. */
export const DEFAULT_INPUT_LIMITS: InputLimits = inputLimits(defaultConfig());

/**
 * Parses `text` as the JSON value of one field named `field` (a console form's payload) within
 * `limits`; throws as {@link parseBoundedJson}.
 */
export function parseBoundedField(text: string, field: string, limits: InputLimits): unknown {
  prescanDepth(text, limits.depth_max, 0, field);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`invalid ${field}`, [
      { path: field, message: `malformed JSON: ${(error as Error).message}` },
    ]);
  }
  checkField({ value, parent_path: "", name: field }, limits);
  return value;
}

/** `field_depth` of a body whose fields are its own keys (a job, a cancel or join request). */
export const FIELDS_AT_TOP = 1;
/** `field_depth` of a batch body: `{"jobs": [{<fields>}]}`. */
export const FIELDS_IN_BATCH = 3;

/**
 * Parses `text` as JSON within `limits`. An empty (or blank) body is `{}`. Throws
 * `ValidationError` for malformed JSON or a shape over a limit, `PayloadTooLargeError` for a
 * string or field over a size limit.
 */
export function parseBoundedJson(text: string, limits: InputLimits, field_depth: number): unknown {
  if (text.trim() === "") return {};
  prescanDepth(text, limits.depth_max, field_depth);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`malformed JSON body: ${(error as Error).message}`);
  }
  checkShape(value, limits, field_depth);
  return value;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** Index of the quote closing the string that opens at `start`, or the text's last index. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return text.length - 1;
}

/**
 * One pass over the raw text: refuses nesting deeper than `field_depth + depth_max` before
 * anything is allocated, naming the field it happens in. Strings are skipped with `indexOf`, so
 * the cost is one step per character outside strings. Malformed text is left to `JSON.parse`.
 * `field` names the value when the whole text is one field (`field_depth` 0).
 */
export function prescanDepth(
  text: string,
  depth_max: number,
  field_depth: number,
  field = "",
): void {
  const depth_limit = field_depth + depth_max;
  // The position of the scan in each of the envelope's containers, for the error's path.
  const is_object: boolean[] = [];
  const key_start: number[] = [];
  const key_end: number[] = [];
  const index: number[] = [];
  let depth = 0;
  let expect_key = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (expect_key) {
        key_start[depth - 1] = i;
        key_end[depth - 1] = end + 1;
        expect_key = false;
      }
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth > depth_limit) {
        const path = field ||
          envelopePath(text, field_depth, is_object, key_start, key_end, index) || "body";
        const message = `nests deeper than ${depth_max} levels (${SETTINGS.input_depth_max.env})`;
        throw new ValidationError(`${path} ${message}; flatten it`, [{ path, message }]);
      }
      if (depth <= field_depth) {
        is_object[depth - 1] = c === OPEN_BRACE;
        index[depth - 1] = 0;
        key_start[depth - 1] = -1;
        expect_key = c === OPEN_BRACE;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return;
      depth--;
      expect_key = false;
    } else if (c === COMMA && depth >= 1 && depth <= field_depth) {
      index[depth - 1]++;
      expect_key = is_object[depth - 1];
    }
  }
}

function envelopePath(
  text: string,
  field_depth: number,
  is_object: boolean[],
  key_start: number[],
  key_end: number[],
  index: number[],
): string {
  const segments: string[] = [];
  for (let level = 0; level < field_depth; level++) {
    if (!is_object[level]) segments.push(String(index[level]));
    else if (key_start[level] === -1) segments.push("?");
    else {
      const raw = text.slice(key_start[level], key_end[level]);
      segments.push(decodedKey(raw));
    }
  }
  return segments.join(".");
}

function decodedKey(raw: string): string {
  try {
    const key = JSON.parse(raw);
    return typeof key === "string" ? key : raw;
  } catch {
    return raw;
  }
}

/** A field of the body: its value, and its path (built only when an error names it). */
interface Field {
  value: unknown;
  parent_path: string;
  name: string;
}

const fieldPath = (field: Field) =>
  field.parent_path === "" ? field.name : `${field.parent_path}.${field.name}`;

/**
 * The envelope's checks and its fields: objects above `field_depth` have their keys counted,
 * strings their length; the values at `field_depth` are the fields, checked by {@link checkField}.
 */
export function checkShape(value: unknown, limits: InputLimits, field_depth: number): void {
  if (field_depth === 0) {
    checkField({ value, parent_path: "", name: "body" }, limits);
    return;
  }
  if (typeof value === "string") checkString(value, "body", limits);
  if (typeof value !== "object" || value === null) return;
  const stack: { value: object; path: string; level: number }[] = [{ value, path: "", level: 0 }];
  while (stack.length > 0) {
    const { value: container, path, level } = stack.pop()!;
    const is_array = Array.isArray(container);
    const keys = is_array ? null : Object.keys(container);
    if (keys !== null) checkKeys(keys, path || "body", limits);
    const count = keys === null ? (container as unknown[]).length : keys.length;
    for (let i = 0; i < count; i++) {
      const name = keys === null ? String(i) : keys[i];
      if (keys !== null) checkString(name, path || "body", limits);
      const child = keys === null
        ? (container as unknown[])[i]
        : (container as Record<string, unknown>)[name];
      if (level + 1 === field_depth) {
        checkField({ value: child, parent_path: path, name }, limits);
      } else if (typeof child === "object" && child !== null) {
        stack.push({
          value: child,
          path: path === "" ? name : `${path}.${name}`,
          level: level + 1,
        });
      } else if (typeof child === "string") {
        checkString(child, path === "" ? name : `${path}.${name}`, limits);
      }
    }
  }
}

/**
 * Bytes of compact JSON per UTF-16 unit of a string, at most: `\u001f` is 6 bytes for one unit
 * (a lone surrogate too); other units take at most 3 bytes of UTF-8.
 */
const JSON_BYTES_PER_CHAR_MAX = 6;
/** The longest number JSON.stringify writes (`-1.2345678901234567e-300`), with its comma. */
const JSON_NUMBER_BYTES_MAX = 25;

/**
 * One field: every nested value within the limits, then its encoded size. The walk sums an upper
 * bound of the size as it goes, so `JSON.stringify` measures the exact size only of fields that
 * may be over their limit (a 1 KB payload never is).
 */
function checkField(field: Field, limits: InputLimits): void {
  // Outside `payload` strings are stored in text columns, where a lone surrogate or a NUL would
  // not survive (a NUL ends the text); inside it they are stored as escaped JSON and come back
  // as sent.
  const stored_as_text = field.name !== "payload";
  if (typeof field.value !== "object" || field.value === null) {
    if (typeof field.value === "string") {
      checkFieldString(field.value, field, stored_as_text, limits);
      checkFieldSize(field, JSON_BYTES_PER_CHAR_MAX * field.value.length + 2, limits);
    }
    return;
  }
  let bytes_bound = 0;
  const stack: unknown[] = [field.value];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === "string") {
      checkFieldString(value, field, stored_as_text, limits);
      bytes_bound += JSON_BYTES_PER_CHAR_MAX * value.length + 3;
      continue;
    }
    if (typeof value !== "object" || value === null) {
      bytes_bound += JSON_NUMBER_BYTES_MAX;
      continue;
    }
    bytes_bound += 3;
    if (Array.isArray(value)) {
      if (value.length > limits.items_max) {
        shapeError(
          fieldPath(field),
          `holds an array of ${value.length} items, more than ${limits.items_max} (${SETTINGS.input_items_max.env})`,
        );
      }
      for (const item of value) stack.push(item);
      continue;
    }
    let keys = 0;
    // A parsed JSON object has only own, enumerable, string keys: `for…in` sees exactly those,
    // without the array `Object.keys` would allocate.
    for (const key in value) {
      if (++keys > limits.keys_max) checkKeys(Object.keys(value), fieldPath(field), limits);
      checkFieldString(key, field, stored_as_text, limits);
      bytes_bound += JSON_BYTES_PER_CHAR_MAX * key.length + 3;
      stack.push((value as Record<string, unknown>)[key]);
    }
  }
  checkFieldSize(field, bytes_bound, limits);
}

/** The size limits of `payload` and `headers`; other fields are bounded by their schema. */
function checkFieldSize(field: Field, bytes_bound: number, limits: InputLimits): void {
  if (field.name === "payload") {
    checkSize(field, bytes_bound, limits.payload_bytes_max, SETTINGS.payload_bytes_max.env);
  } else if (field.name === "headers") {
    checkSize(field, bytes_bound, limits.headers_bytes_max, SETTINGS.headers_bytes_max.env);
  }
}

function checkFieldString(
  text: string,
  field: Field,
  stored_as_text: boolean,
  limits: InputLimits,
): void {
  if (text.length > limits.string_chars_max) checkString(text, fieldPath(field), limits);
  if (!stored_as_text) return;
  if (!text.isWellFormed()) {
    shapeError(fieldPath(field), "holds a lone UTF-16 surrogate; send well-formed Unicode");
  }
  if (text.includes("\u0000")) {
    shapeError(fieldPath(field), "holds a NUL character (U+0000), which stored text cannot keep");
  }
}

function checkKeys(keys: string[], path: string, limits: InputLimits): void {
  if (keys.length > limits.keys_max) {
    shapeError(
      path,
      `holds an object of ${keys.length} keys, more than ${limits.keys_max} (${SETTINGS.input_keys_max.env})`,
    );
  }
}

function checkString(text: string, path: string, limits: InputLimits): void {
  if (text.length > limits.string_chars_max) {
    throw new PayloadTooLargeError(
      `${path} holds a string of ${text.length} characters, more than ${limits.string_chars_max} ` +
        `(${SETTINGS.input_string_chars_max.env}); send a shorter one`,
    );
  }
}

/**
 * The exact size, measured only when the bound says it may be over. Depth is bounded by the
 * prescan, so `JSON.stringify` cannot overflow the stack here.
 */
function checkSize(field: Field, bytes_bound: number, bytes_max: number, setting: string): void {
  if (bytes_bound <= bytes_max) return;
  const bytes = Buffer.byteLength(JSON.stringify(field.value) ?? "", "utf8");
  if (bytes > bytes_max) {
    throw new PayloadTooLargeError(
      `${fieldPath(field)} is ${bytes} bytes as JSON, more than ${bytes_max} (${setting}); ` +
        "send less, e.g. a reference to where the data is",
    );
  }
}

function shapeError(path: string, message: string): never {
  throw new ValidationError(`${path} ${message}`, [{ path, message }]);
}
