/**
 * Prepared statements by SQL text, least recently used evicted beyond a capacity. A statement is
 * prepared once and bound again on each use, so SQL text must come from a fixed set of strings:
 * a text built per call (a variable-length `IN (?,?,…)`, a multi-row `VALUES` of any count)
 * misses every time and evicts the statements that hit. {@link fixedChunks} cuts a list into
 * chunks of a few fixed sizes for that.
 *
 * @module
 */
import type Libsql from "libsql";

/** What the cache did since it was created (a reopen of the file keeps counting). */
export interface StatementCacheStats {
  /** Statements held now. */
  size: number;
  capacity: number;
  hits: number;
  /** Statements prepared (first use of a text, or again after its eviction). */
  misses: number;
  evictions: number;
}

export class StatementCache {
  readonly #capacity: number;
  readonly #statements = new Map<string, Libsql.Statement>();
  #prepare: ((sql: string) => Libsql.Statement) | null = null;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`statement cache capacity must be a positive integer, got ${capacity}`);
    }
    this.#capacity = capacity;
  }

  /** Drops every statement and prepares from now on with `prepare` (a newly opened file). */
  reset(prepare: (sql: string) => Libsql.Statement): void {
    this.#statements.clear();
    this.#prepare = prepare;
  }

  /** The prepared statement for `sql`, prepared now if it is not held. */
  get(sql: string): Libsql.Statement {
    const held = this.#statements.get(sql);
    if (held !== undefined) {
      this.#hits++;
      // Re-inserting moves it to the end: the Map's order is the recency order.
      this.#statements.delete(sql);
      this.#statements.set(sql, held);
      return held;
    }
    if (this.#prepare === null) throw new Error("the statement cache has no open database");
    const statement = this.#prepare(sql);
    this.#misses++;
    this.#statements.set(sql, statement);
    if (this.#statements.size > this.#capacity) {
      this.#statements.delete(this.#statements.keys().next().value!);
      this.#evictions++;
    }
    return statement;
  }

  stats(): StatementCacheStats {
    return {
      size: this.#statements.size,
      capacity: this.#capacity,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }
}

/** Chunk sizes of {@link fixedChunks} by default: any count is a sum of at most 7+7+7 parts. */
export const FIXED_CHUNK_SIZES: readonly number[] = [512, 64, 8, 1];

/**
 * `items` cut into consecutive chunks whose lengths are all in `sizes` (descending, ending in
 * 1), largest first: a statement per chunk size keeps the SQL texts a fixed set.
 */
export function fixedChunks<T>(
  items: readonly T[],
  sizes: readonly number[] = FIXED_CHUNK_SIZES,
): T[][] {
  if (sizes.length === 0 || sizes[sizes.length - 1] !== 1) {
    throw new RangeError("chunk sizes must end in 1 so that any count can be cut");
  }
  const chunks: T[][] = [];
  let at = 0;
  for (const size of sizes) {
    while (items.length - at >= size) {
      chunks.push(items.slice(at, at + size));
      at += size;
    }
  }
  return chunks;
}
