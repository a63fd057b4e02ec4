import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  type AsyncStore,
  CONSUMERS,
  DEFAULT_ASYNC_POLICY,
  type Logger,
  STREAMS,
  type TriggerRecord,
} from "../../protocol/index.ts";
import { AsyncInvocationRunner, type HostedTarget, type RetryTiming } from "./async-invocations.ts";
import { Batcher } from "./batcher.ts";
import type { CallbackSender } from "./callbacks.ts";
import { type DeadMessage, type DeathCertificate, MaxDeliveriesSweeper } from "./dead-letters.ts";
import { ExecutorClient } from "./executor-client.ts";
import { type ConsumerSpec, PullLoop } from "./pull-loop.ts";
import { TriggerRunner } from "./trigger-runner.ts";

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
 * Deliveries allowed per message beyond the attempts Hearth counts itself (retries + 1): they cover
 * redeliveries that were not attempts (a pool unloaded as the message arrived, a worker restart).
 * Past them JetStream stops delivering, and the sweeper dead-letters.
 */
const EXTRA_DELIVERIES = 20;
/** How long a loop outlives its function's absence from this node (an executor restart takes ~0.1–1 s). */
const ORPHAN_GRACE_MS = 10_000;
/** Async messages unacked at once per function over the cluster. */
const MAX_ACK_PENDING = 1_000;

/**
 * A trigger's consumer on `stream`: on the user's stream of a jetstream:// source (from the
 * trigger's creation on: the control plane creates it then, see gateway/triggers-api.ts), or on
 * Hearth's triggers stream (ingested events, cron ticks, replays).
 */
export function triggerConsumerSpec(
  trigger: TriggerRecord,
  stream: string,
  filterSubject: string,
  ackWaitMs: number,
): ConsumerSpec {
  return {
    stream,
    name: CONSUMERS.trigger(trigger.id),
    filterSubject,
    ackWaitMs,
    maxDeliver: trigger.retries + 1 + EXTRA_DELIVERIES,
    maxAckPending: trigger.maxConcurrency * trigger.batchSize,
    deliverNew: stream !== STREAMS.triggers,
  };
}

/** One pull loop this node should run: its consumer, how much it may hold, what it does with a message. */
interface LoopPlan {
  readonly spec: ConsumerSpec;
  readonly capacity: () => number;
  /** Builds what the loop does with a message; called only when the loop starts (plans are made every heartbeat). */
  readonly taker: () => (msg: JsMsg) => Promise<void>;
  /** Settings the loop was built with: a change (batch size, retries) rebuilds it. */
  readonly shape: string;
}

/**
 * The JetStream side of a worker node: for each function hosted here, a pull loop on its async
 * consumer, and for each trigger of it, a loop on the trigger's consumer (two for a jetstream://
 * source: the source stream, and Hearth's triggers stream where replays land). Each runs what it
 * pulls on this node's executor. Loops come and go with the pools ({@link sync}); every node hosting
 * a function pulls from the same consumers, each as fast as its own capacity allows, so the load
 * spreads by who has room.
 */
export class QueueConsumers {
  readonly #options: QueueConsumersOptions;
  readonly #client: ExecutorClient;
  readonly #asyncRunner: AsyncInvocationRunner;
  readonly #triggerRunner: TriggerRunner;
  readonly #sweeper: MaxDeliveriesSweeper;
  readonly #loops = new Map<string, { loop: PullLoop; shape: string; orphanedAt: number | null }>();
  /** What each loop reads when it takes a message: the latest target and trigger, not those of its start. */
  #hosted: ReadonlyMap<string, HostedFunction> = new Map();
  #triggers: ReadonlyMap<string, TriggerRecord> = new Map();
  #closed = false;

  constructor(options: QueueConsumersOptions) {
    this.#options = options;
    this.#client = new ExecutorClient(options.nc);
    const shared = {
      js: options.store.js,
      client: this.#client,
      ackWaitMs: options.ackWaitMs,
      retry: options.retry,
      log: options.log,
    };
    this.#asyncRunner = new AsyncInvocationRunner({ ...shared, store: options.store, callbacks: options.callbacks });
    this.#triggerRunner = new TriggerRunner(shared);
    this.#sweeper = new MaxDeliveriesSweeper(
      options.nc,
      options.store.js,
      options.store.jsm,
      (consumer) => this.#functionOfConsumer(consumer),
      options.log,
      (dead, why) => this.#recordSwept(dead, why),
    );
  }

  /** An async invocation dead-lettered by the sweeper is failed in its status too. */
  async #recordSwept(dead: DeadMessage, why: DeathCertificate): Promise<void> {
    const id = dead.headers?.get(ASYNC_HEADERS.id);
    if (dead.stream !== STREAMS.async || !id) return;
    const { status } = await this.#options.store.readStatus(id);
    if (!status) return;
    await this.#options.store.advanceStatus({
      ...status,
      state: "failed",
      error: { code: why.code, message: why.message },
      deadLettered: true,
      retryAt: undefined,
      finishedAt: new Date().toISOString(),
    });
  }

  #functionOfConsumer(consumer: string): string | null {
    const asyncPrefix = CONSUMERS.async("");
    if (consumer.startsWith(asyncPrefix)) return consumer.slice(asyncPrefix.length);
    const triggerPrefix = CONSUMERS.trigger("");
    if (consumer.startsWith(triggerPrefix))
      return this.#triggers.get(consumer.slice(triggerPrefix.length))?.function ?? null;
    return null;
  }

  /**
   * Brings the loops in line with what this node hosts now and the triggers that exist (called on
   * every change and heartbeat).
   */
  sync(
    hosted: ReadonlyMap<string, HostedFunction>,
    triggers: ReadonlyMap<string, TriggerRecord> = this.#triggers,
  ): void {
    if (this.#closed) return;
    this.#hosted = hosted;
    this.#triggers = triggers;
    const plans = new Map<string, LoopPlan>();
    for (const fn of hosted.keys()) plans.set(`async ${fn}`, this.#asyncPlan(fn));
    for (const trigger of triggers.values()) {
      if (!hosted.has(trigger.function)) continue;
      plans.set(
        `trigger ${trigger.id}`,
        this.#triggerPlan(trigger, STREAMS.triggers, ASYNC_SUBJECTS.trigger(trigger.id)),
      );
      if (trigger.source.kind === "jetstream") {
        const { stream, subject } = trigger.source;
        plans.set(`trigger ${trigger.id} ${stream}`, this.#triggerPlan(trigger, stream, subject));
      }
    }
    const now = Date.now();
    for (const [key, running] of this.#loops) {
      const plan = plans.get(key);
      if (plan?.shape === running.shape) {
        running.orphanedAt = null;
        continue;
      }
      // A function gone for a moment (its executor died and is being replaced) keeps its loop, with
      // no capacity: stopping and restarting pulls leaves stray pull requests on the server, and
      // nats-server 2.9 can then hand one message to two pulls (nats-server#5305, fixed in 2.10.14).
      if (!plan) {
        running.orphanedAt ??= now;
        if (now - running.orphanedAt < ORPHAN_GRACE_MS) continue;
      }
      this.#loops.delete(key);
      void running.loop.stop();
    }
    for (const [key, plan] of plans) {
      const running = this.#loops.get(key);
      if (running) {
        running.loop.wake();
        continue;
      }
      const { js, jsm } = this.#options.store;
      this.#loops.set(key, {
        shape: plan.shape,
        orphanedAt: null,
        loop: new PullLoop({
          js,
          jsm,
          spec: plan.spec,
          capacity: plan.capacity,
          take: plan.taker(),
          log: this.#options.log,
        }),
      });
    }
  }

  #asyncPlan(fn: string): LoopPlan {
    const hosted = () => this.#hosted.get(fn);
    const retries = { ...DEFAULT_ASYNC_POLICY, ...hosted()?.record.async }.retries;
    return {
      spec: {
        stream: STREAMS.async,
        name: CONSUMERS.async(fn),
        filterSubject: ASYNC_SUBJECTS.invoke(fn),
        ackWaitMs: this.#options.ackWaitMs,
        maxDeliver: retries + 1 + EXTRA_DELIVERIES,
        maxAckPending: MAX_ACK_PENDING,
      },
      capacity: () => hosted()?.capacity ?? 0,
      taker: () => (msg) => this.#asyncRunner.run(msg, hosted),
      shape: String(retries),
    };
  }

  /** A trigger's loop on one stream: batches of its settings, at most its concurrency in flight. */
  #triggerPlan(trigger: TriggerRecord, stream: string, filterSubject: string): LoopPlan {
    const run = async (batch: JsMsg[]) => {
      const latest = this.#triggers.get(trigger.id);
      const target = latest && this.#hosted.get(latest.function);
      if (latest && target) await this.#triggerRunner.runBatch(batch, latest, target);
      else for (const msg of batch) msg.nak(250);
    };
    return {
      spec: triggerConsumerSpec(trigger, stream, filterSubject, this.#options.ackWaitMs),
      // Batches in flight here: the trigger's concurrency, or what the pool can run if that is less.
      capacity: () =>
        Math.min(trigger.maxConcurrency, this.#hosted.get(trigger.function)?.capacity ?? 0) * trigger.batchSize,
      taker: () => {
        const batcher = new Batcher(trigger.batchSize, trigger.batchWaitMs, this.#options.ackWaitMs, run);
        return (msg) => batcher.add(msg);
      },
      shape: JSON.stringify([
        trigger.function,
        trigger.source,
        trigger.batchSize,
        trigger.batchWaitMs,
        trigger.maxConcurrency,
        trigger.retries,
      ]),
    };
  }

  /** The executor is gone: invocations in flight there fail now (and are retried), not at their timeout. */
  lose(executor: string): void {
    this.#client.lose(executor);
  }

  /** The NATS connection dropped: what runs on executors fails now (and is retried), not at its timeout. */
  disconnected(): void {
    this.#client.disconnected();
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
