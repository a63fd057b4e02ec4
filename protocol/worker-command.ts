import type { ErrorCode } from "./errors.ts";

/**
 * Scheduler leader → one worker node, on SUBJECTS.workerCommand (request/reply). `epoch` is the
 * leader's fencing epoch: a worker refuses commands older than the newest epoch it has seen, so a
 * paused old leader that wakes up cannot act.
 */
export type WorkerCommand =
  /** Hold `isolates` of `fn` on `executor` (or on the executor the node picks); 0 unloads it there. */
  | {
      readonly type: "assign";
      readonly epoch: number;
      readonly fn: string;
      readonly executor?: string;
      readonly isolates: number;
    }
  /** Take no new pools (`hearth nodes drain`); the scheduler then moves the node's pools away. */
  | { readonly type: "drain"; readonly epoch: number };

export type WorkerCommandReply =
  | { readonly ok: true; readonly executor?: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** Reads a command; null for anything malformed. */
export function parseWorkerCommand(value: unknown): WorkerCommand | null {
  const c = value as Partial<Record<string, unknown>> | null;
  if (!c || typeof c.epoch !== "number" || !Number.isFinite(c.epoch)) return null;
  if (c.type === "drain") return c as WorkerCommand;
  if (
    c.type === "assign" &&
    typeof c.fn === "string" &&
    (c.executor === undefined || typeof c.executor === "string") &&
    typeof c.isolates === "number" &&
    Number.isInteger(c.isolates) &&
    c.isolates >= 0 &&
    c.isolates <= 64
  )
    return c as WorkerCommand;
  return null;
}
