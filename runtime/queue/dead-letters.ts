import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { type MsgHdrs, type NatsConnection, headers as natsHeaders, type Subscription } from "@nats-io/transport-node";
import { ASYNC_HEADERS, ASYNC_SUBJECTS, type Logger, STREAMS } from "../../protocol/index.ts";

/** Why a message is dead. */
export interface DeathCertificate {
  readonly fn: string;
  readonly code: string;
  readonly message: string;
  /** Runs of the function that began. */
  readonly attempts: number;
  /** The trigger it came through, if any. */
  readonly trigger?: string;
}

/** A message as it left its stream. */
export interface DeadMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs;
  readonly stream: string;
  readonly seq: number;
}

const MAX_ERROR_MESSAGE = 1_024;

/**
 * Copies a message into the dead-letter stream (`hearth.dlq.<fn>`) with why it died and where it came
 * from (`hearth-origin`, where a replay puts it back). The message id is its stream and sequence, so
 * the runner and the max-deliveries sweeper both dead-lettering it store it once. The caller then
 * `term()`s or deletes the original: a work-queue stream keeps a message past MaxDeliver otherwise.
 */
export async function deadLetter(js: JetStreamClient, dead: DeadMessage, why: DeathCertificate): Promise<void> {
  const h = natsHeaders();
  for (const [name, values] of dead.headers ?? []) {
    // JetStream's own headers (Nats-Msg-Id...) belong to the first publish, not to this one.
    if (!name.toLowerCase().startsWith("nats-")) for (const value of values) h.append(name, value);
  }
  h.set(ASYNC_HEADERS.function, why.fn);
  h.set(ASYNC_HEADERS.errorCode, why.code);
  h.set(ASYNC_HEADERS.errorMessage, why.message.replace(/[\r\n]+/g, " ").slice(0, MAX_ERROR_MESSAGE));
  h.set(ASYNC_HEADERS.attempts, String(why.attempts));
  h.set(ASYNC_HEADERS.origin, dead.subject);
  if (why.trigger) h.set(ASYNC_HEADERS.trigger, why.trigger);
  await js.publish(ASYNC_SUBJECTS.deadLetter(why.fn), dead.data, {
    msgID: `dlq:${dead.stream}:${dead.seq}`,
    headers: h,
  });
}

export function deadMessageOf(msg: JsMsg): DeadMessage {
  return {
    subject: msg.subject,
    data: msg.data,
    headers: msg.headers,
    stream: msg.info.stream,
    seq: msg.info.streamSequence,
  };
}

/** The max-deliveries advisory (nats-server: io.nats.jetstream.advisory.v1.max_deliver). */
interface MaxDeliveriesAdvisory {
  readonly stream: string;
  readonly consumer: string;
  readonly stream_seq: number;
  readonly deliveries: number;
}

const SWEPT_STREAMS = [STREAMS.async, STREAMS.triggers];
const ADVISORY = (stream: string) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.*`;

/**
 * Catches the messages no runner finished: every delivery went to an executor that died (or a worker
 * that could not record the failure), so nobody dead-lettered it, and past MaxDeliver JetStream stops
 * delivering but keeps it in the work queue. One worker per advisory (a queue group) moves it to the
 * dead-letter stream and deletes the original.
 */
export class MaxDeliveriesSweeper {
  readonly #subscriptions: Subscription[];
  readonly #onSwept: (dead: DeadMessage, why: DeathCertificate) => Promise<void>;
  swept = 0;

  constructor(
    nc: NatsConnection,
    js: JetStreamClient,
    jsm: JetStreamManager,
    functionOf: (consumer: string) => string | null,
    log: Logger,
    /** Told of each message it moved (the async side fails the invocation's status). */
    onSwept: (dead: DeadMessage, why: DeathCertificate) => Promise<void> = async () => {},
  ) {
    this.#onSwept = onSwept;
    this.#subscriptions = SWEPT_STREAMS.map((stream) =>
      nc.subscribe(ADVISORY(stream), {
        queue: "hearth-dead-letters",
        callback: (err, msg) => {
          if (err) return;
          const advisory = msg.json<MaxDeliveriesAdvisory>();
          void this.#sweep(js, jsm, advisory, functionOf, log).catch((error: unknown) =>
            log.error({ err: error, advisory }, "moving a message past MaxDeliver to the dead letters failed"),
          );
        },
      }),
    );
  }

  async #sweep(
    js: JetStreamClient,
    jsm: JetStreamManager,
    advisory: MaxDeliveriesAdvisory,
    functionOf: (consumer: string) => string | null,
    log: Logger,
  ): Promise<void> {
    const fn = functionOf(advisory.consumer);
    if (!fn) return;
    const stored = await jsm.streams.getMessage(advisory.stream, { seq: advisory.stream_seq }).catch(() => null);
    if (!stored) return; // a runner dead-lettered (and removed) it meanwhile
    const dead: DeadMessage = {
      subject: stored.subject,
      data: stored.data,
      headers: stored.header,
      stream: advisory.stream,
      seq: advisory.stream_seq,
    };
    const why: DeathCertificate = {
      fn,
      code: "ERR_EXECUTOR_LOST",
      message: `Delivered ${advisory.deliveries} times without finishing (its executor died each time?)`,
      attempts: advisory.deliveries,
    };
    await deadLetter(js, dead, why);
    await this.#onSwept(dead, why);
    await jsm.streams.deleteMessage(advisory.stream, advisory.stream_seq, false).catch(() => {});
    this.swept++;
    log.warn({ fn, stream: advisory.stream, seq: advisory.stream_seq }, "message past MaxDeliver dead-lettered");
  }

  stop(): void {
    for (const sub of this.#subscriptions) sub.unsubscribe();
  }
}
