import { randomUUID } from "node:crypto";
import { type NatsConnection, nuid, type Subscription } from "@nats-io/transport-node";
import {
  type ActivateReply,
  codeOf,
  decodeReply,
  type ErrorCode,
  encodeCancel,
  encodeInvocation,
  type FunctionRecord,
  type GatewayLoadReport,
  HearthError,
  type InvocationReply,
  isErrorCode,
  isExecutorId,
  LOAD_REPORT_INTERVAL_MS,
  type Logger,
  NoReplyError,
  noReplyFailure,
  parseExecutorLost,
  parseLoadReport,
  Reporter,
  type RequestHead,
  RequestMux,
  SingleFlight,
  SUBJECTS,
} from "../protocol/index.ts";
import type { PolicyName } from "./routing/policies.ts";
import { Router } from "./routing/router.ts";
import { StreamedBody } from "./streamed-body.ts";

/** Extra time past the function's own timeout for the reply to travel back. */
const REPLY_GRACE_MS = 2_000;
/** How long a request may wait on the cold path (placement, bundle fetch, first isolate). */
const ACTIVATE_TIMEOUT_MS = 60_000;
/** Cold-path rounds before giving up, e.g. if the pool is unloaded again right after activation. */
const MAX_ACTIVATIONS = 3;
/** Endpoints that turn out not to hold the function (unloaded since their report) before giving up. */
const MAX_STALE_ENDPOINTS = 8;

export interface InvokeResult {
  readonly invocationId: string;
  readonly reply: InvocationReply;
  /** The rest of a body that goes on after the reply, pulled as it is iterated. */
  readonly stream?: AsyncIterable<Uint8Array>;
}

export interface InvokerOptions {
  readonly nc: NatsConnection;
  readonly log: Logger;
  readonly policy?: PolicyName;
  /** When a scheduler leader was last heard (ms): a cold request waits out a leader failover. */
  readonly leaderHeardAt?: () => number;
  /** This gateway's id in its load reports. */
  readonly id?: string;
}

/** A leader heard this recently is probably being replaced: cold requests wait for the new one. */
const FAILOVER_WAIT_MS = 6_000;

/**
 * Sends invocations over NATS to one executor chosen by the routing policy, from a table fed by the
 * executors' load reports. Warm path: one request to that executor's subject. When no executor holds
 * the function, the request takes the cold path: the scheduler places it and names the executor.
 * An executor that dies fails its in-flight requests at once (ERR_EXECUTOR_LOST); a lost NATS
 * connection fails them, and new ones, with ERR_UNAVAILABLE rather than after the function timeout.
 */
export class Invoker {
  readonly router: Router;
  readonly #mux: RequestMux;
  readonly #log: Logger;
  readonly #activations = new SingleFlight<string, void>();
  readonly #subscriptions: Subscription[];
  readonly #leaderHeardAt: () => number;
  /** Requests outstanding per function (sent or held, not yet answered), reported to the scheduler. */
  readonly #outstanding = new Map<string, number>();
  readonly #reporter: Reporter;
  readonly #nc: NatsConnection;
  #connected = true;

  constructor(options: InvokerOptions) {
    this.#mux = new RequestMux(options.nc);
    this.#nc = options.nc;
    this.#log = options.log;
    this.router = new Router({ policy: options.policy });
    this.#leaderHeardAt = options.leaderHeardAt ?? (() => 0);
    const id = options.id ?? randomUUID().slice(0, 8);
    this.#reporter = new Reporter({
      publish: (json) => {
        if (!options.nc.isClosed()) options.nc.publish(SUBJECTS.gatewayLoad, json);
      },
      build: (seq): GatewayLoadReport => ({
        gateway: id,
        seq,
        intervalMs: LOAD_REPORT_INTERVAL_MS,
        functions: [...this.#outstanding].map(([name, outstanding]) => ({ name, outstanding })),
      }),
    });
    this.#reporter.start();
    this.#subscriptions = [
      options.nc.subscribe(SUBJECTS.load, {
        callback: (err, msg) => {
          const report = err ? null : parseLoadReport(msg.data);
          if (report) this.router.observe(report);
        },
      }),
      options.nc.subscribe(SUBJECTS.executorLost, {
        callback: (err, msg) => {
          const lost = err ? null : parseExecutorLost(msg.data);
          if (lost) this.#onExecutorLost(lost.executor);
        },
      }),
    ];
  }

  /** Follows the NATS connection: while it is down, requests are answered 503 at once. */
  setConnected(connected: boolean): void {
    this.#connected = connected;
    if (!connected) {
      const failed = this.#mux.fail("disconnected");
      if (failed > 0) this.#log.warn({ failed }, "NATS connection lost; failed the requests in flight");
    }
  }

  async invoke(record: FunctionRecord, head: RequestHead, body: Uint8Array): Promise<InvokeResult> {
    this.#countOutstanding(record.name, 1);
    try {
      return await this.#invoke(record, head, body);
    } finally {
      this.#countOutstanding(record.name, -1);
    }
  }

  #countOutstanding(name: string, delta: number): void {
    const count = (this.#outstanding.get(name) ?? 0) + delta;
    if (count > 0) this.#outstanding.set(name, count);
    else this.#outstanding.delete(name);
    this.#reporter.changed();
  }

  async #invoke(record: FunctionRecord, head: RequestHead, body: Uint8Array): Promise<InvokeResult> {
    const invocationId = nuid.next();
    const fail = (code: ErrorCode, message: string): InvokeResult => ({
      invocationId,
      reply: { ok: false, code, message, errorId: invocationId },
    });
    if (!this.#connected) return fail("ERR_UNAVAILABLE", "The gateway cannot reach NATS; retry shortly");
    const headers = encodeInvocation(invocationId, record.version, head);
    const timeoutMs = record.timeoutMs + REPLY_GRACE_MS;
    let activations = 0;
    let staleEndpoints = 0;
    for (;;) {
      const endpoint = this.router.pick(record.name);
      if (!endpoint) {
        if (activations++ >= MAX_ACTIVATIONS) {
          return fail("ERR_NO_CAPACITY", `${record.name} could not be kept warm; retry`);
        }
        try {
          await this.#activate(record.name);
        } catch (err) {
          // An expected failure (no capacity, no NATS) is an answer about this invocation, with its id.
          if (codeOf(err) === "ERR_INTERNAL") throw err;
          return fail(codeOf(err), (err as Error).message);
        }
        continue;
      }
      endpoint.local++;
      try {
        const msg = await this.#mux.request(endpoint.subject, body, { headers, timeoutMs, group: endpoint.executor });
        const reply = decodeReply(msg);
        // The pool was being unloaded as the request arrived: it did not run, so another executor may take it.
        const refused = !reply.ok && reply.code === "ERR_NO_CAPACITY";
        if (reply.ok && reply.streamToken !== undefined) {
          return {
            invocationId,
            reply,
            stream: this.#streamedBody(record.name, endpoint.executor, reply.streamToken, timeoutMs),
          };
        }
        if (!refused) return { invocationId, reply };
      } catch (err) {
        if (!(err instanceof NoReplyError)) throw err;
        // Unloaded (or its executor gone) since it last reported: try the next one.
        if (err.reason !== "no-responders") {
          const failure = noReplyFailure(err.reason, record.name, timeoutMs);
          return fail(failure.code, failure.message);
        }
      } finally {
        endpoint.local--;
      }
      // Refused, or no responders: this endpoint does not hold the function any more; try the next.
      this.router.drop(record.name, endpoint);
      if (staleEndpoints++ >= MAX_STALE_ENDPOINTS) {
        return fail("ERR_NO_CAPACITY", `No executor took ${record.name}; retry`);
      }
    }
  }

  #streamedBody(fn: string, executor: string, token: string, timeoutMs: number): StreamedBody {
    const subject = SUBJECTS.bodyPull(executor, fn);
    return new StreamedBody({
      mux: this.#mux,
      subject,
      group: executor,
      token,
      fn,
      timeoutMs,
      cancel: () => {
        try {
          this.#nc.publish(subject, new Uint8Array(0), { headers: encodeCancel(token) });
        } catch {
          // Not connected: the executor's timeout for the invocation ends the body.
        }
      },
    });
  }

  #onExecutorLost(executor: string): void {
    this.router.lose(executor);
    const failed = this.#mux.fail("executor-lost", executor);
    if (failed > 0) this.#log.warn({ executor, failed }, "executor lost; failed its requests in flight");
  }

  /** One activation per function at a time from this gateway; concurrent cold requests share it. */
  #activate(name: string): Promise<void> {
    return this.#activations.run(name, () => this.#requestActivation(name));
  }

  async #requestActivation(name: string): Promise<void> {
    const started = performance.now();
    let reply: ActivateReply;
    try {
      reply = await this.#askScheduler(name);
    } catch (err) {
      if (err instanceof NoReplyError && err.reason === "no-responders")
        throw new HearthError("ERR_NO_CAPACITY", "No scheduler is running", { cause: err });
      if (err instanceof NoReplyError && err.reason === "disconnected")
        throw new HearthError("ERR_UNAVAILABLE", "The connection to NATS was lost", { cause: err });
      throw new HearthError("ERR_NO_CAPACITY", `Activation of ${name} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!reply.ok) {
      throw new HearthError(
        isErrorCode(reply.code) ? reply.code : "ERR_INTERNAL",
        reply.message || "activation failed",
      );
    }
    // Copies from the wire are checked, not trusted (the subject is open to any NATS client today).
    if (isExecutorId(reply.executor) && typeof reply.node === "string")
      this.router.add(name, reply.executor, reply.node);
    this.#log.debug({ fn: name, ms: performance.now() - started }, "cold start: function activated");
  }

  /** Asks the leader to place `name`; while a leader was heard moments ago, waits out its failover. */
  async #askScheduler(name: string): Promise<ActivateReply> {
    for (;;) {
      const failingOver = () => Date.now() - this.#leaderHeardAt() < FAILOVER_WAIT_MS;
      try {
        const msg = await this.#mux.request(SUBJECTS.activate, JSON.stringify({ name }), {
          timeoutMs: ACTIVATE_TIMEOUT_MS,
        });
        const reply = msg.json<ActivateReply>();
        if (reply.ok || !(reply.notLeader && failingOver())) return reply;
      } catch (err) {
        if (!(err instanceof NoReplyError && err.reason === "no-responders" && failingOver())) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Fails requests still waiting for a reply (the gateway is shutting down). */
  close(): void {
    this.#reporter.stop();
    for (const sub of this.#subscriptions) sub.unsubscribe();
    this.#mux.close();
  }
}
