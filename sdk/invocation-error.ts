import type { HearthClient } from "./client.ts";

/** How long `hearth invoke` waits for a failed call's error line (log lines are published after the reply). */
const LOGGED_ERROR_WAIT_MS = 3_000;

/**
 * The error a function logged for one failed invocation: for a throw, its stack mapped to the
 * function's sources (`at handler (src/index.ts:12:11)`). The answer to the caller never carries it
 * (a public caller must not see the function's internals); the deployer reads it from the function's
 * logs, under the error id the answer gave. Null when no such line arrives within `waitMs`, or the
 * logs cannot be read (a token without read rights).
 *
 * @example
 * const stack = await loggedError(hearth, "hello", error.errorId);
 */
export async function loggedError(
  client: Pick<HearthClient, "logs">,
  fn: string,
  invocationId: string,
  waitMs = LOGGED_ERROR_WAIT_MS,
): Promise<string | null> {
  // Followed, not polled: the retained lines first, then new ones as they are written, until the deadline.
  const signal = AbortSignal.timeout(waitMs);
  try {
    for await (const entry of client.logs(fn, { follow: true, tail: 100, status: "error", signal })) {
      if (entry.invocationId === invocationId) return entry.message;
    }
  } catch {
    // Logs are a nicety on top of the answer the caller already has.
  }
  return null;
}
