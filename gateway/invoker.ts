import { type NatsConnection, nuid } from "@nats-io/transport-node";
import {
  decodeReply,
  encodeInvocation,
  type FunctionRecord,
  HearthError,
  type InvocationReply,
  isErrorCode,
  type Logger,
  type RequestHead,
  SingleFlight,
  SUBJECTS,
} from "../protocol/index.ts";
import { NoReplyError, RequestMux } from "./request-mux.ts";

/** Extra time past the function's own timeout for the reply to travel back. */
const REPLY_GRACE_MS = 2_000;
/** How long a request may wait on the cold path (placement, bundle fetch, first isolate). */
const ACTIVATE_TIMEOUT_MS = 60_000;
/** Cold-path rounds before giving up, e.g. if the pool is unloaded again right after activation. */
const MAX_ACTIVATIONS = 3;

export interface InvokeResult {
  readonly invocationId: string;
  readonly reply: InvocationReply;
}

/**
 * Sends invocations over NATS. Warm path: one request to the function's subject, answered by any
 * executor holding a pool. When nobody holds one, NATS answers "no responders" at once, and the
 * request takes the cold path: ask the scheduler to place the function, then send again.
 */
export class Invoker {
  readonly #mux: RequestMux;
  readonly #log: Logger;
  readonly #activations = new SingleFlight<string, void>();

  constructor(nc: NatsConnection, log: Logger) {
    this.#mux = new RequestMux(nc);
    this.#log = log;
  }

  async invoke(record: FunctionRecord, head: RequestHead, body: Uint8Array): Promise<InvokeResult> {
    const invocationId = nuid.next();
    const headers = encodeInvocation(invocationId, record.version, head);
    const timeout = record.timeoutMs + REPLY_GRACE_MS;
    for (let activations = 0; ; activations++) {
      try {
        const msg = await this.#mux.request(SUBJECTS.invoke(record.name), body, { headers, timeoutMs: timeout });
        return { invocationId, reply: decodeReply(msg) };
      } catch (err) {
        if (isNoResponders(err) && activations < MAX_ACTIVATIONS) {
          await this.#activate(record.name);
          continue;
        }
        if (err instanceof NoReplyError && err.reason === "timeout") {
          // The executor enforces the timeout itself; getting here means it died or NATS lost the reply.
          return {
            invocationId,
            reply: {
              ok: false,
              code: "ERR_FUNCTION_TIMEOUT",
              message: `No reply within ${timeout} ms`,
              errorId: invocationId,
            },
          };
        }
        throw err;
      }
    }
  }

  /** One activation per function at a time from this gateway; concurrent cold requests share it. */
  #activate(name: string): Promise<void> {
    return this.#activations.run(name, () => this.#requestActivation(name));
  }

  async #requestActivation(name: string): Promise<void> {
    const started = performance.now();
    let reply: { ok: boolean; code?: string; message?: string };
    try {
      const msg = await this.#mux.request(SUBJECTS.activate, JSON.stringify({ name }), {
        timeoutMs: ACTIVATE_TIMEOUT_MS,
      });
      reply = msg.json();
    } catch (err) {
      if (isNoResponders(err)) throw new HearthError("ERR_NO_CAPACITY", "No scheduler is running", { cause: err });
      throw new HearthError("ERR_NO_CAPACITY", `Activation of ${name} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!reply.ok) {
      throw new HearthError(
        isErrorCode(reply.code) ? reply.code : "ERR_INTERNAL",
        reply.message ?? "activation failed",
      );
    }
    this.#log.debug({ fn: name, ms: performance.now() - started }, "cold start: function activated");
  }

  /** Fails requests still waiting for a reply (the gateway is shutting down). */
  close(): void {
    this.#mux.close();
  }
}

function isNoResponders(err: unknown): boolean {
  return err instanceof NoReplyError && err.reason === "no-responders";
}
