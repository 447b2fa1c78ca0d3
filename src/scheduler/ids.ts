/**
 * Identifiers: ULIDs (26 Crockford base-32 characters: 48 bits of milliseconds, 80 random bits).
 * They sort by creation time, which makes cursor pagination by id follow creation order. Ids are
 * made by the proposer and carried in commands, never at apply time.
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A new ULID for the time `now_ms`. */
export function ulid(now_ms: number): string {
  let time = "";
  let t = Math.floor(now_ms);
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let rest = "";
  for (let i = 0; i < 16; i++) rest += ALPHABET[random[i] & 31];
  return time + rest;
}
