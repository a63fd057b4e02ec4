/**
 * Types for function authors: `export default { fetch, queue, scheduled } satisfies ExportedHandler`.
 * Names and shapes follow @cloudflare/workers-types, so code typed against either compiles with both.
 */

/** The function's variables, from `hearth deploy --env K=V`. */
export type Env = Readonly<Record<string, string>>;

export interface ExecutionContext<Props = unknown> {
  /** Keeps the isolate working on `promise` after the response is sent (or the event handled). */
  waitUntil(promise: Promise<unknown>): void;
  /** Accepted for Workers compatibility; Hearth has no origin to fall back to. */
  passThroughOnException(): void;
  /**
   * What a caller bound to this function passed along, in Workers; Hearth has no such bindings, so it
   * is always `{}`. Declared because frameworks' own context types (Hono's) require it.
   */
  readonly props: Props;
}

export interface QueueRetryOptions {
  /** Seconds before the message is delivered again: 0 to 43200 (12 hours). */
  delaySeconds?: number;
}

/** One queue message. The first of `ack()` / `retry()` (here or on its batch) wins. */
export interface Message<Body = unknown> {
  readonly id: string;
  /** When the message was sent. */
  readonly timestamp: Date;
  /** Parsed JSON, else text when the payload is UTF-8, else a Uint8Array. */
  readonly body: Body;
  /** 1 on first delivery. */
  readonly attempts: number;
  /** The raw payload. Hearth only: Workers has no such field. */
  readonly bytes: Uint8Array;
  retry(options?: QueueRetryOptions): void;
  ack(): void;
}

/**
 * A batch for `queue()`. Messages left undecided are acked when the handler returns, and retried
 * when it throws.
 */
export interface MessageBatch<Body = unknown> {
  readonly queue: string;
  readonly messages: readonly Message<Body>[];
  /** Retries every message not yet acked or retried on its own. */
  retryAll(options?: QueueRetryOptions): void;
  /** Acks every message not yet acked or retried on its own. */
  ackAll(): void;
}

/** A cron tick for `scheduled()`. */
export interface ScheduledEvent {
  readonly type: "scheduled";
  readonly cron: string;
  /** When the tick was due, in ms since the epoch. */
  readonly scheduledTime: number;
  /** Should the handler fail, this tick is not retried. */
  noRetry(): void;
}

/** Workers' name for the object `scheduled()` receives in module syntax. */
export type ScheduledController = ScheduledEvent;

/** The shape of a Hearth (and Cloudflare Workers) module's default export: at least one handler. */
export interface ExportedHandler<E = Env, QueueMessage = unknown> {
  fetch?(request: Request, env: E, ctx: ExecutionContext): Response | Promise<Response>;
  queue?(batch: MessageBatch<QueueMessage>, env: E, ctx: ExecutionContext): void | Promise<void>;
  scheduled?(event: ScheduledEvent, env: E, ctx: ExecutionContext): void | Promise<void>;
}

/** The name before queue and scheduled handlers: a module's default export. */
export type FunctionModule<E = Env> = ExportedHandler<E>;
