/**
 * Async invocations and event triggers: the streams, buckets, headers and records every process
 * agrees on. The gateway stores an invocation in the async stream before answering 202; an executor
 * hosting the function pulls it through the function's durable consumer, runs it, writes its status,
 * and acks. docs/async.md says what a user can rely on.
 */
import type { HeaderPairs, ResponseHead } from "./invocation.ts";

/** JetStream streams (file storage). Work queues remove a message once it is acked. */
export const STREAMS = {
  /** Async invocations: `hearth.async.<fn>`, one durable consumer per function. WorkQueue. */
  async: "HEARTH_ASYNC",
  /**
   * Trigger events moved in from other sources (core NATS, RabbitMQ, MQTT, cron ticks):
   * `hearth.trigger.<trigger id>`, one durable consumer per trigger. WorkQueue.
   */
  triggers: "HEARTH_TRIGGERS",
  /** Dead letters: `hearth.dlq.<fn>`. Limits retention, so they can be listed and replayed. */
  deadLetters: "HEARTH_DLQ",
} as const;

export const ASYNC_SUBJECTS = {
  invoke: (fn: string) => `hearth.async.${fn}`,
  allInvocations: "hearth.async.>",
  trigger: (triggerId: string) => `hearth.trigger.${triggerId}`,
  allTriggers: "hearth.trigger.>",
  deadLetter: (fn: string) => `hearth.dlq.${fn}`,
  allDeadLetters: "hearth.dlq.>",
} as const;

export const ASYNC_BUCKETS = {
  /** KV, TTL = result retention: invocation id → InvocationStatus JSON. */
  invocations: "hearth_invocations",
  /** KV, TTL 24 h: `<fn>.<sha256 of key>` → IdempotencyClaim JSON. */
  idempotency: "hearth_idempotency",
  /** Object store, TTL = result retention: response bodies too large for a KV value, by invocation id. */
  results: "hearth_results",
  /** KV: trigger id → TriggerRecord JSON. */
  triggers: "hearth_triggers",
} as const;

/** Durable consumer names: Hearth's own, so NATS permissions can confine executors to them. */
export const CONSUMERS = {
  async: (fn: string) => `hearth_async_${fn}`,
  trigger: (triggerId: string) => `hearth_trigger_${triggerId}`,
} as const;

/** NATS headers on messages in the async, trigger and dead-letter streams. */
export const ASYNC_HEADERS = {
  /** The invocation id (also the JetStream `Nats-Msg-Id`, so a publish retried by the gateway is stored once). */
  id: "hearth-id",
  /** JSON RequestHead of the HTTP request (async invocations); the body is the payload. */
  request: "hearth-request",
  /** Where the result is POSTed when the invocation ends (X-Callback-Url). */
  callback: "hearth-callback",
  /** When the gateway accepted it, ms since the epoch: max event age counts from here. */
  acceptedAt: "hearth-accepted-at",
  /** Trigger events: the trigger id. */
  trigger: "hearth-trigger",
  /** Cron ticks: the scheduled time, ISO 8601, UTC. */
  scheduledTime: "hearth-scheduled-time",
  /** Dead letters: the function, why it failed, and after how many attempts. */
  function: "hearth-function",
  errorCode: "hearth-error",
  errorMessage: "hearth-error-message",
  attempts: "hearth-attempts",
  /** Dead letters: the subject the message came from, where a replay puts it back. */
  origin: "hearth-origin",
} as const;

/** How long statuses and results are kept (and so how long `GET /v1/invocations/<id>` answers). */
export const RESULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Idempotency keys are honoured this long (the 24 h of Stripe-style APIs; JetStream's own window is 2 min). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Bodies up to this size are kept inline in the status record; larger ones go to the object store. */
export const INLINE_RESULT_BYTES = 64 * 1024;

/** Retries and event age per function; the defaults mirror AWS Lambda's async invocations. */
export interface AsyncPolicy {
  /** Retries after a failed attempt (function error, timeout, 5xx): 0–10, default 2. */
  readonly retries: number;
  /** An invocation older than this is not started again (dead-lettered instead): 60 s–6 h, default 6 h. */
  readonly maxEventAgeS: number;
}

export const DEFAULT_ASYNC_POLICY: AsyncPolicy = { retries: 2, maxEventAgeS: 6 * 60 * 60 };
export const ASYNC_POLICY_BOUNDS = { retries: [0, 10], maxEventAgeS: [60, 6 * 60 * 60] } as const;

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential with full jitter
 * (AWS Architecture Blog, "Exponential Backoff And Jitter"), so failing invocations spread out
 * instead of retrying in lockstep. Scheduled with `nak(delay)`, never with the consumer's BackOff.
 */
export function retryDelayMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export type InvocationState = "queued" | "running" | "succeeded" | "failed";

/** The stored response of a finished invocation. The body is base64 inline, or in the object store. */
export interface StoredResponse extends ResponseHead {
  readonly bodyBytes: number;
  /** base64, when bodyBytes ≤ INLINE_RESULT_BYTES. */
  readonly body?: string;
  /** Name in the results object store otherwise. */
  readonly bodyObject?: string;
}

/** What `GET /v1/invocations/<id>` reports, kept in the invocations bucket. */
export interface InvocationStatus {
  readonly id: string;
  readonly function: string;
  readonly state: InvocationState;
  /** Runs of the function that began (a delivery to an executor that died before starting is not one). */
  readonly attempts: number;
  readonly acceptedAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** When the next attempt is due (state queued after a failure). */
  readonly retryAt?: string;
  /** The last failure: an error code from docs/errors.md, or ERR_FUNCTION_STATUS for a 5xx answer. */
  readonly error?: { readonly code: string; readonly message: string };
  /** The function's answer (the last one, when it failed with a 5xx). */
  readonly response?: StoredResponse;
  /** Set when the invocation failed for good: it is in the dead-letter stream. */
  readonly deadLettered?: boolean;
  readonly callback?: {
    readonly url: string;
    readonly state: "pending" | "delivered" | "failed";
    readonly attempts: number;
    readonly lastError?: string;
  };
}

/** An Idempotency-Key claim (draft-ietf-httpapi-idempotency-key-header): same key, same invocation. */
export interface IdempotencyClaim {
  readonly id: string;
  /** sha256 of method, target and body: the same key with another payload is refused (422). */
  readonly fingerprint: string;
  /** "accepting" until the invocation is durably stored: a concurrent retry then gets 409. */
  readonly state: "accepting" | "accepted";
  readonly at: number;
}

/** Trigger sources, parsed from `--source <url>` or `--cron`. */
export type TriggerSource =
  | { readonly kind: "nats"; readonly subject: string }
  | { readonly kind: "jetstream"; readonly stream: string; readonly subject: string }
  | {
      readonly kind: "amqp";
      /** amqp://user:pass@host:port (credentials are kept; `hearth triggers ls` masks the password). */
      readonly url: string;
      readonly queue: string;
    }
  | { readonly kind: "mqtt"; readonly url: string; readonly topic: string }
  | { readonly kind: "cron"; readonly expression: string };

export interface TriggerRecord {
  readonly id: string;
  readonly function: string;
  readonly source: TriggerSource;
  /** Messages per `queue()` call: 1–100, default 10. */
  readonly batchSize: number;
  /** How long to wait to fill a batch, ms: 0–60,000, default 0 (run with what is there). */
  readonly batchWaitMs: number;
  /** Batches in flight at once over the cluster (the consumer's MaxAckPending is this × batchSize). */
  readonly maxConcurrency: number;
  readonly retries: number;
  readonly createdAt: string;
}

export const TRIGGER_DEFAULTS = { batchSize: 10, batchWaitMs: 0, maxConcurrency: 10, retries: 3 } as const;

/** A header list as stored in a status record (the same pairs the function returned). */
export type StoredHeaders = HeaderPairs;
