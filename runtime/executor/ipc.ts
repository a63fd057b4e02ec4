import type { ErrorCode } from "../../protocol/index.ts";

/** Supervisor → executor commands over the child-process IPC channel. */
export type ExecutorCommand =
  | { readonly type: "load"; readonly name: string }
  | { readonly type: "unload"; readonly name: string };

export type ExecutorRequest = ExecutorCommand & { readonly requestId: number };

/** Executor → supervisor messages: a reply to one request, or the one-time ready signal. */
export type ExecutorMessage =
  | { readonly type: "ready" }
  | { readonly type: "unloaded"; readonly name: string }
  | { readonly type: "reply"; readonly requestId: number; readonly ok: true }
  | {
      readonly type: "reply";
      readonly requestId: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
    };
