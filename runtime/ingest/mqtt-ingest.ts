/**
 * MQTT → JetStream. Subscribes at QoS 1 in a persistent session and sends each PUBACK only after
 * JetStream's publish ack, so the broker keeps every message Hearth has not stored, also while
 * Hearth is down. MQTT has no NAK and no redelivery within a session (MQTT 5 §4.4: unacked messages
 * are re-sent only when the client reconnects), so a failed publish is retried here, in process.
 *
 * Backpressure comes from mqtt.js: it hands packets to `handleMessage` one at a time and sends the
 * PUBACK when its callback is called without error (node_modules/mqtt/build/lib/handlers/publish.js,
 * mqtt 5.16). `customHandleAcks` runs earlier in the same chain and is honoured only with MQTT 5;
 * `handleMessage` works with 3.1.1 too. The price: one JetStream round trip per message, in series,
 * about 1,800 msgs/s per ingester here (bench/ingest-latency.ts) against 6,500 for RabbitMQ with 100 in
 * flight. A topic that outruns that for long fills the session's queue, and Mosquitto drops what is
 * over `max_queued_messages` (1,000 by default; "Outgoing messages are being dropped" in its log), as
 * it would for any slow subscriber: raise that limit on the broker, or add workers to the share group.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type IPublishPacket, type MqttClient } from "mqtt";
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

export interface MqttIngesterOptions extends IngesterOptions {
  /** `mqtt://user:pass@host:port`, as parseTriggerSource gives it. */
  readonly url: string;
  /** Topic filter; wildcards allowed. Subscribed as `$share/hearth-<triggerId>/<topic>`. */
  readonly topic: string;
  /**
   * This worker's stable name when several workers ingest one trigger. Each needs its own session
   * (two clients with one id take the session from each other, MQTT-3.1.4-3), and the same one after
   * a restart: Mosquitto 2.0.11 keeps routing its round-robin share of a shared subscription to a
   * member that is offline, and those messages reach no one until that client id comes back.
   * Default: none, client id `hearth-<triggerId>`.
   */
  readonly memberId?: string;
  /** 5 (default: content type, session expiry) or 4 (MQTT 3.1.1). */
  readonly protocolVersion?: 4 | 5;
  /**
   * MQTT 5 Session Expiry Interval: how long the broker keeps the session, and the messages queued for
   * it, after a disconnect. Default 7 days: over any outage we expect, yet a worker gone for good does
   * not hold its share forever. (3.1.1 sessions never expire.) Mosquitto also caps a session's queue
   * at `max_queued_messages`, 1,000 by default, and drops the rest.
   */
  readonly sessionExpiryS?: number;
  /** Delay between reconnect attempts (mqtt.js retries at a fixed period). Default 1,000 ms. */
  readonly reconnectPeriodMs?: number;
}

const DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 60 * 60;
const DEFAULT_RECONNECT_PERIOD_MS = 1_000;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Moves messages from one MQTT topic filter into `hearth.trigger.<triggerId>`.
 *
 * @example
 * await using ingester = new MqttIngester({ triggerId, js, url: "mqtt://127.0.0.1:1883", topic: "sensors/#" });
 * await ingester.start();
 */
export class MqttIngester extends IngesterBase {
  readonly #options: MqttIngesterOptions;
  readonly #log: Logger;
  readonly #where: string;
  readonly #filter: string;
  #client: MqttClient | null = null;
  /** Bumped on every connect and close: a PUBACK belongs to the connection its PUBLISH came on. */
  #generation = 0;
  /** The message being published (mqtt.js hands them over one at a time). */
  #current: Promise<void> | null = null;
  /** Set once start() has subscribed; from then on failures are logged, not thrown. */
  #subscribed = false;
  readonly #stopping = new AbortController();

  constructor(options: MqttIngesterOptions) {
    super();
    validateTriggerId(options.triggerId);
    if (options.memberId !== undefined) validateTriggerId(options.memberId);
    this.#options = options;
    this.#where = `${maskPassword(options.url)} topic ${JSON.stringify(options.topic)}`;
    this.#filter = `$share/hearth-${options.triggerId}/${options.topic}`;
    this.#log = (options.log ?? silentLogger()).child({ trigger: options.triggerId, source: "mqtt" });
  }

  protected async open(): Promise<void> {
    const { triggerId, memberId, protocolVersion = 5 } = this.#options;
    const client = connect(this.#options.url, {
      clientId: memberId ? `hearth-${triggerId}-${memberId}` : `hearth-${triggerId}`,
      clean: false,
      protocolVersion,
      ...(protocolVersion === 5 && {
        properties: { sessionExpiryInterval: this.#options.sessionExpiryS ?? DEFAULT_SESSION_EXPIRY_S },
      }),
      reconnectPeriod: this.#options.reconnectPeriodMs ?? DEFAULT_RECONNECT_PERIOD_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // We subscribe ourselves: at start, and after a reconnect only into a new session (the old expired).
      resubscribe: false,
      // So that handleMessage is in place before the first PUBLISH of a resumed session arrives.
      manualConnect: true,
    });
    this.#client = client;
    client.handleMessage = (packet, done) => this.#handle(packet, done);
    client.on("close", () => this.#generation++);
    client.on("error", (err) => this.#log.warn({ err }, "MQTT client error"));
    client.on("offline", () => this.#log.warn("MQTT broker unreachable, reconnecting"));

    const first = new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    client.on("connect", (connack) => {
      this.#generation++;
      if (this.#subscribed && !connack.sessionPresent) void this.#subscribe(client);
    });
    client.connect();
    try {
      await first;
      // Also into a resumed session: the source may have changed. Mosquitto 2.0.11 sends a retained
      // message on the first SUBSCRIBE of a shared filter (MQTT 5 §4.8.2 says it should not), not on a repeat.
      await this.#subscribe(client);
    } catch (err) {
      await client.endAsync(true).catch(() => {});
      if ((err as HearthError).code === "ERR_BAD_REQUEST") throw err;
      throw new HearthError("ERR_UNAVAILABLE", `Cannot connect to MQTT at ${this.#where}: ${message(err)}`, {
        cause: err,
      });
    }
    this.#subscribed = true;
    this.#log.info({ filter: this.#filter }, "subscribed");
  }

  async #subscribe(client: MqttClient): Promise<void> {
    try {
      const granted = await client.subscribeAsync(this.#filter, { qos: 1 });
      const refused = granted.find((g) => g.qos >= 128);
      if (refused) {
        throw new HearthError(
          "ERR_BAD_REQUEST",
          `MQTT broker refused the subscription ${this.#filter} (reason ${refused.qos}) at ${this.#where}`,
        );
      }
    } catch (err) {
      if (!this.#subscribed) throw err;
      this.#log.error({ err }, "MQTT subscribe failed");
    }
  }

  #handle(packet: IPublishPacket, done: (err?: Error) => void): void {
    const task = this.#forward(packet).then(
      (acked) => (acked ? done() : done(new Error("not acked: the broker delivers it again in the next session"))),
      (err: Error) => done(err),
    );
    this.#current = task;
    task.finally(() => {
      if (this.#current === task) this.#current = null;
    });
  }

  /** Resolves true when the message may be PUBACKed: JetStream has it, or can never take it. */
  async #forward(packet: IPublishPacket): Promise<boolean> {
    const { js, triggerId, publishTimeoutMs = DEFAULT_PUBLISH_TIMEOUT_MS } = this.#options;
    const generation = this.#generation;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    const contentType = packet.properties?.contentType;
    // MQTT has no message id that survives a session (the packet id is reused once acked), so a
    // message redelivered after a reconnect may be stored twice. Our own retries of one receipt share
    // a random id, so a publish that timed out yet was stored is not stored again.
    const messageId = `mqtt-${randomUUID()}`;
    for (let attempt = 1; ; attempt++) {
      if (this.stopping || generation !== this.#generation) return false;
      try {
        await publishToTrigger(
          js,
          triggerId,
          { payload, messageId, ...(contentType && { contentType }) },
          this.counters,
          publishTimeoutMs,
        );
        return generation === this.#generation;
      } catch (err) {
        if (isPermanentPublishError(err)) {
          // Withholding the PUBACK would stall the session behind this message for good.
          this.#log.error({ err, topic: packet.topic }, "message JetStream cannot take, dropped");
          return true;
        }
        this.#log.warn({ err, attempt }, "publish to JetStream failed, retrying");
        await sleep(backoffMs(attempt), undefined, { signal: this.#stopping.signal }).catch(() => {});
      }
    }
  }

  protected async shutdown(): Promise<void> {
    this.#stopping.abort();
    // A publish in flight may still end in a PUBACK; anything not acked stays in the session.
    await this.#current;
    await this.started?.catch(() => {});
    await this.#client?.endAsync().catch(() => {});
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
