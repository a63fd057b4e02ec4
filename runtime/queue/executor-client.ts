import type { NatsConnection } from "@nats-io/transport-node";
import {
  decodeReply,
  encodeInvocation,
  type InvocationReply,
  type InvocationTrigger,
  NoReplyError,
  noReplyFailure,
  RequestMux,
  SUBJECTS,
} from "../../protocol/index.ts";

/** Extra time past the function's own timeout for the reply to travel back (as the gateway allows). */
const REPLY_GRACE_MS = 2_000;

/** One invocation of a function on one executor of this node. */
export interface ExecutorInvocation {
  readonly executor: string;
  readonly fn: string;
  readonly version: string;
  readonly id: string;
  /** RequestHead JSON for fetch, or the event JSON of runtime/isolate/events.ts for queue/scheduled. */
  readonly requestJson: string;
  readonly body: Uint8Array;
  readonly timeoutMs: number;
}

/**
 * How a worker's invocation came, for the executor's metrics: the worker runs async invocations
 * (a RequestHead, `{"method":…`) and events (runtime/isolate/events.ts: `{"event":"queue"|"scheduled",…`).
 */
function triggerOf(requestJson: string): InvocationTrigger {
  if (requestJson.startsWith('{"event":"queue"')) return "queue";
  if (requestJson.startsWith('{"event":"scheduled"')) return "cron";
  return "async";
}

/**
 * The worker's way into its executors' function hosts: the same core request/reply an HTTP invocation
 * takes (`hearth.x.<node>.<pid>.<fn>`), so a queued invocation runs exactly as a sync one does, with
 * the same limits, and the executor needs no JetStream rights of its own. An executor that dies fails
 * its requests at once ({@link lose}), not at their timeout.
 */
export class ExecutorClient {
  readonly #mux: RequestMux;

  constructor(nc: NatsConnection) {
    this.#mux = new RequestMux(nc);
  }

  /** Never throws: a missing or dead executor is a failed reply with its code. */
  async invoke(inv: ExecutorInvocation): Promise<InvocationReply> {
    const timeoutMs = inv.timeoutMs + REPLY_GRACE_MS;
    try {
      const msg = await this.#mux.request(SUBJECTS.invoke(inv.executor, inv.fn), inv.body, {
        headers: encodeInvocation(inv.id, inv.version, inv.requestJson, triggerOf(inv.requestJson)),
        timeoutMs,
        group: inv.executor,
      });
      const reply = decodeReply(msg);
      // msg.data is a Buffer view of the connection's read buffer, reused by later reads: keep a copy (Buffer.slice would not copy).
      return reply.ok ? { ...reply, body: new Uint8Array(reply.body) } : reply;
    } catch (err) {
      if (!(err instanceof NoReplyError)) {
        return { ok: false, code: "ERR_INTERNAL", message: err instanceof Error ? err.message : String(err) };
      }
      if (err.reason === "no-responders") {
        // Not run: the pool went away between our pick and the request.
        return { ok: false, code: "ERR_NO_CAPACITY", message: `${inv.fn} is not loaded on ${inv.executor}` };
      }
      return { ok: false, ...noReplyFailure(err.reason, inv.fn, timeoutMs) };
    }
  }

  /** The executor is gone: its invocations in flight fail now with ERR_EXECUTOR_LOST. */
  lose(executor: string): void {
    this.#mux.fail("executor-lost", executor);
  }

  /** The NATS connection dropped: replies in flight will not come; fail them now (they may have run). */
  disconnected(): void {
    this.#mux.fail("disconnected");
  }

  close(): void {
    this.#mux.close();
  }
}
