import type { JetStreamManager } from "@nats-io/jetstream";
import { ASYNC_SUBJECTS, type GatewayLoadReport, type Logger, STREAMS } from "../protocol/index.ts";

/** Twice a second: a message stored for a cold function is seen within half a second. */
export const QUEUE_DEPTH_INTERVAL_MS = 500;
const ASYNC_PREFIX = ASYNC_SUBJECTS.invoke("");

/**
 * Collects queue depth: messages stored per function in the async stream (waiting, running, or
 * waiting out a retry delay), in one stream-info request for all functions. Reported to the cluster
 * view in the shape of a gateway's outstanding requests, since that is what they are: demand the
 * executors cannot see yet. A function with messages and no pool is placed at the next decision,
 * which is how async invocations of a cold function start.
 */
export class QueueDepth {
  readonly #jsm: JetStreamManager;
  readonly #log: Logger;
  #seq = 0;
  #failing = false;

  constructor(jsm: JetStreamManager, log: Logger) {
    this.#jsm = jsm;
    this.#log = log;
  }

  /** Depth per function now, as a report for ClusterView.observeGatewayLoad; null when unreadable. */
  async read(): Promise<GatewayLoadReport | null> {
    try {
      const info = await this.#jsm.streams.info(STREAMS.async, { subjects_filter: ASYNC_SUBJECTS.allInvocations });
      const functions: { name: string; outstanding: number }[] = [];
      for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
        if (count > 0 && subject.startsWith(ASYNC_PREFIX))
          functions.push({ name: subject.slice(ASYNC_PREFIX.length), outstanding: count });
      }
      this.#failing = false;
      return { gateway: "jetstream", seq: ++this.#seq, intervalMs: QUEUE_DEPTH_INTERVAL_MS, functions };
    } catch (err) {
      if (!this.#failing)
        this.#log.warn({ err }, "reading queue depth failed; async backlogs do not scale functions meanwhile");
      this.#failing = true;
      return null;
    }
  }
}
