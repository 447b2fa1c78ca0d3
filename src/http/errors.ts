/**
 * The one place where errors become HTTP responses: `{ "error": message, "code": code,
 * "details": [{ "path", "message" }] }` with the fitting status.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import {
  CapacityError,
  ConflictError,
  type FieldIssue,
  NotFoundError,
  ValidationError,
} from "../errors.ts";
import {
  LogFailedError,
  LogOverloadedError,
  LogRefusedError,
  NotLeaderError,
} from "../log/command_log.ts";
import { ClusterRefusalError } from "../cluster/replicated_log.ts";

/** The request body is larger than MAX_BODY_BYTES (413). */
export class PayloadTooLargeError extends Error {}

/** zod issues as field issues (`path` joined with dots). */
export function fieldIssues(error: z.ZodError, prefix = ""): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: prefix + (issue.path.length === 0 ? "" : issue.path.join(".")),
    message: issue.message,
  }));
}

/** Status, code and body for an error thrown by a handler. */
export function errorResponse(c: Context, error: unknown): Response {
  const send = (status: ContentfulStatusCode, code: string, message: string, details?: unknown) =>
    c.json({ error: message, code, ...(details === undefined ? {} : { details }) }, status);
  if (error instanceof ValidationError) {
    return send(400, "invalid_request", error.message, error.issues);
  }
  if (error instanceof NotFoundError) return send(404, "not_found", error.message);
  if (error instanceof ConflictError) return send(409, "conflict", error.message);
  if (error instanceof PayloadTooLargeError) return send(413, "payload_too_large", error.message);
  if (error instanceof CapacityError) return send(507, error.reason, error.message);
  if (error instanceof LogOverloadedError) {
    c.header("Retry-After", "1");
    return send(503, "overloaded", error.message);
  }
  if (error instanceof LogFailedError) return send(503, "unavailable", error.message);
  if (error instanceof NotLeaderError) {
    c.header("Retry-After", "1");
    return send(503, "not_leader", error.message, {
      leader: error.leader_name,
      leader_address: error.leader_address,
    });
  }
  // Refusals that pass (a leadership transfer under way, a new leader not yet leading): the
  // same call succeeds shortly, so they are a 503 to retry, not a 409 that says give up.
  if (error instanceof LogRefusedError) {
    c.header("Retry-After", "1");
    return send(
      503,
      error instanceof ClusterRefusalError ? error.reason : "refused",
      error.message,
    );
  }
  return send(500, "internal", "internal error; the node's log has the details");
}
