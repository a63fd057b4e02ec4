import { type Msg, type MsgHdrs, type NatsConnection, nuid, type Subscription } from "@nats-io/transport-node";
import { type FaasMetrics, type InvocationMetrics, statusOfCode } from "../../metrics/index.ts";
import {
  type BodyPull,
  codeOf,
  decodeInvocation,
  decodePull,
  type ErrorCode,
  encodeErrorReply,
  encodeResponseHeaders,
  LIMITS,
  type Logger,
  SUBJECTS,
  traceIdOfRequestJson,
  WriteCoalescer,
} from "../../protocol/index.ts";
import type { ResponseBody } from "../isolate/response-body.ts";
import { BodySender, StreamedBytes } from "./body-sender.ts";
import type { FunctionHost } from "./function-host.ts";

/**
 * Core NATS request/reply into a function host: one subscription per hosted function on this
 * executor's own subject (`hearth.x.<node>.<pid>.<fn>`), metadata in headers, the body as the raw
 * payload, the reply likewise. The warm HTTP path, and the way queue consumers reach functions.
 */
export class CoreTransport {
  readonly #nc: NatsConnection;
  readonly #executorId: string;
  readonly #host: FunctionHost;
  readonly #log: Logger;
  readonly #maxBodyBytes: number;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #writes = new WriteCoalescer();
  readonly #metrics: FaasMetrics | null;
  /** Response bodies still streaming, by the token their pulls name. */
  readonly #streams = new Map<string, BodySender>();
  /** Pulls of every function's bodies (SUBJECTS.bodyPull), subscribed with the first body. */
  #pulls: Subscription | null = null;
  /** Bytes of streamed bodies held here: what a slow client costs this process (bounded by the pulls in flight). */
  readonly streamedBytes = new StreamedBytes();

  constructor(options: {
    nc: NatsConnection;
    executorId: string;
    host: FunctionHost;
    log: Logger;
    maxBodyBytes: number;
    /** Where each invocation's outcome, duration and cold start are counted (none: not counted). */
    metrics?: FaasMetrics;
  }) {
    this.#metrics = options.metrics ?? null;
    this.#nc = options.nc;
    this.#executorId = options.executorId;
    this.#host = options.host;
    this.#log = options.log;
    this.#maxBodyBytes = options.maxBodyBytes;
  }

  /** Starts taking invocations of `fn`; resolves once the server knows the subscription (the gateway retries as soon as a load answers). */
  async attach(fn: string): Promise<void> {
    const subscription = this.#nc.subscribe(SUBJECTS.invoke(this.#executorId, fn), {
      callback: (err, msg) => {
        if (!err) void this.#handle(fn, msg);
      },
    });
    this.#subscriptions.set(fn, subscription);
    await this.#nc.flush();
  }

  /**
   * Stops taking invocations of `fn`. Drain, not unsubscribe: nats.js drops messages that arrive for
   * an unsubscribed subscription, so a request routed here as the pool went away waited out its
   * timeout (504 after 32 s, though it never ran). Drained, it reaches the closing pool and is
   * refused at once; the gateway retries it.
   */
  detach(fn: string): Promise<void> {
    const subscription = this.#subscriptions.get(fn);
    this.#subscriptions.delete(fn);
    return subscription ? subscription.drain().catch(() => {}) : Promise.resolve();
  }

  /** Detaches everything; bodies still streaming go on until `stopStreams`. */
  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions.keys()].map((fn) => this.detach(fn)));
  }

  /** Stops taking pulls: bodies still streaming wait out their timeout (the executor is going). */
  stopStreams(): void {
    this.#pulls?.unsubscribe();
    this.#pulls = null;
  }

  async #handle(fn: string, msg: Msg): Promise<void> {
    let invocationId: string | undefined;
    let requestJson: string | undefined;
    const started = performance.now();
    let metrics: InvocationMetrics | undefined;
    try {
      const inv = decodeInvocation(msg);
      invocationId = inv.id;
      requestJson = inv.requestJson;
      metrics = this.#metrics?.of(fn, inv.version, inv.trigger);
      const body = msg.data.byteLength > 0 ? msg.data : null;
      // Only the gateway can pull a body that goes on after the reply, and only it sends "http" (the
      // worker names every trigger it sends), so the hot path carries no header for it.
      const stream = inv.trigger === "http";
      const outcome = await this.#host.invoke(fn, { ...inv, body, observer: metrics, stream });
      // Refused before it ran (the pool went as it arrived): the gateway runs it elsewhere, and counts nothing.
      if (metrics && !(!outcome.ok && outcome.code === "ERR_NO_CAPACITY")) {
        metrics.record(outcome.ok ? "ok" : statusOfCode(outcome.code), (performance.now() - started) / 1000);
      }
      if (!outcome.ok) {
        // A function's own error stays in the logs (the host logged it); the caller gets the error id.
        const message =
          outcome.code === "ERR_FUNCTION_THREW"
            ? "The function threw an exception; see the logs for this error id"
            : outcome.message;
        this.#replyError(msg, outcome.code, message, inv.id);
        return;
      }
      if (outcome.stream) {
        const token = this.#openStream(outcome.stream);
        this.#respond(msg, outcome.body, encodeResponseHeaders(outcome.head, token), inv.id);
        return;
      }
      const limit = this.#maxReplyBytes();
      if (outcome.body.byteLength > limit) {
        this.#replyError(msg, "ERR_PAYLOAD_TOO_LARGE", `Response body is over the ${limit} byte limit`, inv.id);
        return;
      }
      this.#respond(msg, outcome.body, encodeResponseHeaders(outcome.head), inv.id);
    } catch (err) {
      const traceId = requestJson === undefined ? undefined : traceIdOfRequestJson(requestJson);
      this.#log.error({ err, fn, invocationId, traceId }, "invocation handling failed");
      metrics?.record(statusOfCode(codeOf(err)), (performance.now() - started) / 1000);
      this.#replyError(msg, codeOf(err), err instanceof Error ? err.message : String(err), invocationId);
    }
  }

  /** Registers a streamed body under a fresh token; it is forgotten once it ends, whatever ended it. */
  #openStream(body: ResponseBody): string {
    // Unguessable: another gateway (or anything allowed to publish here) cannot take or cut the body.
    const token = nuid.next();
    const respond = (msg: Msg, data: Uint8Array, headers: MsgHdrs | undefined, sent: () => void) =>
      this.#writes.defer(() => {
        sent();
        try {
          msg.respond(data, headers ? { headers } : undefined);
        } catch (err) {
          // The connection is gone: the gateway's pull times out or fails with it.
          this.#log.warn({ err }, "a streamed body chunk could not be sent");
        }
      });
    // Subscribed before the reply naming the token is sent (that reply is deferred to the end of this
    // turn, and NATS keeps one connection's messages in order), so no pull can come first.
    this.#pulls ??= this.#nc.subscribe(SUBJECTS.bodyPull(this.#executorId, "*"), {
      callback: (err, msg) => {
        if (!err) this.#onPull(msg);
      },
    });
    this.#streams.set(token, new BodySender(body, respond, this.streamedBytes));
    void body.closed.then(() => this.#streams.delete(token));
    return token;
  }

  #onPull(msg: Msg): void {
    let pull: BodyPull | null;
    try {
      pull = decodePull(msg);
    } catch (err) {
      this.#replyError(msg, codeOf(err), err instanceof Error ? err.message : String(err));
      return;
    }
    if (pull === null) {
      this.#replyError(msg, "ERR_BAD_REQUEST", "A pull without its hearth-pull header");
      return;
    }
    const sender = this.#streams.get(pull.token);
    if (pull.cancel) {
      sender?.cancel();
      return;
    }
    if (sender) sender.pull(msg, pull.seq);
    // Ended already (the gateway pulls a few ahead), or never here: say so, so no pull waits.
    else this.#replyError(msg, "ERR_BAD_REQUEST", "No such response body (it ended, or was cancelled)");
  }

  /** Response bodies streaming from this transport. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** A reply must fit in one NATS message with its headers. */
  #maxReplyBytes(): number {
    const natsMax = (this.#nc.info?.max_payload ?? Number.POSITIVE_INFINITY) - LIMITS.natsHeaderHeadroomBytes;
    return Math.min(this.#maxBodyBytes, natsMax);
  }

  #replyError(msg: Msg, code: ErrorCode, message: string, errorId?: string): void {
    const [headers, payload] = encodeErrorReply(code, message, errorId);
    this.#respond(msg, payload, headers);
  }

  /** Replies at the end of this event-loop turn; a reply NATS refuses becomes a small error reply. */
  #respond(msg: Msg, body: Uint8Array, headers: MsgHdrs, invocationId?: string): void {
    this.#writes.defer(() => {
      try {
        msg.respond(body, { headers });
      } catch (err) {
        this.#log.error({ err, invocationId }, "reply refused by NATS");
        const [errorHeaders, payload] = encodeErrorReply(
          "ERR_INVALID_RESPONSE",
          "The response could not be sent",
          invocationId,
        );
        try {
          msg.respond(payload, { headers: errorHeaders });
        } catch {
          // The connection itself is gone; the gateway's backstop answers the caller.
        }
      }
    });
  }
}
