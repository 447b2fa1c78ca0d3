/**
 * What a receiver checks: the body of a delivery, its idempotency key, and its signature
 * (`X-Tickraft-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`, one `v1=` per secret
 * while a secret rotates). `verifySignature` is what a receiver in TypeScript can use.
 *
 * @module
 */
const encoder = new TextEncoder();

/**
 * The idempotency key of an occurrence: the same for every attempt and every redelivery of
 * that occurrence, different for every other occurrence.
 */
export function idempotencyKey(job_id: string, scheduled_at_ms: number): string {
  return `${job_id}:${scheduled_at_ms}`;
}

/**
 * The JSON body of a delivery: exactly `job_id`, `scheduled_at` (ISO 8601 UTC), `attempt` and
 * `payload`, in that order. Methods without a body (GET, DELETE) send nothing.
 */
export function webhookBody(
  req: { job_id: string; scheduled_at_ms: number; attempt: number; payload: unknown },
): string {
  return JSON.stringify({
    job_id: req.job_id,
    scheduled_at: new Date(req.scheduled_at_ms).toISOString(),
    attempt: req.attempt,
    payload: req.payload === undefined ? null : req.payload,
  });
}

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function hmacSha256Hex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

/**
 * The `X-Tickraft-Signature` value: `v1=<hex>` per secret, comma-separated, each the
 * HMAC-SHA256 of `${timestamp_s}.${body}` under that secret. Empty string for no secrets.
 */
export async function signatureHeader(
  secrets: string[],
  timestamp_s: number,
  body: string,
): Promise<string> {
  const message = `${timestamp_s}.${body}`;
  const signatures = await Promise.all(secrets.map((s) => hmacSha256Hex(s, message)));
  return signatures.map((hex) => `v1=${hex}`).join(",");
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Receiver-side check of a signature header against one secret: true when any `v1=` entry
 * matches (compared in constant time) and `timestamp_s` is within `tolerance_s` of `now_s`,
 * in either direction.
 */
export async function verifySignature(
  secret: string,
  header: string,
  timestamp_s: number,
  body: string,
  now_s: number,
  tolerance_s = 300,
): Promise<boolean> {
  if (!Number.isFinite(timestamp_s) || !Number.isFinite(now_s)) return false;
  if (Math.abs(now_s - timestamp_s) > tolerance_s) return false;
  const expected = await hmacSha256Hex(secret, `${timestamp_s}.${body}`);
  let matched = false;
  for (const entry of header.split(",")) {
    const [scheme, value] = entry.trim().split("=", 2);
    if (scheme === "v1" && value !== undefined) {
      matched = constantTimeEqual(value.toLowerCase(), expected) || matched;
    }
  }
  return matched;
}
