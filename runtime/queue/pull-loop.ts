import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { Logger } from "../../protocol/index.ts";

/**
 * The ack window: short, kept open by in-progress acks every third of it while a message waits or
 * runs. A 60 s function is never redelivered while it runs, and after a kill -9 mid-run its message is
 * redelivered within one window (research: an ack window longer than the timeout leaves a crashed
 * run unnoticed for that long; a shorter one without `working()` runs slow functions twice).
 */
export const DEFAULT_ACK_WAIT_MS = 30_000;
/** A pull stays open this long for messages, then capacity is looked at again (nats.js: ≥ 1 s). */
const PULL_EXPIRES_MS = 5_000;
const RETRY_PULL_MS = { min: 200, max: 5_000 };

/** A durable pull consumer as Hearth sets it up: explicit acks, retries by `nak(delay)`, never BackOff. */
export interface ConsumerSpec {
  readonly stream: string;
  readonly name: string;
  readonly filterSubject: string;
  readonly ackWaitMs: number;
  /** Backstop only: Hearth counts attempts itself and dead-letters; past this the advisory sweeper does. */
  readonly maxDeliver: number;
  /** Messages unacked at once over the cluster (set explicitly; JetStream's default is 1,000). */
  readonly maxAckPending: number;
  /**
   * Only messages stored after the consumer's creation (a trigger on a user's stream starts from
   * now, not from its history); otherwise all (Hearth's own work queues hold only work to do).
   */
  readonly deliverNew?: boolean;
}

/**
 * Creates the consumer, or brings its limits up to date; idempotent, so every worker hosting the
 * function may call it. BackOff is deliberately not set: it replaces AckWait with its first entry and
 * does not apply to NAKs (nats-server consumer.go; nats-io/nats-server#4726).
 */
export async function ensureConsumer(jsm: JetStreamManager, spec: ConsumerSpec): Promise<void> {
  const config: Partial<ConsumerConfig> = {
    durable_name: spec.name,
    filter_subject: spec.filterSubject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: spec.deliverNew ? DeliverPolicy.New : DeliverPolicy.All,
    ack_wait: nanos(spec.ackWaitMs),
    max_deliver: spec.maxDeliver,
    max_ack_pending: spec.maxAckPending,
  };
  const info = await jsm.consumers.info(spec.stream, spec.name).catch(() => null);
  if (!info) {
    await jsm.consumers.add(spec.stream, config).catch(async (err: unknown) => {
      // Another worker created it between our info and add.
      if (!(await jsm.consumers.info(spec.stream, spec.name).catch(() => null))) throw err;
    });
    return;
  }
  const c = info.config;
  if (
    c.ack_wait !== config.ack_wait ||
    c.max_deliver !== config.max_deliver ||
    c.max_ack_pending !== spec.maxAckPending
  )
    await jsm.consumers.update(spec.stream, spec.name, {
      ack_wait: config.ack_wait,
      max_deliver: config.max_deliver,
      max_ack_pending: config.max_ack_pending,
    });
}

export interface PullLoopOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly spec: ConsumerSpec;
  /** Messages this loop may hold now (received, not yet finished). */
  readonly capacity: () => number;
  /** Takes one message; the loop counts it held until the returned promise settles. */
  readonly take: (msg: JsMsg) => Promise<void>;
  readonly log: Logger;
}

/**
 * Pulls from one durable consumer only as many messages as can start now. Nothing is buffered ahead
 * of capacity: a message pulled early would sit with its ack window running and could be redelivered
 * to another worker while it waits here (the duplicate-run failure of prefetching queue workers).
 */
export class PullLoop {
  readonly #options: PullLoopOptions;
  #held = 0;
  #running = true;
  #pull: ConsumerMessages | null = null;
  /** Resolved when a held message finishes (capacity may be back). */
  #freed: PromiseWithResolvers<void> = Promise.withResolvers();
  readonly #done: Promise<void>;
  readonly #finished = new Set<Promise<void>>();

  constructor(options: PullLoopOptions) {
    this.#options = options;
    this.#done = this.#run();
  }

  get held(): number {
    return this.#held;
  }

  async #run(): Promise<void> {
    const { js, jsm, spec, log } = this.#options;
    let failures = 0;
    while (this.#running) {
      try {
        await ensureConsumer(jsm, spec);
        const consumer = await js.consumers.get(spec.stream, spec.name);
        while (this.#running) {
          const free = this.#options.capacity() - this.#held;
          if (free <= 0) {
            await this.#freed.promise;
            continue;
          }
          const pull = await consumer.fetch({ max_messages: free, expires: PULL_EXPIRES_MS });
          this.#pull = pull;
          // Stopped while the pull was being set up: stop it too, or it would keep taking messages.
          if (!this.#running) pull.stop();
          for await (const msg of pull) this.#hold(msg);
          this.#pull = null;
          failures = 0;
        }
      } catch (err) {
        this.#pull = null;
        if (!this.#running) break;
        const delay = Math.min(RETRY_PULL_MS.min * 2 ** failures++, RETRY_PULL_MS.max);
        log.warn({ err, consumer: spec.name, retryInMs: delay }, "pulling from the consumer failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Capacity may have changed (a pool came or grew): look again instead of waiting for a message to finish. */
  wake(): void {
    const freed = this.#freed;
    this.#freed = Promise.withResolvers();
    freed.resolve();
  }

  #hold(msg: JsMsg): void {
    this.#held++;
    const finished: Promise<void> = this.#options
      .take(msg)
      .catch((err: unknown) =>
        this.#options.log.error({ err, consumer: this.#options.spec.name }, "message handling failed"),
      )
      .finally(() => {
        this.#held--;
        this.#finished.delete(finished);
        this.wake();
      });
    this.#finished.add(finished);
  }

  /** Stops pulling; with `wait`, resolves once the messages held have finished. */
  async stop(wait = true): Promise<void> {
    this.#running = false;
    this.#pull?.stop();
    this.#freed.resolve();
    await this.#done;
    if (wait) await Promise.all(this.#finished);
  }
}

/**
 * Keeps a message's ack window open while it waits or runs: `working()` every third of the window
 * (the AckWait 30 s / every 10 s). Returns the function that stops it.
 */
export function keepWorking(msgs: readonly JsMsg[], ackWaitMs: number): () => void {
  const timer = setInterval(
    () => {
      for (const msg of msgs) msg.working();
    },
    Math.max(100, Math.floor(ackWaitMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}
