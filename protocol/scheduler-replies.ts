import type { ErrorCode } from "./errors.ts";

/**
 * The leader's answer on SUBJECTS.activate: where the function is warm now, or why not.
 * `notLeader`: the scheduler that answered stopped leading while holding the request; ask again.
 */
export type ActivateReply =
  | { readonly ok: true; readonly node: string; readonly executor: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly notLeader?: boolean };

/** The leader's answer on SUBJECTS.drain. */
export type DrainReply =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };
