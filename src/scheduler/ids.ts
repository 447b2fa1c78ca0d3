/**
 * Identifiers: ULIDs (26 Crockford base-32 characters: 48 bits of milliseconds, 80 random bits).
 * They sort by creation time, which makes cursor pagination by id follow creation order. Ids are
 * made by the proposer and carried in commands, never at apply time.
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

let last_ms = -1;
let last_random = new Uint8Array(16);

/**
 * A new ULID for the time `now_ms`. Monotonic within a process: ids made in the same (or an
 * earlier) millisecond as the previous one continue its random part plus one, so ids sort in the
 * order they were made (a batch lists in its order).
 */
export function ulid(now_ms: number): string {
  let ms = Math.floor(now_ms);
  if (ms <= last_ms) {
    ms = last_ms;
    let i = 15;
    while (i >= 0 && last_random[i] === 31) last_random[i--] = 0;
    if (i < 0) throw new Error("ulid: more than 32^16 ids in one millisecond");
    last_random[i]++;
  } else {
    last_random = crypto.getRandomValues(new Uint8Array(16)).map((b) => b & 31);
    last_ms = ms;
  }
  let time = "";
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let rest = "";
  for (let i = 0; i < 16; i++) rest += ALPHABET[last_random[i]];
  return time + rest;
}
