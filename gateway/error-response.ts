import { randomUUID } from "node:crypto";
import { codeOf, ERROR_CODES, type ErrorCode, type Logger, statusOfCode } from "../protocol/index.ts";
import { type HttpResponse, jsonResponse } from "./http-types.ts";

/** Seconds a client should wait before retrying an overload (503) or a key still being accepted (409). */
const RETRY_AFTER_SECONDS = "1";

/** Codes that say "not now": the answer carries Retry-After. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set([
  "ERR_NO_CAPACITY",
  "ERR_UNAVAILABLE",
  "ERR_IDEMPOTENCY_IN_PROGRESS",
  "ERR_RATE_LIMITED",
]);

/**
 * Codes whose message can carry text of the function's own (a top-level exception: a connection
 * string, a key). A caller of /fn/<name> is anyone on the internet, not the deployer: it gets this
 * message and an error id; the original goes to the log under that id.
 */
const PRIVATE_MESSAGES: Partial<Record<ErrorCode, string>> = {
  ERR_FUNCTION_INVALID: "The function failed to load; its deployer can find why in the logs under this error id",
};

/**
 * The one place where errors become HTTP: `{ "error": { code, message, errorId? } }` with the
 * status the code maps to. Internal errors are opaque to the caller; their detail goes to the log
 * under the error id the caller sees.
 */
export function errorResponse(
  code: ErrorCode,
  message: string,
  errorId?: string,
  retryAfterSeconds?: number,
): HttpResponse {
  // A limit knows when it lifts (the end of a rate-limit window); other "not now"s say 1 s.
  const retryAfter =
    retryAfterSeconds !== undefined ? String(retryAfterSeconds) : RETRYABLE.has(code) ? RETRY_AFTER_SECONDS : null;
  const headers: Array<[string, string]> = retryAfter !== null ? [["retry-after", retryAfter]] : [];
  return jsonResponse(statusOfCode(code), { error: { code, message, ...(errorId ? { errorId } : {}) } }, headers);
}

/**
 * An error reply about an invocation (from the executor or the invoker), as the caller sees it. A code
 * in PRIVATE_MESSAGES is answered without its message, which is logged under the error id (the
 * reply's, else the invocation id).
 */
export function invocationErrorResponse(
  reply: { readonly code: ErrorCode; readonly message: string; readonly errorId?: string },
  invocationId: string,
  fn: string,
  log: Logger,
): HttpResponse {
  const generic = PRIVATE_MESSAGES[reply.code];
  if (generic === undefined) return errorResponse(reply.code, reply.message, reply.errorId);
  const errorId = reply.errorId ?? invocationId;
  log.warn(
    { fn, invocationId, code: reply.code, errorId, detail: reply.message },
    "invocation failed; the caller got a generic message",
  );
  return errorResponse(reply.code, generic, errorId);
}

/**
 * Maps a thrown value; unknown errors are logged with a fresh error id and answered opaquely, and so
 * are codes whose message is private (PRIVATE_MESSAGES).
 */
export function thrownResponse(err: unknown, log: Logger): HttpResponse {
  const code = codeOf(err);
  const generic = PRIVATE_MESSAGES[code];
  if (generic !== undefined) {
    const errorId = randomUUID();
    log.warn({ err, code, errorId }, "request failed; the caller got a generic message");
    return errorResponse(code, generic, errorId);
  }
  if (ERROR_CODES[code].kind === "system") {
    const errorId = randomUUID();
    // A stack only for the unexpected: an expected system error (no capacity, NATS down) comes by
    // the thousand under load, and one line each says all there is.
    if (code === "ERR_INTERNAL") log.error({ err, errorId }, "request failed");
    else log.warn({ code, errorId, reason: (err as Error).message }, "request failed");
    return errorResponse(code, code === "ERR_INTERNAL" ? "Internal error" : (err as Error).message, errorId);
  }
  return errorResponse(code, (err as Error).message, undefined, retryAfterOf(err));
}

/** Whole seconds from an error that knows when to retry (gateway/admission-limits' LimitError). */
function retryAfterOf(err: unknown): number | undefined {
  const seconds = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  return typeof seconds === "number" && Number.isInteger(seconds) && seconds >= 0 ? seconds : undefined;
}

/**
 * The 503 (with Retry-After) to answer while the NATS connection is down, or null: a store call then
 * would wait out its whole timeout. Answered, not thrown, so an outage does not log each request.
 */
export function unavailableWhileDisconnected(deps: { readonly natsConnected: () => boolean }): HttpResponse | null {
  return deps.natsConnected() ? null : errorResponse("ERR_UNAVAILABLE", "The gateway cannot reach NATS; retry shortly");
}
