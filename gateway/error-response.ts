import { randomUUID } from "node:crypto";
import { codeOf, ERROR_CODES, type ErrorCode, type Logger, statusOfCode } from "../protocol/index.ts";
import { type HttpResponse, jsonResponse } from "./http-types.ts";

/** Seconds a client should wait before retrying an overload (503). */
const RETRY_AFTER_SECONDS = "1";

/** Codes that say "not now": the answer carries Retry-After. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["ERR_NO_CAPACITY", "ERR_UNAVAILABLE"]);

/**
 * The one place where errors become HTTP: `{ "error": { code, message, errorId? } }` with the
 * status the code maps to. Internal errors are opaque to the caller; their detail goes to the log
 * under the error id the caller sees.
 */
export function errorResponse(code: ErrorCode, message: string, errorId?: string): HttpResponse {
  const headers: Array<[string, string]> = RETRYABLE.has(code) ? [["retry-after", RETRY_AFTER_SECONDS]] : [];
  return jsonResponse(statusOfCode(code), { error: { code, message, ...(errorId ? { errorId } : {}) } }, headers);
}

/** Maps a thrown value; unknown errors are logged with a fresh error id and answered opaquely. */
export function thrownResponse(err: unknown, log: Logger): HttpResponse {
  const code = codeOf(err);
  if (ERROR_CODES[code].kind === "system") {
    const errorId = randomUUID();
    log.error({ err, errorId }, "request failed");
    return errorResponse(code, code === "ERR_INTERNAL" ? "Internal error" : (err as Error).message, errorId);
  }
  return errorResponse(code, (err as Error).message);
}
