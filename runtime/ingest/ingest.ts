/**
 * The part every broker ingester shares: one function that moves a message into its trigger's
 * JetStream subject and resolves only once JetStream has stored it. Ingesters acknowledge the
 * source broker after that and never before, so a crash of Hearth or NATS between the two leaves
 * the message at the source, to be delivered again (at least once, never lost).
 */
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { ASYNC_HEADERS, ASYNC_SUBJECTS, retryDelayMs } from "../../protocol/async.ts";
import { HearthError, type Logger } from "../../protocol/index.ts";

/** A bridge from one external queue into one trigger's JetStream subject. */
export interface Ingester {
  /** Connects, checks the source exists and starts moving messages; rejects with a clear error if it cannot. */
  start(): Promise<void>;
  /** Stops taking messages, lets those being published finish (acked at the source or left there), disconnects. Idempotent. */
  stop(): Promise<void>;
  /** Running totals since start, for metrics. */
  readonly counters: Readonly<IngestCounters>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface IngestCounters {
  /** Messages JetStream stored. */
  ingested: number;
  /** Messages JetStream recognised by their id as already stored (a redelivery); acked at the source all the same. */
  duplicates: number;
  /** Publish attempts that failed (timeout, NATS down); the message stays at the source and is tried again. */
  failures: number;
  /** Messages JetStream can never take (over NATS max_payload): dropped, or dead-lettered by RabbitMQ if the queue has a DLX. */
  dropped: number;
}

/** What an ingester hands over for one broker message. */
export interface IngestMessage {
  /** Forwarded byte for byte. */
  readonly payload: Uint8Array;
  /** The broker's id of the message, the same on every redelivery: becomes the JetStream `Nats-Msg-Id`. */
  readonly messageId?: string;
  readonly contentType?: string;
}

/** What both ingesters take besides their source. */
export interface IngesterOptions {
  /** Names the subject `hearth.trigger.<id>`, the share group and client ids: `[A-Za-z0-9_-]`, 1–64 characters. */
  readonly triggerId: string;
  readonly js: JetStreamClient;
  /** Silent by default. */
  readonly log?: Logger;
  /** How long to wait for JetStream's publish ack before counting a failure. Default 5,000 ms (nats.js's own). */
  readonly publishTimeoutMs?: number;
}

export const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;

/** Letters, digits, `_` and `-`: safe as a NATS subject token, a consumer name and inside an MQTT share name. */
const TRIGGER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws ERR_BAD_REQUEST unless `triggerId` can name subjects, consumers and MQTT share groups. */
export function validateTriggerId(triggerId: string): string {
  if (!TRIGGER_ID.test(triggerId)) {
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `Invalid trigger id ${JSON.stringify(triggerId)}: use 1–64 letters, digits, "_" or "-"`,
    );
  }
  return triggerId;
}

/**
 * The lifecycle every ingester shares: start() opens once, stop() shuts down once, and a start after
 * a stop is refused. Subclasses open and shut down; `stopping` tells their loops to give up.
 */
export abstract class IngesterBase implements Ingester {
  readonly counters: IngestCounters = newCounters();
  #started: Promise<void> | null = null;
  #stopped: Promise<void> | null = null;

  protected abstract open(): Promise<void>;
  protected abstract shutdown(): Promise<void>;

  /** True once stop() was called. */
  protected get stopping(): boolean {
    return this.#stopped !== null;
  }

  /** The start under way or done (null before start()), for a shutdown to wait on. */
  protected get started(): Promise<void> | null {
    return this.#started;
  }

  start(): Promise<void> {
    if (this.#stopped) return Promise.reject(new Error(`${this.constructor.name}: start() after stop()`));
    this.#started ??= this.open();
    return this.#started;
  }

  stop(): Promise<void> {
    this.#stopped ??= this.shutdown();
    return this.#stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

export function newCounters(): IngestCounters {
  return { ingested: 0, duplicates: 0, failures: 0, dropped: 0 };
}

/**
 * Publishes one broker message to `hearth.trigger.<triggerId>` with the `hearth-trigger` header, and
 * resolves with JetStream's publish ack (the message is stored, or was already: `ack.duplicate`).
 * With a `messageId`, the `Nats-Msg-Id` is `<triggerId>:<messageId>`, so a redelivery within the
 * stream's 2-minute duplicate window is stored once. Counts into `counters`; rethrows failures.
 *
 * @example
 * const ack = await publishToTrigger(js, "orders", { payload, messageId: "m-1" }, counters);
 * channel.ack(msg); // only now
 */
export async function publishToTrigger(
  js: JetStreamClient,
  triggerId: string,
  message: IngestMessage,
  counters: IngestCounters,
  timeoutMs = DEFAULT_PUBLISH_TIMEOUT_MS,
): Promise<PubAck> {
  const h = headers();
  h.set(ASYNC_HEADERS.trigger, triggerId);
  if (message.contentType) h.set("content-type", message.contentType);
  try {
    const ack = await js.publish(ASYNC_SUBJECTS.trigger(triggerId), message.payload, {
      headers: h,
      timeout: timeoutMs,
      ...(message.messageId !== undefined && { msgID: `${triggerId}:${message.messageId}` }),
    });
    if (ack.duplicate) counters.duplicates++;
    else counters.ingested++;
    return ack;
  } catch (err) {
    if (isPermanentPublishError(err)) counters.dropped++;
    else counters.failures++;
    throw err;
  }
}

/**
 * nats.js throws InvalidArgumentError before sending when the message is over the server's
 * max_payload (8 MB in `hearth dev`): retrying cannot help, and an MQTT session would stall behind it.
 */
export function isPermanentPublishError(err: unknown): boolean {
  return (err as Error | null)?.name === "InvalidArgumentError";
}

/**
 * Delay before reconnect or retry number `attempt` (from 1): 100 ms plus full jitter up to
 * 200 ms × 2^(attempt-1), capped at 10 s, so a broker or NATS that comes back is not hit by every
 * ingester at once, and the floor keeps a failure that repeats instantly (a missing queue) from spinning.
 */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return 100 + retryDelayMs(attempt, 200, 10_000, random);
}
