/**
 * The events besides fetch, in Cloudflare Workers' shapes: a batch of queue messages for
 * `queue(batch, env, ctx)` and a cron tick for `scheduled(event, env, ctx)`. The wire format between
 * host and isolate is declared here once; the host side (../events.ts) imports it.
 * Semantics: https://developers.cloudflare.com/queues/configuration/batching-retries/
 */
import { TextDecoder } from "@exodus/bytes/encoding-lite.js";

/** Cloudflare Queues' longest retry delay: 12 hours. */
export const MAX_RETRY_DELAY_SECONDS = 43_200;

/** One message as the host sends it; its payload is `body.subarray(offset, offset + length)`. */
export interface HostMessage {
  id: string;
  timestamp: number;
  attempts: number;
  offset: number;
  length: number;
  /** Cloudflare's: "json" (the default), "text", "bytes" or "v8". */
  contentType?: string;
}

export interface HostQueueEvent {
  event: "queue";
  queue: string;
  messages: HostMessage[];
}

export interface HostScheduledEvent {
  event: "scheduled";
  cron: string;
  scheduledTime: number;
}

/** What a handler threw, as the host logs it. */
export interface ThrownError {
  name?: string;
  message: string;
  stack?: string;
}

export type Decision = { action: "ack" } | { action: "retry"; delaySeconds?: number };
export type QueueDecision = { id: string } & Decision;
/** The queue() outcome the host reads: one decision per message, in message order. */
export interface QueueOutcome {
  outcomes: QueueDecision[];
  error?: ThrownError;
}
export type ScheduledOutcome = { ok: true } | { ok: false; noRetry: boolean; error: ThrownError };

export interface RetryOptions {
  delaySeconds?: number;
}

const ACK: Decision = Object.freeze({ action: "ack" });
const RETRY: Decision = Object.freeze({ action: "retry" });
const UNREAD = Symbol("unread");
const utf8 = new TextDecoder("utf-8", { fatal: true });

function retryDecision(options: RetryOptions | undefined): Decision {
  const delaySeconds = options?.delaySeconds;
  if (delaySeconds === undefined) return RETRY;
  if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_RETRY_DELAY_SECONDS) {
    const shown = typeof delaySeconds === "number" ? delaySeconds : typeof delaySeconds;
    throw new TypeError(`delaySeconds must be a whole number from 0 to ${MAX_RETRY_DELAY_SECONDS}, not ${shown}`);
  }
  return { action: "retry", delaySeconds };
}

/** JSON when it parses (unless the sender said otherwise), else text when it is UTF-8, else bytes. */
function decodeBody(bytes: Uint8Array, contentType: string | undefined): unknown {
  if (contentType === "bytes") return bytes;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return bytes;
  }
  if (contentType === undefined || contentType === "json") {
    try {
      return JSON.parse(text);
    } catch {
      // Not JSON after all: the text is the body.
    }
  }
  return text;
}

export class Message {
  readonly id: string;
  readonly timestamp: Date;
  readonly attempts: number;
  /** The raw payload: Hearth's addition, Workers has no such field. */
  readonly bytes: Uint8Array;
  readonly #contentType: string | undefined;
  readonly #decide: (decision: Decision) => void;
  #body: unknown = UNREAD;

  constructor(head: HostMessage, bytes: Uint8Array, decide: (decision: Decision) => void) {
    this.id = head.id;
    this.timestamp = new Date(head.timestamp);
    this.attempts = head.attempts;
    this.bytes = bytes;
    this.#contentType = head.contentType;
    this.#decide = decide;
    Object.freeze(this);
  }

  /** Decoded on first read: a handler may route a batch of 100 without looking into most bodies. */
  get body(): unknown {
    if (this.#body === UNREAD) this.#body = decodeBody(this.bytes, this.#contentType);
    return this.#body;
  }

  ack(): void {
    this.#decide(ACK);
  }

  retry(options?: RetryOptions): void {
    this.#decide(retryDecision(options));
  }
}

export class MessageBatch {
  readonly queue: string;
  readonly messages: readonly Message[];
  readonly #decideAll: (decision: Decision) => void;

  constructor(queue: string, messages: readonly Message[], decideAll: (decision: Decision) => void) {
    this.queue = queue;
    this.messages = Object.freeze(messages);
    this.#decideAll = decideAll;
    Object.freeze(this);
  }

  /** Acks every message not yet acked or retried on its own. */
  ackAll(): void {
    this.#decideAll(ACK);
  }

  /** Retries every message not yet acked or retried on its own. */
  retryAll(options?: RetryOptions): void {
    this.#decideAll(retryDecision(options));
  }
}

/**
 * The batch a queue() handler gets, and `settle`, which the dispatcher calls once the handler is done.
 * The first decision per message wins, as in Cloudflare Queues; decisions live here, out of function
 * code's reach, and their ids come from the host, not from Message objects the function could alter.
 */
export function batchFromHost(
  head: HostQueueEvent,
  body: Uint8Array | null,
): { batch: MessageBatch; settle(error?: ThrownError): QueueOutcome } {
  const decisions: Array<Decision | undefined> = [];
  const messages = head.messages.map(
    (m, i) =>
      // A copy each, so `message.bytes.buffer` is that message's payload and not the whole batch.
      new Message(m, body?.slice(m.offset, m.offset + m.length) ?? new Uint8Array(0), (decision) => {
        decisions[i] ??= decision;
      }),
  );
  const decideAll = (decision: Decision) => {
    for (let i = 0; i < messages.length; i++) decisions[i] ??= decision;
  };
  return {
    batch: new MessageBatch(head.queue, messages, decideAll),
    settle(error) {
      // Undecided messages are acked when the handler succeeded and retried when it threw. Settling
      // also decides them, so a late ack() from ctx.waitUntil work changes nothing.
      decideAll(error ? RETRY : ACK);
      const outcomes = head.messages.map((m, i) => ({ id: m.id, ...(decisions[i] as Decision) }));
      return error ? { outcomes, error } : { outcomes };
    },
  };
}

export class ScheduledEvent {
  readonly type = "scheduled";
  readonly cron: string;
  /** When the run was due, in ms since the epoch. */
  readonly scheduledTime: number;
  readonly #noRetry: () => void;

  constructor(cron: string, scheduledTime: number, noRetry: () => void) {
    this.cron = cron;
    this.scheduledTime = scheduledTime;
    this.#noRetry = noRetry;
    Object.freeze(this);
  }

  /** Should the handler fail, this run is not retried. */
  noRetry(): void {
    this.#noRetry();
  }
}

/** The event a scheduled() handler gets, and `settle` for the dispatcher once the handler is done. */
export function scheduledFromHost(head: HostScheduledEvent): {
  event: ScheduledEvent;
  settle(error?: ThrownError): ScheduledOutcome;
} {
  let noRetry = false;
  const event = new ScheduledEvent(head.cron, head.scheduledTime, () => {
    noRetry = true;
  });
  return { event, settle: (error) => (error ? { ok: false, noRetry, error } : { ok: true }) };
}
