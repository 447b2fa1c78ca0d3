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
 *    array, string lengths, well-formed strings outside `payload`, and the encoded size of
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
import { ValidationError } from "../scheduler/errors.ts";
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
  checkField({ path: field, name: field, value }, limits);
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

interface Field {
  path: string;
  name: string;
  value: unknown;
}

/**
 * The envelope's checks and its fields: objects above `field_depth` have their keys counted,
 * scalars their length; the values at `field_depth` are the fields, checked by {@link checkField}.
 */
export function checkShape(value: unknown, limits: InputLimits, field_depth: number): void {
  const stack: { value: unknown; path: string; level: number }[] = [{ value, path: "", level: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const name = item.path.slice(item.path.lastIndexOf(".") + 1);
    if (item.level === field_depth) {
      checkField({ path: item.path, name, value: item.value }, limits);
      continue;
    }
    if (typeof item.value === "string") checkString(item.value, item.path || "body", limits);
    if (typeof item.value !== "object" || item.value === null) continue;
    const prefix = item.path === "" ? "" : `${item.path}.`;
    if (Array.isArray(item.value)) {
      for (let i = 0; i < item.value.length; i++) {
        stack.push({ value: item.value[i], path: `${prefix}${i}`, level: item.level + 1 });
      }
      continue;
    }
    const keys = Object.keys(item.value);
    checkKeys(keys, item.path || "body", limits);
    for (const key of keys) {
      checkString(key, item.path || "body", limits);
      stack.push({
        value: (item.value as Record<string, unknown>)[key],
        path: prefix + key,
        level: item.level + 1,
      });
    }
  }
}

/** One field: every nested value within the limits, then its encoded size. */
function checkField(field: Field, limits: InputLimits): void {
  const well_formed = field.name !== "payload";
  const stack: unknown[] = [field.value];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === "string") {
      checkString(value, field.path, limits);
      if (well_formed) checkWellFormed(value, field.path);
    }
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      if (value.length > limits.items_max) {
        shapeError(
          field.path,
          `holds an array of ${value.length} items, more than ${limits.items_max} (${SETTINGS.input_items_max.env})`,
        );
      }
      for (const item of value) stack.push(item);
      continue;
    }
    const keys = Object.keys(value);
    checkKeys(keys, field.path, limits);
    for (const key of keys) {
      checkString(key, field.path, limits);
      if (well_formed) checkWellFormed(key, field.path);
      stack.push((value as Record<string, unknown>)[key]);
    }
  }
  if (field.name === "payload") {
    checkSize(field, limits.payload_bytes_max, SETTINGS.payload_bytes_max.env);
  } else if (field.name === "headers") {
    checkSize(field, limits.headers_bytes_max, SETTINGS.headers_bytes_max.env);
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

/** Outside `payload` strings are stored as text columns, where a lone surrogate would not survive. */
function checkWellFormed(text: string, path: string): void {
  if (!text.isWellFormed()) {
    shapeError(path, "holds a lone UTF-16 surrogate; send well-formed Unicode");
  }
}

/** Depth is bounded by the prescan, so `JSON.stringify` cannot overflow the stack here. */
function checkSize(field: Field, bytes_max: number, setting: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(field.value) ?? "", "utf8");
  if (bytes > bytes_max) {
    throw new PayloadTooLargeError(
      `${field.path} is ${bytes} bytes as JSON, more than ${bytes_max} (${setting}); ` +
        "send less, e.g. a reference to where the data is",
    );
  }
}

function shapeError(path: string, message: string): never {
  throw new ValidationError(`${path} ${message}`, [{ path, message }]);
}
