import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/index.ts";
import { IngesterBase, type IngesterOptions, publishToTrigger } from "./ingest.ts";

export interface NatsIngesterOptions extends IngesterOptions {
  /**
   * The connection the source subject is read on. It may be another identity than `js`'s, and
   * usually is: in `hearth dev` the app identity reads the application's subject (the worker's may
   * not), and the worker's connection, behind `js`, publishes into `hearth.trigger.<id>` (the app's
   * may not).
   */
  readonly nc: NatsConnection;
  readonly subject: string;
}

/**
 * Moves core NATS messages on a subject into `hearth.trigger.<triggerId>`. Core NATS has no acks:
 * a message published while no worker is subscribed, or lost between here and JetStream (a publish
 * that fails, a worker killed mid-publish), is gone. At most once up to JetStream, at least once
 * after. Every worker subscribes in one queue group per trigger, so each message is ingested once.
 * A subscription NATS refuses (no permission for the subject) fails start(), and is logged if it
 * comes later: nats.js reports it to the subscription's callback and closes it.
 */
export class NatsIngester extends IngesterBase {
  readonly #options: NatsIngesterOptions;
  readonly #log: Logger | undefined;
  #subscription: Subscription | null = null;
  readonly #publishing = new Set<Promise<unknown>>();

  constructor(options: NatsIngesterOptions) {
    super();
    this.#options = options;
    this.#log = options.log;
  }

  protected async open(): Promise<void> {
    const { nc, subject, triggerId, js, publishTimeoutMs } = this.#options;
    const subscription = nc.subscribe(subject, {
      queue: `hearth-trigger-${triggerId}`,
      callback: (err, msg) => {
        if (err) return; // a refusal: `closed` below resolves with it
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
    this.#subscription = subscription;
    // The server answers a refused SUB with -ERR before the flush's PONG, and nats.js closes the
    // subscription with that error: without this check the trigger would never fire, silently.
    await nc.flush();
    if (subscription.isClosed() && this.#subscription === subscription) {
      this.#subscription = null;
      const err = await subscription.closed;
      throw err instanceof Error ? err : new Error(`The subscription to ${subject} was closed`);
    }
    void subscription.closed.then((err) => {
      if (!err || this.#subscription !== subscription) return;
      this.#subscription = null;
      this.#log?.error({ err, trigger: triggerId, subject }, "trigger subject refused; no longer ingested");
    });
  }

  protected async shutdown(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = null;
    await Promise.all(this.#publishing);
  }
}
