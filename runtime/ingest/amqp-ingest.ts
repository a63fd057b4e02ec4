/**
 * RabbitMQ (AMQP 0-9-1) → JetStream. Consumes the user's queue with manual acks and acks each
 * delivery only after JetStream's publish ack. Unacked deliveries go back to the queue whenever the
 * channel closes, so a crash anywhere loses nothing; RabbitMQ closes a channel that holds a delivery
 * unacked past `consumer_timeout` (30 min by default), far above a publish timeout of seconds.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from "amqplib";
import { HearthError, type Logger, silentLogger } from "../../protocol/index.ts";
import {
  backoffMs,
  DEFAULT_PUBLISH_TIMEOUT_MS,
  IngesterBase,
  type IngesterOptions,
  isPermanentPublishError,
  publishToTrigger,
  validateTriggerId,
} from "./ingest.ts";
import { maskPassword } from "./parse-source.ts";

export interface AmqpIngesterOptions extends IngesterOptions {
  /** `amqp://user:pass@host:port[/vhost]`, as parseTriggerSource gives it. */
  readonly url: string;
  /** Must exist: Hearth only checks it (passively), never declares or changes it. */
  readonly queue: string;
  /**
   * Deliveries unacked at once (`basic.qos`), i.e. publishes to JetStream in flight. Default 100:
   * without a bound RabbitMQ pushes the whole queue to one consumer, and other workers get nothing.
   */
  readonly prefetch?: number;
  /** Wait before a delivery whose publish failed goes back (`nack`, requeue): without it a NATS outage spins. Default 1,000 ms. */
  readonly nackDelayMs?: number;
}

export const DEFAULT_AMQP_PREFETCH = 100;
const DEFAULT_NACK_DELAY_MS = 1_000;

/** One connection, its channel and its consumer; replaced as a whole when any part closes. */
interface Session {
  readonly model: ChannelModel;
  channel?: Channel;
  consumerTag?: string;
  lost: boolean;
}

/**
 * Moves messages from one RabbitMQ queue into `hearth.trigger.<triggerId>`.
 *
 * @example
 * await using ingester = new AmqpIngester({ triggerId, js, url, queue: "orders" });
 * await ingester.start(); // throws ERR_BAD_REQUEST when the queue does not exist
 */
export class AmqpIngester extends IngesterBase {
  readonly #options: Required<Omit<AmqpIngesterOptions, "log">>;
  readonly #log: Logger;
  /** Where logs and errors may show the URL: password masked. */
  readonly #where: string;
  #session: Session | null = null;
  #reconnectAttempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** Aborts nack delays on stop: closing the channel requeues those deliveries anyway. */
  readonly #stopping = new AbortController();

  constructor(options: AmqpIngesterOptions) {
    super();
    validateTriggerId(options.triggerId);
    const prefetch = options.prefetch ?? DEFAULT_AMQP_PREFETCH;
    if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65_535) {
      throw new HearthError("ERR_BAD_REQUEST", `prefetch must be an integer from 1 to 65535, got ${prefetch}`);
    }
    this.#options = Object.freeze({
      triggerId: options.triggerId,
      js: options.js,
      url: options.url,
      queue: options.queue,
      prefetch,
      publishTimeoutMs: options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
      nackDelayMs: options.nackDelayMs ?? DEFAULT_NACK_DELAY_MS,
    });
    this.#where = `${maskPassword(options.url)} queue ${JSON.stringify(options.queue)}`;
    this.#log = (options.log ?? silentLogger()).child({ trigger: options.triggerId, source: "amqp" });
  }

  /** Opens a session; throws clear errors for the first one, the reconnect loop retries later ones. */
  protected async open(): Promise<void> {
    const { url, queue, prefetch, triggerId } = this.#options;
    let model: ChannelModel;
    try {
      model = await connect(url, { clientProperties: { connection_name: `hearth-ingest-${triggerId}` } });
    } catch (err) {
      throw new HearthError("ERR_UNAVAILABLE", `Cannot connect to RabbitMQ at ${this.#where}: ${message(err)}`, {
        cause: err,
      });
    }
    const session: Session = { model, lost: false };
    // Without listeners, an 'error' event would crash the process; 'close' always follows it.
    model.on("error", (err: Error) => this.#log.warn({ err }, "RabbitMQ connection error"));
    model.on("close", () => this.#lose(session, "connection closed"));
    try {
      const channel = await model.createChannel();
      session.channel = channel;
      channel.on("error", (err: Error) => this.#log.warn({ err }, "RabbitMQ channel error"));
      channel.on("close", () => this.#lose(session, "channel closed"));
      await checkQueue(channel, queue, this.#where);
      await channel.prefetch(prefetch);
      const { consumerTag } = await channel.consume(
        queue,
        (msg) => (msg ? this.#forward(session, msg) : this.#lose(session, "consumer cancelled by RabbitMQ")),
        { noAck: false },
      );
      session.consumerTag = consumerTag;
      if (session.lost) throw new Error("the connection closed while starting to consume");
      if (this.stopping) throw new Error("stopped");
    } catch (err) {
      session.lost = true;
      await model.close().catch(() => {});
      throw err;
    }
    this.#session = session;
    this.#reconnectAttempt = 0;
    this.#log.info({ queue }, "consuming");
  }

  #forward(session: Session, msg: ConsumeMessage): void {
    const { js, triggerId, publishTimeoutMs, nackDelayMs } = this.#options;
    const { messageId, contentType } = msg.properties;
    const task = publishToTrigger(
      js,
      triggerId,
      {
        payload: msg.content,
        // A publisher-set id is stable across redeliveries; without one, a message redelivered after a
        // publish that timed out yet was stored lands twice (at least once, as documented).
        ...(typeof messageId === "string" && messageId && { messageId }),
        ...(typeof contentType === "string" && contentType && { contentType }),
      },
      this.counters,
      publishTimeoutMs,
    ).then(
      () => settle(session, (ch) => ch.ack(msg)),
      async (err: unknown) => {
        if (isPermanentPublishError(err)) {
          // requeue=false: RabbitMQ dead-letters it if the queue has x-dead-letter-exchange, else drops it.
          this.#log.error({ err, deliveryTag: msg.fields.deliveryTag }, "message JetStream cannot take, rejected");
          return settle(session, (ch) => ch.nack(msg, false, false));
        }
        this.#log.warn({ err }, "publish to JetStream failed, message goes back to the queue");
        await sleep(nackDelayMs, undefined, { signal: this.#stopping.signal }).catch(() => {});
        settle(session, (ch) => ch.nack(msg, false, true));
      },
    );
    this.#inFlight.add(task);
    task.finally(() => this.#inFlight.delete(task));
  }

  #lose(session: Session, why: string): void {
    if (session.lost) return;
    session.lost = true;
    session.model.close().catch(() => {});
    if (this.#session !== session) return;
    this.#session = null;
    if (this.stopping) return;
    this.#log.warn({ why }, "RabbitMQ session lost, reconnecting");
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delayMs = backoffMs(++this.#reconnectAttempt);
    this.#reconnectTimer = setTimeout(() => {
      this.open().catch((err: unknown) => {
        if (this.stopping) return;
        this.#log.error({ err, attempt: this.#reconnectAttempt }, "RabbitMQ reconnect failed");
        this.#scheduleReconnect();
      });
    }, delayMs);
  }

  protected async shutdown(): Promise<void> {
    clearTimeout(this.#reconnectTimer);
    const session = this.#session;
    this.#session = null;
    // Stop new deliveries first, then let publishes in flight end in an ack, so a clean stop duplicates nothing.
    if (session?.channel && session.consumerTag) await session.channel.cancel(session.consumerTag).catch(() => {});
    this.#stopping.abort();
    await Promise.allSettled([...this.#inFlight]);
    if (session) {
      session.lost = true;
      await session.model.close().catch(() => {});
    }
    await this.started?.catch(() => {});
  }
}

/** Passive `queue.declare`: RabbitMQ answers 404 and closes the channel when the queue is missing. */
async function checkQueue(channel: Channel, queue: string, where: string): Promise<void> {
  try {
    await channel.checkQueue(queue);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) {
      throw new HearthError(
        "ERR_BAD_REQUEST",
        `RabbitMQ has no queue ${JSON.stringify(queue)} (${where}). Hearth does not create queues: ` +
          "declare it (durable) and bind it first, or fix the trigger's source.",
        { cause: err },
      );
    }
    throw err;
  }
}

/** Acks and nacks belong to the channel that delivered: on a newer one the tag means another message. */
function settle(session: Session, act: (channel: Channel) => void): void {
  if (session.lost || !session.channel) return; // the broker requeued it when the channel closed
  try {
    act(session.channel);
  } catch {
    // The channel closed under us: same as above.
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
