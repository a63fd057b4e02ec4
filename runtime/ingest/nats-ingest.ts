import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/index.ts";
import { type IngestCounters, type Ingester, type IngesterOptions, newCounters, publishToTrigger } from "./ingest.ts";

export interface NatsIngesterOptions extends IngesterOptions {
  readonly nc: NatsConnection;
  readonly subject: string;
}

/**
 * Moves core NATS messages on a subject into `hearth.trigger.<triggerId>`. Core NATS has no acks:
 * a message published while no worker is subscribed, or lost between here and JetStream (a publish
 * that fails, a worker killed mid-publish), is gone. At most once up to JetStream, at least once
 * after. Every worker subscribes in one queue group per trigger, so each message is ingested once.
 */
export class NatsIngester implements Ingester {
  readonly counters: IngestCounters = newCounters();
  readonly #options: NatsIngesterOptions;
  readonly #log: Logger | undefined;
  #subscription: Subscription | null = null;
  readonly #publishing = new Set<Promise<unknown>>();

  constructor(options: NatsIngesterOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  async start(): Promise<void> {
    const { nc, subject, triggerId, js, publishTimeoutMs } = this.#options;
    this.#subscription = nc.subscribe(subject, {
      queue: `hearth-trigger-${triggerId}`,
      callback: (err, msg) => {
        if (err) return;
        const published = publishToTrigger(
          js,
          triggerId,
          { payload: new Uint8Array(msg.data), contentType: msg.headers?.get("content-type") || undefined },
          this.counters,
          publishTimeoutMs,
        )
          .catch((error: unknown) =>
            this.#log?.warn({ err: error, trigger: triggerId }, "core NATS message lost: not stored"),
          )
          .finally(() => this.#publishing.delete(published));
        this.#publishing.add(published);
      },
    });
    await nc.flush();
  }

  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    await Promise.all(this.#publishing);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
