import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import {
  ASYNC_HEADERS,
  type AsyncStore,
  DEFAULT_ASYNC_POLICY,
  type FunctionRecord,
  type InvocationReply,
  type InvocationStatus,
  type Logger,
  retryDelayMs,
  type StoredResponse,
} from "../../protocol/index.ts";
import type { CallbackSender } from "./callbacks.ts";
import { deadLetter, deadMessageOf } from "./dead-letters.ts";
import type { ExecutorClient } from "./executor-client.ts";
import { keepWorking } from "./pull-loop.ts";

/** Where a function runs on this node now. */
export interface HostedTarget {
  readonly executor: string;
  readonly record: FunctionRecord;
}

export interface RetryTiming {
  /** First retry within [0, base), then [0, 2·base)...: full jitter. */
  readonly baseMs: number;
  readonly capMs: number;
}

/** Lambda retries after about 1 and 2 minutes; full jitter over [0, 30 s · 2ⁿ) averages the same order. */
export const DEFAULT_RETRY_TIMING: RetryTiming = { baseMs: 30_000, capMs: 5 * 60_000 };
/** A message that reached an executor which no longer holds the function goes back this soon. */
const NOT_HOSTED_DELAY_MS = 250;

export interface AsyncRunnerOptions {
  readonly store: AsyncStore;
  readonly js: JetStreamClient;
  readonly client: ExecutorClient;
  readonly callbacks: CallbackSender;
  readonly ackWaitMs: number;
  readonly retry: RetryTiming;
  readonly log: Logger;
  readonly now?: () => number;
}

type Failure = { readonly code: string; readonly message: string };

/**
 * Runs async invocations from the HEARTH_ASYNC stream, one message at a time, at least once:
 * its status goes queued → running → succeeded (ack) or, after a failure, back to queued with
 * `nak(delay)` until its retries or its max event age run out, then failed (dead-lettered, term).
 * Attempts (runs that began) are counted in the status, apart from JetStream's deliveries: a
 * redelivery that finds the status "succeeded" acks without running again, and one that finds it
 * "running" knows the last run never finished (its executor or worker died).
 */
export class AsyncInvocationRunner {
  readonly #o: AsyncRunnerOptions;
  readonly #now: () => number;

  constructor(options: AsyncRunnerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async run(msg: JsMsg, target: HostedTarget): Promise<void> {
    const { store, log } = this.#o;
    const { record } = target;
    const id = msg.headers?.get(ASYNC_HEADERS.id);
    const requestJson = msg.headers?.get(ASYNC_HEADERS.request);
    if (!id || !requestJson) {
      await this.#deadLetter(
        msg,
        record.name,
        { code: "ERR_BAD_REQUEST", message: "Message lacks hearth-id or hearth-request" },
        0,
      );
      msg.term();
      return;
    }
    const acceptedAt = Number(msg.headers?.get(ASYNC_HEADERS.acceptedAt)) || this.#now();
    const callbackUrl = msg.headers?.get(ASYNC_HEADERS.callback) || undefined;
    const policy = { ...DEFAULT_ASYNC_POLICY, ...record.async };
    // A first delivery has no history worth a read (a replay is a new message whose status the
    // gateway reset); a redelivery may be of a finished invocation, or of one whose run died.
    const prior = msg.info.deliveryCount > 1 ? await store.status(id) : null;
    if (prior?.state === "succeeded" || prior?.state === "failed") {
      msg.ack(); // a redelivery of a finished invocation (its ack or term was lost)
      return;
    }
    const base: InvocationStatus = prior ?? {
      id,
      function: record.name,
      state: "queued",
      attempts: 0,
      acceptedAt: new Date(acceptedAt).toISOString(),
      ...(callbackUrl ? { callback: { url: callbackUrl, state: "pending", attempts: 0 } } : {}),
    };
    const maxAttempts = policy.retries + 1;
    if (prior?.state === "running" && prior.attempts >= maxAttempts) {
      // Every attempt began and none came back: the executor (or worker) died each time.
      const failure = { code: "ERR_EXECUTOR_LOST", message: `The run died before finishing, ${prior.attempts} times` };
      await this.#fail(msg, base, failure, undefined, acceptedAt);
      return;
    }
    if (this.#now() - acceptedAt > policy.maxEventAgeS * 1000) {
      const failure = {
        code: "ERR_MAX_EVENT_AGE",
        message: `Not run within its max event age of ${policy.maxEventAgeS} s`,
      };
      await this.#fail(
        msg,
        base,
        prior?.error ? { ...failure, message: `${failure.message}; last error: ${prior.error.message}` } : failure,
        prior?.response,
        acceptedAt,
      );
      return;
    }
    const attempts = base.attempts + 1;
    const startedAt = this.#now();
    await store.putStatus({
      ...base,
      state: "running",
      attempts,
      startedAt: new Date(startedAt).toISOString(),
      retryAt: undefined,
    });
    const stopWorking = keepWorking([msg], this.#o.ackWaitMs);
    let reply: InvocationReply;
    try {
      reply = await this.#o.client.invoke({
        executor: target.executor,
        fn: record.name,
        version: record.version,
        id,
        requestJson,
        body: msg.data,
        timeoutMs: record.timeoutMs,
      });
    } finally {
      stopWorking();
    }
    const ran = { ...base, attempts, startedAt: new Date(startedAt).toISOString(), retryAt: undefined };
    if (!reply.ok && reply.code === "ERR_NO_CAPACITY") {
      // It did not run (the pool went away): not an attempt.
      await store.putStatus({ ...base, state: "queued" });
      msg.nak(NOT_HOSTED_DELAY_MS);
      return;
    }
    const response = reply.ok ? await store.storeResponse(id, reply.head, reply.body) : undefined;
    if (reply.ok && reply.head.status < 500) {
      const done: InvocationStatus = {
        ...ran,
        state: "succeeded",
        finishedAt: new Date(this.#now()).toISOString(),
        response,
        error: undefined,
      };
      await store.putStatus(done);
      msg.ack();
      log.debug({ fn: record.name, invocationId: id, attempts }, "async invocation succeeded");
      this.#callBack(done, reply.head.headers, reply.body, startedAt);
      return;
    }
    const failure: Failure = reply.ok
      ? { code: "ERR_FUNCTION_STATUS", message: `The function answered ${reply.head.status}` }
      : { code: reply.code, message: reply.message };
    const retryIn = retryDelayMs(attempts, this.#o.retry.baseMs, this.#o.retry.capMs);
    const retryAt = this.#now() + retryIn;
    if (attempts < maxAttempts && retryAt - acceptedAt <= policy.maxEventAgeS * 1000) {
      await store.putStatus({
        ...ran,
        state: "queued",
        error: failure,
        response,
        retryAt: new Date(retryAt).toISOString(),
      });
      msg.nak(retryIn);
      log.info(
        { fn: record.name, invocationId: id, attempts, code: failure.code, retryInMs: retryIn },
        "async invocation failed; will retry",
      );
      return;
    }
    await this.#fail(msg, ran, failure, response, startedAt);
  }

  /** For good: into the dead-letter stream, status failed, term (a work queue keeps it otherwise). */
  async #fail(
    msg: JsMsg,
    status: InvocationStatus,
    failure: Failure,
    response: StoredResponse | undefined,
    startedAt: number,
  ): Promise<void> {
    await this.#deadLetter(msg, status.function, failure, status.attempts);
    const failed: InvocationStatus = {
      ...status,
      state: "failed",
      error: failure,
      response,
      deadLettered: true,
      retryAt: undefined,
      finishedAt: new Date(this.#now()).toISOString(),
    };
    await this.#o.store.putStatus(failed);
    msg.term();
    this.#o.log.warn(
      { fn: status.function, invocationId: status.id, attempts: status.attempts, code: failure.code },
      "async invocation failed for good; dead-lettered",
    );
    const body = new TextEncoder().encode(JSON.stringify({ error: failure }));
    this.#callBack(failed, [["content-type", "application/json"]], body, startedAt, 500);
  }

  #deadLetter(msg: JsMsg, fn: string, failure: Failure, attempts: number): Promise<void> {
    return deadLetter(this.#o.js, deadMessageOf(msg), { fn, ...failure, attempts });
  }

  /** Posts the result to the callback URL, if any, then records how that went. Not awaited: the ack is out. */
  #callBack(
    status: InvocationStatus,
    headers: ReadonlyArray<readonly [string, string]>,
    body: Uint8Array,
    startedAt: number,
    failedStatus?: number,
  ): void {
    const callback = status.callback;
    if (!callback) return;
    const contentType = headers.find(([name]) => name === "content-type")?.[1];
    void this.#o.callbacks
      .deliver({
        url: callback.url,
        id: status.id,
        fn: status.function,
        state: status.state === "succeeded" ? "succeeded" : "failed",
        durationMs: this.#now() - startedAt,
        status: failedStatus ?? status.response?.status ?? 200,
        contentType,
        body,
      })
      .then((outcome) =>
        this.#o.store.putStatus({
          ...status,
          callback: {
            url: callback.url,
            state: outcome.delivered ? "delivered" : "failed",
            attempts: outcome.attempts,
            ...(outcome.lastError ? { lastError: outcome.lastError } : {}),
          },
        }),
      )
      .catch((err: unknown) =>
        this.#o.log.error({ err, invocationId: status.id }, "recording the callback outcome failed"),
      );
  }
}
