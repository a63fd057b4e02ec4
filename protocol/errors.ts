/**
 * Every error Hearth reports has a stable `code`. Codes cross process boundaries (NATS headers, JSON
 * bodies), so callers match on `err.code`, never on `instanceof`. Documented in docs/errors.md; a test
 * checks that the document lists every code here.
 */
export const ERROR_CODES = {
  // User errors: the request or the function is at fault.
  ERR_BAD_REQUEST: { status: 400, kind: "user", summary: "The request is malformed." },
  ERR_INVALID_NAME: { status: 400, kind: "user", summary: "A function name is not DNS-label-like." },
  ERR_INVALID_BUNDLE: {
    status: 400,
    kind: "user",
    summary: "Deployed code does not parse, imports a module, or has no default export.",
  },
  ERR_INVALID_SOURCE_MAP: {
    status: 400,
    kind: "user",
    summary: "A deploy's source map is not a version 3 source map, or does not fit its bundle; the message says why.",
  },
  ERR_MODULE_INIT: {
    status: 400,
    kind: "user",
    summary:
      "A deploy was refused: evaluating the module threw, ran past its time, or bound no handler; the message has the error and its source line.",
  },
  ERR_UNAUTHORIZED: { status: 401, kind: "user", summary: "The token is missing, unknown or revoked." },
  ERR_FORBIDDEN: {
    status: 403,
    kind: "user",
    summary: "The token is valid but lacks the scope the request needs; the message names it.",
  },
  ERR_QUOTA_EXCEEDED: {
    status: 403,
    kind: "user",
    summary: "A deploy would take its namespace past a quota; the message names it, the use and the limit.",
  },
  ERR_NAMESPACE_NOT_FOUND: { status: 404, kind: "user", summary: "No namespace with that name exists." },
  ERR_NAMESPACE_CONFLICT: {
    status: 409,
    kind: "user",
    summary: "The namespace exists already (create), or still owns functions (remove).",
  },
  ERR_NOT_FOUND: { status: 404, kind: "user", summary: "No such route." },
  ERR_FUNCTION_NOT_FOUND: { status: 404, kind: "user", summary: "No function with that name is deployed." },
  ERR_INVOCATION_NOT_FOUND: {
    status: 404,
    kind: "user",
    summary: "No async invocation with that id (never accepted, or past its retention).",
  },
  ERR_VERSION_NOT_FOUND: {
    status: 404,
    kind: "user",
    summary: "The function has no kept version with that id (never made, or pruned past the last 100).",
  },
  ERR_CONFLICT: {
    status: 409,
    kind: "user",
    summary: "Another change to the same function landed while this one was being made.",
  },
  ERR_CLUSTER_NOT_EMPTY: {
    status: 409,
    kind: "user",
    summary: "A restore was refused: the cluster already has functions (restore into an empty one, or --force).",
  },
  ERR_METHOD_NOT_ALLOWED: { status: 405, kind: "user", summary: "The route does not accept that method." },
  ERR_IDEMPOTENCY_IN_PROGRESS: {
    status: 409,
    kind: "user",
    summary: "A request with the same Idempotency-Key is still being accepted.",
  },
  ERR_IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    kind: "user",
    summary: "The Idempotency-Key was used for a different request.",
  },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, kind: "user", summary: "A request or response body is over the limit." },
  ERR_RATE_LIMITED: {
    status: 429,
    kind: "user",
    summary: "The function is over its rate limit for this period; Retry-After says when the next period starts.",
  },
  ERR_FUNCTION_THREW: { status: 500, kind: "user", summary: "The function threw; details are in the logs." },
  ERR_INVALID_RESPONSE: {
    status: 500,
    kind: "user",
    summary: "The function returned something other than a Response.",
  },
  ERR_FUNCTION_INVALID: {
    status: 500,
    kind: "user",
    summary: "The function failed to load: its top level threw, or it has no fetch, queue or scheduled handler.",
  },
  ERR_FUNCTION_MEMORY: { status: 500, kind: "user", summary: "The function exceeded its memory limit." },
  ERR_NO_HANDLER: {
    status: 501,
    kind: "user",
    summary: "The function has no handler for this kind of event (fetch, queue or scheduled).",
  },
  ERR_FUNCTION_TIMEOUT: { status: 504, kind: "user", summary: "The function ran past its wall-clock timeout." },
  ERR_FUNCTION_CPU_TIME: { status: 504, kind: "user", summary: "The function used more CPU time than its limit." },
  // Async invocations and events only: why one failed for good (its status, its dead letter).
  ERR_FUNCTION_STATUS: {
    status: 502,
    kind: "user",
    summary: "An async invocation's function answered with a 5xx status, on every attempt.",
  },
  ERR_MAX_EVENT_AGE: {
    status: 410,
    kind: "user",
    summary: "An async invocation was not run (or retried) within its max event age.",
  },
  ERR_RETRIES_EXHAUSTED: {
    status: 500,
    kind: "user",
    summary: "A trigger's function asked to retry a message more times than the trigger's retries.",
  },
  // System errors: Hearth is at fault or lacks capacity.
  ERR_NO_CAPACITY: { status: 503, kind: "system", summary: "No worker could take the function in time." },
  ERR_UNAVAILABLE: { status: 503, kind: "system", summary: "The gateway cannot reach NATS right now." },
  ERR_EXECUTOR_LOST: {
    status: 502,
    kind: "system",
    summary: "The executor running the invocation died; it may or may not have run.",
  },
  ERR_SECRETS_NOT_CONFIGURED: {
    status: 500,
    kind: "system",
    summary: "A secret was to be sealed or opened by a process without HEARTH_SECRETS_KEY.",
  },
  ERR_SECRET_KEY_UNKNOWN: {
    status: 500,
    kind: "system",
    summary: "A secret was sealed with a key that is not configured (the message names its key id).",
  },
  ERR_SECRET_CORRUPT: {
    status: 500,
    kind: "system",
    summary: "A stored secret cannot be opened: malformed, tampered with, moved to another key, or missing.",
  },
  ERR_INTERNAL: { status: 500, kind: "system", summary: "An unexpected failure inside Hearth." },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class Hearth throws across its own boundaries. */
export class HearthError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HearthError";
    this.code = code;
  }
}

/** Narrows an unknown value to a known error code, for errors that arrive as copies. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

/** The HTTP status that a code maps to. */
export function statusOfCode(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/** The code carried by any thrown value, ERR_INTERNAL when it carries none we know. */
export function codeOf(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  return isErrorCode(code) ? code : "ERR_INTERNAL";
}
