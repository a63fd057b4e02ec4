import type { Logger } from "../../protocol/index.ts";
import type { OutboundFetch } from "../outbound/outbound-fetch.ts";

/** What is POSTed to an invocation's X-Callback-Url when it ends. */
export interface CallbackDelivery {
  readonly url: string;
  readonly id: string;
  readonly fn: string;
  readonly state: "succeeded" | "failed";
  readonly durationMs: number;
  /** The function's response (status, headers, body), or for a failure its error as JSON. */
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: Uint8Array;
}

export interface CallbackPolicy {
  /** Tries in all (default 4: the first and three retries). */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly timeoutMs: number;
}

export const DEFAULT_CALLBACK_POLICY: CallbackPolicy = { attempts: 4, baseDelayMs: 1_000, timeoutMs: 10_000 };

/**
 * Delivers results to callback URLs, through the same fetch and egress policy as function code (a
 * callback URL is caller input: it must not reach what functions may not). A 2xx ends it; anything
 * else is retried with exponential backoff and full jitter. Best effort: it runs in the worker that
 * ran the invocation, after the ack, so a worker that dies mid-retry drops the rest of the retries.
 */
export class CallbackSender {
  readonly #fetch: OutboundFetch;
  readonly #policy: CallbackPolicy;
  readonly #log: Logger;

  constructor(fetch: OutboundFetch, log: Logger, policy: CallbackPolicy = DEFAULT_CALLBACK_POLICY) {
    this.#fetch = fetch;
    this.#policy = policy;
    this.#log = log;
  }

  /** Resolves with the outcome after the last try; never throws. */
  async deliver(cb: CallbackDelivery): Promise<{ delivered: boolean; attempts: number; lastError?: string }> {
    let lastError = "";
    for (let attempt = 1; attempt <= this.#policy.attempts; attempt++) {
      if (attempt > 1) {
        const ceiling = this.#policy.baseDelayMs * 2 ** (attempt - 2);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
      }
      try {
        const res = await this.#fetch.fetch(
          {
            url: cb.url,
            method: "POST",
            headers: [
              ["content-type", cb.contentType ?? "application/octet-stream"],
              ["x-hearth-id", cb.id],
              ["x-hearth-function", cb.fn],
              ["x-hearth-state", cb.state],
              ["x-hearth-status", String(cb.status)],
              ["x-hearth-duration-ms", String(Math.round(cb.durationMs))],
            ],
            body: new Uint8Array(cb.body).buffer as ArrayBuffer, // a copy of just these bytes (a Buffer's .buffer is its whole pool)
            redirect: "error",
          },
          AbortSignal.timeout(this.#policy.timeoutMs),
          this.#policy.timeoutMs,
        );
        if (res.status >= 200 && res.status < 300) return { delivered: true, attempts: attempt };
        lastError = `HTTP ${res.status}`;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      this.#log.warn({ invocationId: cb.id, fn: cb.fn, attempt, error: lastError }, "callback delivery failed");
    }
    return { delivered: false, attempts: this.#policy.attempts, lastError };
  }
}
