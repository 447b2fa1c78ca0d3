/**
 * Domain errors a user can meet. Each says what to do; the HTTP layer maps them to status codes
 * in one place (`src/http/errors.ts`).
 */

/** One problem with one field of a request. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** The request is malformed or a value is not allowed (400). */
export class ValidationError extends Error {
  constructor(message: string, readonly issues: FieldIssue[] = []) {
    super(message);
  }
}

/** The job (or execution) does not exist (404). */
export class NotFoundError extends Error {}

/** The request conflicts with the job's state (409). */
export class ConflictError extends Error {}

/** A capacity limit (jobs stored, memory) is reached (507, as in the seed). */
export class CapacityError extends Error {
  constructor(message: string, readonly reason: "job_limit" | "memory_limit") {
    super(message);
  }
}
