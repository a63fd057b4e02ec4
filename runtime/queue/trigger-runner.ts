import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { nuid } from "@nats-io/transport-node";
import {
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  type InvocationReply,
  type Logger,
  retryDelayMs,
  type TriggerRecord,
  type TriggerSource,
} from "../../protocol/index.ts";
import {
  decodeQueueOutcome,
  decodeScheduledOutcome,
  encodeQueueEvent,
  encodeScheduledEvent,
  type QueueDecision,
} from "../isolate/events.ts";
import type { HostedTarget, RetryTiming } from "./async-invocations.ts";
import { deadLetter, deadMessageOf } from "./dead-letters.ts";
import type { ExecutorClient } from "./executor-client.ts";
import { keepWorking } from "./pull-loop.ts";

export interface TriggerRunnerOptions {
  readonly js: JetStreamClient;
  readonly client: ExecutorClient;
  readonly ackWaitMs: number;
  readonly retry: RetryTiming;
  readonly log: Logger;
}

/** What `batch.queue` says in the function: the source's own name for where messages come from. */
export function queueNameOf(source: TriggerSource): string {
  switch (source.kind) {
    case "nats":
      return source.subject;
    case "jetstream":
      return `${source.stream}/${source.subject}`;
    case "amqp":
      return source.queue;
    case "mqtt":
      return source.topic;
    case "cron":
      return source.expression;
  }
}

/** Cloudflare's message content types, from a MIME type where the source gave one. */
function contentTypeOf(msg: JsMsg): string | undefined {
  const mime = msg.headers?.get("content-type")?.toLowerCase() ?? "";
  if (!mime) return undefined;
  if (mime.includes("json")) return "json";
  if (mime.startsWith("text/")) return "text";
  return "bytes";
}

/**
 * Runs trigger events from JetStream: batches of messages through `queue(batch, env, ctx)`, cron
 * ticks through `scheduled(event, env, ctx)`. Each message gets the function's decision (ack, or
 * retry after its delay or Hearth's backoff); a message retried past the trigger's retries goes to
 * the dead-letter stream. JetStream's delivery count is the attempt count here: unlike an async
 * invocation, a batch has no status record to count in.
 */
export class TriggerRunner {
  readonly #o: TriggerRunnerOptions;

  constructor(options: TriggerRunnerOptions) {
    this.#o = options;
  }

  async runBatch(msgs: readonly JsMsg[], trigger: TriggerRecord, target: HostedTarget): Promise<void> {
    if (trigger.source.kind === "cron") {
      for (const msg of msgs) await this.#runTick(msg, trigger, target);
      return;
    }
    const ids = msgs.map((msg) => String(msg.info.streamSequence));
    const { requestJson, body } = encodeQueueEvent(
      queueNameOf(trigger.source),
      msgs.map((msg, i) => ({
        id: ids[i] ?? "",
        timestamp: Math.floor(msg.info.timestampNanos / 1e6),
        attempts: msg.info.deliveryCount,
        body: msg.data,
        contentType: contentTypeOf(msg),
      })),
    );
    const reply = await this.#invoke(msgs, target, requestJson, body);
    if (!reply.ok && reply.code === "ERR_NO_CAPACITY") {
      for (const msg of msgs) msg.nak(250); // not run: the pool went away
      return;
    }
    const result = decodeQueueOutcome(reply, ids);
    if (result.error) {
      this.#o.log.warn(
        {
          fn: target.record.name,
          trigger: trigger.id,
          code: result.error.code,
          reason: result.error.message,
          messages: msgs.length,
        },
        "queue() failed; its undecided messages are retried",
      );
    }
    await Promise.all(
      result.decisions.map((decision, i) => this.#settle(msgs[i] as JsMsg, decision, trigger, result.error)),
    );
  }

  async #runTick(msg: JsMsg, trigger: TriggerRecord, target: HostedTarget): Promise<void> {
    const scheduled =
      Date.parse(msg.headers?.get(ASYNC_HEADERS.scheduledTime) ?? "") || Math.floor(msg.info.timestampNanos / 1e6);
    const expression = trigger.source.kind === "cron" ? trigger.source.expression : "";
    const { requestJson } = encodeScheduledEvent(expression, scheduled);
    const reply = await this.#invoke([msg], target, requestJson, new Uint8Array(0));
    if (!reply.ok && reply.code === "ERR_NO_CAPACITY") {
      msg.nak(250);
      return;
    }
    const result = decodeScheduledOutcome(reply);
    if (result.ok) {
      msg.ack();
      return;
    }
    this.#o.log.warn(
      { fn: target.record.name, trigger: trigger.id, code: result.error.code, reason: result.error.message },
      "scheduled() failed",
    );
    if (result.noRetry) {
      // The function said not to retry this tick: it is done with, not dead.
      msg.ack();
      return;
    }
    await this.#settle(msg, { id: "", action: "retry" }, trigger, result.error);
  }

  #invoke(
    msgs: readonly JsMsg[],
    target: HostedTarget,
    requestJson: string,
    body: Uint8Array,
  ): Promise<InvocationReply> {
    const stopWorking = keepWorking(msgs, this.#o.ackWaitMs);
    return this.#o.client
      .invoke({
        executor: target.executor,
        fn: target.record.name,
        version: target.record.version,
        id: nuid.next(),
        requestJson,
        body,
        timeoutMs: target.record.timeoutMs,
      })
      .finally(stopWorking);
  }

  async #settle(
    msg: JsMsg,
    decision: QueueDecision,
    trigger: TriggerRecord,
    error?: { code: string; message: string },
  ): Promise<void> {
    if (decision.action === "ack") {
      msg.ack();
      return;
    }
    const attempts = msg.info.deliveryCount;
    if (attempts > trigger.retries) {
      // Replays go to the trigger's own subject, whatever stream it came from (a jetstream:// source's
      // subject may be one Hearth may not publish to; the trigger consumes its own subject too).
      await deadLetter(
        this.#o.js,
        { ...deadMessageOf(msg), subject: ASYNC_SUBJECTS.trigger(trigger.id) },
        {
          fn: trigger.function,
          code: error?.code ?? "ERR_RETRIES_EXHAUSTED",
          message: error?.message ?? "The function asked to retry the message",
          attempts,
          trigger: trigger.id,
        },
      );
      msg.term();
      return;
    }
    const delayMs =
      decision.delaySeconds !== undefined
        ? decision.delaySeconds * 1000
        : retryDelayMs(attempts, this.#o.retry.baseMs, this.#o.retry.capMs);
    msg.nak(delayMs);
  }
}
