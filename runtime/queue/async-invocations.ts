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
import { RunGate } from "./run-gate.ts";

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

const UNKNOWN_FAILURE: Failure = { code: "ERR_INTERNAL", message: "Failed for good (no error recorded)" };

function isFinished(status: InvocationStatus): boolean {
  return status.state === "succeeded" || status.state === "failed";
}

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
  /** Per function: ordinary runs share a turn, suspects run alone (see RunGate). */
  readonly #gates = new Map<string, RunGate>();

  constructor(options: AsyncRunnerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Runs one message. `hostedNow` says where the function runs on this node at the moment it is
   * asked (after the message's turn came: its executor may have died and been replaced meanwhile).
   */
  async run(msg: JsMsg, hostedNow: () => HostedTarget | undefined): Promise<void> {
    const target = hostedNow();
    if (!target) {
      msg.nak(NOT_HOSTED_DELAY_MS); // unloaded since the pull: another node (or this one, later) takes it
      return;
    }
    // The ack window stays open while the message waits for its turn and while it runs.
    const stopWorking = keepWorking([msg], this.#o.ackWaitMs);
    try {
      await this.#run(msg, target.record, hostedNow);
    } finally {
      stopWorking();
    }
  }

  async #run(msg: JsMsg, record: FunctionRecord, hostedNow: () => HostedTarget | undefined): Promise<void> {
    const { store, log } = this.#o;
    const id = msg.headers?.get(ASYNC_HEADERS.id);
    const requestJson = msg.headers?.get(ASYNC_HEADERS.request);
    if (!id || !requestJson) {
      const failure = { code: "ERR_BAD_REQUEST", message: "Message lacks hearth-id or hearth-request" };
      await this.#deadLetter(msg, record.name, failure, 0);
      msg.term();
      return;
    }
    const acceptedAt = Number(msg.headers?.get(ASYNC_HEADERS.acceptedAt)) || this.#now();
    const callbackUrl = msg.headers?.get(ASYNC_HEADERS.callback) || undefined;
    const policy = { ...DEFAULT_ASYNC_POLICY, ...record.async };
    const maxAttempts = policy.retries + 1;
    const fresh: InvocationStatus = {
      id,
      function: record.name,
      state: "queued",
      attempts: 0,
      acceptedAt: new Date(acceptedAt).toISOString(),
      ...(callbackUrl ? { callback: { url: callbackUrl, state: "pending", attempts: 0 } } : {}),
    };
    // Claim the run: "running" written over what is there, unless the invocation has finished (a
    // redelivery whose ack was lost, or a twin delivery that won). Compare-and-set, so that never races.
    let prior: InvocationStatus | null = null;
    let attempts = 0;
    const startedAt = this.#now();
    for (let round = 0; ; round++) {
      const read = await store.readStatus(id);
      prior = read.status;
      if (prior && isFinished(prior)) {
        await this.#settleFinished(msg, prior);
        return;
      }
      const base = prior ?? fresh;
      if (prior?.state === "running" && prior.attempts >= maxAttempts) {
        // Every attempt began and none came back: its executor or worker died each time.
        const failure = {
          code: "ERR_EXECUTOR_LOST",
          message: `The run died before finishing, ${prior.attempts} times`,
        };
        await this.#fail(msg, base, failure, undefined, startedAt);
        return;
      }
      if (this.#now() - acceptedAt > policy.maxEventAgeS * 1000) {
        const message = `Not run within its max event age of ${policy.maxEventAgeS} s`;
        const last = prior?.error ? `; last error: ${prior.error.message}` : "";
        await this.#fail(msg, base, { code: "ERR_MAX_EVENT_AGE", message: message + last }, prior?.response, startedAt);
        return;
      }
      attempts = base.attempts + 1;
      const running: InvocationStatus = {
        ...base,
        state: "running",
        attempts,
        startedAt: new Date(startedAt).toISOString(),
        retryAt: undefined,
      };
      if (await store.writeStatusIf(running, read.revision)) break;
      if (round >= 4) throw new Error(`the status of ${id} keeps changing`);
    }
    const base = prior ?? fresh;
    // A message whose last run died with its executor (or its isolate) may have been what killed it,
    // and one that last ran out of memory may again: it runs alone here, so that if it takes the
    // isolate or the executor down again, it alone is charged (and its neighbours are not).
    const suspect =
      prior?.state === "running" ||
      prior?.error?.code === "ERR_EXECUTOR_LOST" ||
      prior?.error?.code === "ERR_FUNCTION_MEMORY";
    const gate = this.#gateOf(record.name);
    const release = await (suspect ? gate.exclusive() : gate.shared());
    let reply: InvocationReply;
    try {
      const target = hostedNow();
      reply = !target
        ? { ok: false, code: "ERR_NO_CAPACITY", message: `${record.name} is not hosted here any more` }
        : await this.#o.client.invoke({
            executor: target.executor,
            fn: record.name,
            version: record.version,
            id,
            requestJson,
            body: msg.data,
            timeoutMs: record.timeoutMs,
          });
    } finally {
      release();
    }
    const ran = { ...base, attempts, startedAt: new Date(startedAt).toISOString(), retryAt: undefined };
    // Not an attempt: the pool went away before it ran, or its executor died with others in flight
    // (then any of them may have killed it; this one runs alone next time).
    const collateral = !reply.ok && reply.code === "ERR_EXECUTOR_LOST" && !suspect;
    if (!reply.ok && (reply.code === "ERR_NO_CAPACITY" || collateral)) {
      const error = collateral ? { code: reply.code, message: reply.message } : base.error;
      const requeued = await store.advanceStatus({ ...base, state: "queued", error });
      if (requeued) await this.#settleFinished(msg, requeued);
      else msg.nak(collateral ? retryDelayMs(1, this.#o.retry.baseMs, this.#o.retry.capMs) : NOT_HOSTED_DELAY_MS);
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
      await store.putStatus(done); // a success is final: written over whatever a twin delivery wrote
      msg.ack();
      log.debug({ fn: record.name, version: record.version, invocationId: id, attempts }, "async invocation succeeded");
      this.#callBack(done, reply.head.headers, reply.body, startedAt);
      return;
    }
    const failure: Failure = reply.ok
      ? { code: "ERR_FUNCTION_STATUS", message: `The function answered ${reply.head.status}` }
      : { code: reply.code, message: reply.message };
    const retryIn = retryDelayMs(attempts, this.#o.retry.baseMs, this.#o.retry.capMs);
    const retryAt = this.#now() + retryIn;
    if (attempts < maxAttempts && retryAt - acceptedAt <= policy.maxEventAgeS * 1000) {
      const finished = await store.advanceStatus({
        ...ran,
        state: "queued",
        error: failure,
        response,
        retryAt: new Date(retryAt).toISOString(),
      });
      if (finished) {
        await this.#settleFinished(msg, finished);
        return;
      }
      msg.nak(retryIn);
      log.info(
        {
          fn: record.name,
          version: record.version,
          invocationId: id,
          attempts,
          code: failure.code,
          retryInMs: retryIn,
        },
        "async invocation failed; will retry",
      );
      return;
    }
    await this.#fail(msg, ran, failure, response, startedAt);
  }

  #gateOf(fn: string): RunGate {
    let gate = this.#gates.get(fn);
    if (!gate) {
      gate = new RunGate();
      this.#gates.set(fn, gate);
    }
    return gate;
  }

  /**
   * The invocation finished in another delivery: acked if it succeeded; if it failed for good, its
   * dead letter is published again (the message id makes that a no-op if it is there) and it is
   * termed — a worker may have died between the status and the dead letter.
   */
  async #settleFinished(msg: JsMsg, status: InvocationStatus): Promise<void> {
    if (status.state === "failed") {
      await this.#deadLetter(msg, status.function, status.error ?? UNKNOWN_FAILURE, status.attempts);
      msg.term();
    } else {
      msg.ack();
    }
  }

  /** For good: status failed, then into the dead-letter stream, then term (a work queue keeps it otherwise). */
  async #fail(
    msg: JsMsg,
    status: InvocationStatus,
    failure: Failure,
    response: StoredResponse | undefined,
    startedAt: number,
  ): Promise<void> {
    const failed: InvocationStatus = {
      ...status,
      state: "failed",
      error: failure,
      response,
      deadLettered: true,
      retryAt: undefined,
      finishedAt: new Date(this.#now()).toISOString(),
    };
    const finished = await this.#o.store.advanceStatus(failed);
    if (finished) {
      // A twin delivery got there first: a success stands, and a failure is already recorded.
      await this.#settleFinished(msg, finished);
      return;
    }
    await this.#deadLetter(msg, status.function, failure, status.attempts);
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
