import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger, TriggerRecord } from "../../protocol/index.ts";
import { AmqpIngester, type Ingester, MqttIngester } from "../ingest/index.ts";
import { NatsIngester } from "../ingest/nats-ingest.ts";

/** A source that could not be reached is tried again after this long. */
const RETRY_START_MS = 5_000;

export interface TriggerIngestOptions {
  /** The worker's connection. */
  readonly nc: NatsConnection;
  /**
   * Where `nats://` sources are read: a connection as the identity of the applications' events (the
   * app identity of `hearth dev`, from HEARTH_INGEST_NATS_*), which may read their subjects where the
   * worker's identity may not. Default `nc`.
   */
  readonly sourceNc?: NatsConnection;
  /** Publishes into the triggers stream, on the worker's connection: the app identity may not write Hearth's subjects. */
  readonly js: JetStreamClient;
  /** This worker's stable name: its MQTT session within a shared subscription. */
  readonly memberId: string;
  readonly log: Logger;
}

/**
 * Ingest, then process: every worker moves the messages of each RabbitMQ, MQTT and core NATS trigger
 * into the trigger's JetStream subject (acking the source after JetStream's ack), whether or not the
 * function is hosted here; the trigger's pull loops then run them where the function is warm. Workers
 * share each source: competing consumers on a RabbitMQ queue, a shared MQTT subscription, a queue
 * group on a NATS subject.
 */
export class TriggerIngest {
  readonly #options: TriggerIngestOptions;
  readonly #running = new Map<string, { ingester: Ingester; shape: string }>();
  readonly #failedAt = new Map<string, number>();
  #closed = false;

  constructor(options: TriggerIngestOptions) {
    this.#options = options;
  }

  /** Starts ingesters for new triggers, stops those of removed or changed ones. */
  sync(triggers: ReadonlyMap<string, TriggerRecord>): void {
    if (this.#closed) return;
    for (const [id, running] of this.#running) {
      const trigger = triggers.get(id);
      if (trigger && JSON.stringify(trigger.source) === running.shape) continue;
      this.#running.delete(id);
      void running.ingester.stop();
    }
    const now = Date.now();
    for (const trigger of triggers.values()) {
      if (this.#running.has(trigger.id) || now - (this.#failedAt.get(trigger.id) ?? 0) < RETRY_START_MS) continue;
      const ingester = this.#ingesterFor(trigger);
      if (!ingester) continue;
      const entry = { ingester, shape: JSON.stringify(trigger.source) };
      this.#running.set(trigger.id, entry);
      ingester.start().then(
        () => this.#failedAt.delete(trigger.id),
        (err: unknown) => {
          this.#options.log.error(
            { err, trigger: trigger.id, fn: trigger.function },
            "trigger source unreachable; retrying",
          );
          this.#failedAt.set(trigger.id, Date.now());
          if (this.#running.get(trigger.id) === entry) this.#running.delete(trigger.id);
          void ingester.stop();
        },
      );
    }
  }

  #ingesterFor(trigger: TriggerRecord): Ingester | null {
    const { nc, sourceNc = nc, js, memberId, log } = this.#options;
    const common = { triggerId: trigger.id, js, log };
    switch (trigger.source.kind) {
      case "amqp":
        return new AmqpIngester({ ...common, url: trigger.source.url, queue: trigger.source.queue });
      case "mqtt":
        return new MqttIngester({ ...common, url: trigger.source.url, topic: trigger.source.topic, memberId });
      case "nats":
        return new NatsIngester({ ...common, nc: sourceNc, subject: trigger.source.subject });
      default:
        return null; // jetstream:// is consumed where it is; cron ticks come from the schedulers
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const running = [...this.#running.values()];
    this.#running.clear();
    await Promise.all(running.map(({ ingester }) => ingester.stop()));
  }
}
