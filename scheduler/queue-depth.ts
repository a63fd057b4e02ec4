import type { JetStreamManager } from "@nats-io/jetstream";
import {
  ASYNC_SUBJECTS,
  CONSUMERS,
  type GatewayLoadReport,
  type Logger,
  STREAMS,
  type TriggerRecord,
} from "../protocol/index.ts";

/** Twice a second: a message stored for a cold function is seen within half a second. */
export const QUEUE_DEPTH_INTERVAL_MS = 500;
const ASYNC_PREFIX = ASYNC_SUBJECTS.invoke("");
const TRIGGER_PREFIX = ASYNC_SUBJECTS.trigger("");

/**
 * Collects queue depth per function: messages stored in the async stream and in the triggers stream
 * (waiting, running, or waiting out a retry delay), one stream-info request each for all functions,
 * plus a consumer-info request per jetstream:// trigger (its messages live in the user's stream).
 * Reported to the cluster view in the shape of a gateway's outstanding requests, since that is what
 * they are: demand the executors cannot see yet. A function with messages and no pool is placed at
 * the next decision, which is how async invocations and events of a cold function start.
 */
export class QueueDepth {
  readonly #jsm: JetStreamManager;
  readonly #log: Logger;
  readonly #triggers: () => Iterable<TriggerRecord>;
  #seq = 0;
  #failing = false;

  constructor(jsm: JetStreamManager, triggers: () => Iterable<TriggerRecord>, log: Logger) {
    this.#jsm = jsm;
    this.#triggers = triggers;
    this.#log = log;
  }

  /** Depth per function now, as a report for ClusterView.observeGatewayLoad; null when unreadable. */
  async read(): Promise<GatewayLoadReport | null> {
    try {
      const depth = new Map<string, number>();
      const add = (fn: string | undefined, count: number) => {
        if (fn && count > 0) depth.set(fn, (depth.get(fn) ?? 0) + count);
      };
      const triggers = new Map([...this.#triggers()].map((t) => [t.id, t]));
      const [async, triggered] = await Promise.all([
        this.#subjectCounts(STREAMS.async, ASYNC_SUBJECTS.allInvocations),
        this.#subjectCounts(STREAMS.triggers, ASYNC_SUBJECTS.allTriggers),
      ]);
      for (const [subject, count] of async) add(subject.slice(ASYNC_PREFIX.length), count);
      for (const [subject, count] of triggered)
        add(triggers.get(subject.slice(TRIGGER_PREFIX.length))?.function, count);
      await Promise.all(
        [...triggers.values()].map(async (trigger) => {
          if (trigger.source.kind !== "jetstream") return;
          const info = await this.#jsm.consumers
            .info(trigger.source.stream, CONSUMERS.trigger(trigger.id))
            .catch(() => null);
          if (info) add(trigger.function, info.num_pending + info.num_ack_pending);
        }),
      );
      this.#failing = false;
      const functions = [...depth].map(([name, outstanding]) => ({ name, outstanding }));
      return { gateway: "jetstream", seq: ++this.#seq, intervalMs: QUEUE_DEPTH_INTERVAL_MS, functions };
    } catch (err) {
      if (!this.#failing)
        this.#log.warn({ err }, "reading queue depth failed; queued work does not scale functions meanwhile");
      this.#failing = true;
      return null;
    }
  }

  async #subjectCounts(stream: string, filter: string): Promise<[string, number][]> {
    const info = await this.#jsm.streams.info(stream, { subjects_filter: filter });
    return Object.entries(info.state.subjects ?? {});
  }
}
