import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  ASYNC_SUBJECTS,
  type AsyncStore,
  CONSUMERS,
  DEFAULT_ASYNC_POLICY,
  type Logger,
  STREAMS,
} from "../../protocol/index.ts";
import { AsyncInvocationRunner, type HostedTarget, type RetryTiming } from "./async-invocations.ts";
import type { CallbackSender } from "./callbacks.ts";
import { MaxDeliveriesSweeper } from "./dead-letters.ts";
import { ExecutorClient } from "./executor-client.ts";
import { PullLoop } from "./pull-loop.ts";

/** A function hosted on this node, with how many invocations its pool here can run at once. */
export interface HostedFunction extends HostedTarget {
  readonly capacity: number;
}

export interface QueueConsumersOptions {
  readonly nc: NatsConnection;
  readonly store: AsyncStore;
  readonly callbacks: CallbackSender;
  readonly ackWaitMs: number;
  readonly retry: RetryTiming;
  readonly log: Logger;
}

/**
 * Deliveries allowed per async message: Hearth dead-letters after its own count of attempts
 * (retries + 1); the extra deliveries cover redeliveries that were not attempts (a pool unloaded as
 * the message arrived, a worker restart). Past them JetStream stops, and the sweeper dead-letters.
 */
const EXTRA_DELIVERIES = 5;
/** Messages unacked at once per function over the cluster. */
const MAX_ACK_PENDING = 1_000;

/**
 * The JetStream side of a worker node: for each function hosted here, a pull loop on its durable
 * consumer that runs what it pulls on this node's executor. Loops come and go with the pools
 * ({@link sync}); every node hosting a function pulls from the same consumer, each as fast as its
 * own capacity allows, so the load spreads by who has room.
 */
export class QueueConsumers {
  readonly #options: QueueConsumersOptions;
  readonly #client: ExecutorClient;
  readonly #runner: AsyncInvocationRunner;
  readonly #sweeper: MaxDeliveriesSweeper;
  readonly #loops = new Map<string, { loop: PullLoop; hosted: HostedFunction }>();
  #closed = false;

  constructor(options: QueueConsumersOptions) {
    this.#options = options;
    this.#client = new ExecutorClient(options.nc);
    this.#runner = new AsyncInvocationRunner({
      store: options.store,
      js: options.store.js,
      client: this.#client,
      callbacks: options.callbacks,
      ackWaitMs: options.ackWaitMs,
      retry: options.retry,
      log: options.log,
    });
    this.#sweeper = new MaxDeliveriesSweeper(
      options.nc,
      options.store.js,
      options.store.jsm,
      (consumer) => (consumer.startsWith(CONSUMERS.async("")) ? consumer.slice(CONSUMERS.async("").length) : null),
      options.log,
    );
  }

  /** Brings the loops in line with what this node hosts now (called on every change and heartbeat). */
  sync(hosted: ReadonlyMap<string, HostedFunction>): void {
    if (this.#closed) return;
    for (const [fn, entry] of this.#loops) {
      if (!hosted.has(fn)) {
        this.#loops.delete(fn);
        void entry.loop.stop();
      }
    }
    for (const [fn, target] of hosted) {
      const running = this.#loops.get(fn);
      if (running) {
        running.hosted = target;
        continue;
      }
      const entry = { hosted: target, loop: null as unknown as PullLoop };
      entry.loop = this.#asyncLoop(fn, () => entry.hosted);
      this.#loops.set(fn, entry);
    }
  }

  #asyncLoop(fn: string, hosted: () => HostedFunction): PullLoop {
    const policy = { ...DEFAULT_ASYNC_POLICY, ...hosted().record.async };
    return new PullLoop({
      js: this.#options.store.js,
      jsm: this.#options.store.jsm,
      spec: {
        stream: STREAMS.async,
        name: CONSUMERS.async(fn),
        filterSubject: ASYNC_SUBJECTS.invoke(fn),
        ackWaitMs: this.#options.ackWaitMs,
        maxDeliver: policy.retries + 1 + EXTRA_DELIVERIES,
        maxAckPending: MAX_ACK_PENDING,
      },
      capacity: () => hosted().capacity,
      take: (msg: JsMsg) => this.#runner.run(msg, hosted()),
      log: this.#options.log,
    });
  }

  /** The executor is gone: invocations in flight there fail now (and are retried), not at their timeout. */
  lose(executor: string): void {
    this.#client.lose(executor);
  }

  /** Stops pulling new messages (the first step of a shutdown); what runs goes on. */
  async stopPulling(): Promise<void> {
    this.#closed = true;
    this.#sweeper.stop();
    await Promise.all([...this.#loops.values()].map((entry) => entry.loop.stop(false)));
  }

  /**
   * Waits up to `graceMs` for the invocations running to finish (their executors drain first), then
   * fails the rest: they are retried, or redelivered after their ack window if no failure is recorded.
   */
  async close(graceMs = 2_000): Promise<void> {
    await this.stopPulling();
    const loops = [...this.#loops.values()];
    this.#loops.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(loops.map((entry) => entry.loop.stop(true))),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    this.#client.close();
  }
}
