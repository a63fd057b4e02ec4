import type { InvokeOutcome } from "../isolate/function-isolate.ts";

/** One invocation as a transport delivers it: an HTTP request, a batch of queue messages or a cron tick. */
export interface Invocation {
  readonly id: string;
  /** FunctionRecord.version the sender expects: a stale pool catches up first. */
  readonly version: string;
  /** RequestHead JSON for fetch(), the event JSON of runtime/isolate/events.ts for queue() and scheduled(). */
  readonly requestJson: string;
  readonly body: Uint8Array | null;
  /** Told when this invocation had to wait for an isolate to be created (faas_coldstarts_total). */
  readonly observer?: InvocationObserver;
  /** The transport can send a body on as it is produced: a streamed body comes as the outcome's `stream`. */
  readonly stream?: boolean;
}

/** What a pool tells about one invocation as it runs it. */
export interface InvocationObserver {
  coldStart(): void;
}

/**
 * The seam between the functions hosted in a process and the transports that bring them work: it
 * takes an invocation and returns its outcome, knowing nothing of NATS. Today one transport reaches
 * it, core request/reply (core-transport.ts); JetStream consumers (runtime/queue/) use that
 * transport from the worker, so executors need no JetStream rights.
 */
export interface FunctionHost {
  /** Runs `inv` on the hosted function `fn`. Never throws: every failure is an outcome with a code. */
  invoke(fn: string, inv: Invocation): Promise<InvokeOutcome>;
}
