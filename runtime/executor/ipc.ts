import type { ErrorCode } from "../../protocol/index.ts";

/** Supervisor → executor commands over the child-process IPC channel. */
export type ExecutorCommand =
  /** Load a function (or resize it when loaded); `maxIsolates` caps its pool. */
  | { readonly type: "load"; readonly name: string; readonly maxIsolates?: number }
  | { readonly type: "unload"; readonly name: string; readonly reason?: string };

export type ExecutorRequest = ExecutorCommand & { readonly requestId: number };

/** Executor → supervisor messages: a reply to one request, or the one-time ready signal. */
export type ExecutorMessage =
  | { readonly type: "ready"; readonly id: string }
  | { readonly type: "unloaded"; readonly name: string }
  | { readonly type: "reply"; readonly requestId: number; readonly ok: true }
  | {
      readonly type: "reply";
      readonly requestId: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
    };
