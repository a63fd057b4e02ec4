import type ivm from "isolated-vm";
import { OutboundError, type OutboundFetch, type OutboundRequest } from "../outbound/outbound-fetch.ts";

/** Outbound requests in flight per isolate at once (Workers allows 6 open connections per request). */
const MAX_IN_FLIGHT = 100;

/**
 * The host side of one isolate's fetch(): requests arrive as copies through a fire-and-forget
 * Callback, run on the shared OutboundFetch, and results go back as copies through
 * `__hearth_fetch_done(id, result)`. No Reference ever enters the isolate. Disposed with the isolate,
 * which aborts what is still in flight.
 */
export class FetchHost {
  readonly #outbound: OutboundFetch;
  #timeoutMs: number;
  readonly #inFlight = new Map<number, AbortController>();
  #done: ivm.Reference | null = null;
  #disposed = false;
  readonly #onCall: (call: Promise<unknown>) => void;

  /** `onCall` sees every call into the isolate (for host-work charges and stuck-call tracking). */
  constructor(outbound: OutboundFetch, timeoutMs: number, onCall: (call: Promise<unknown>) => void) {
    this.#outbound = outbound;
    this.#timeoutMs = timeoutMs;
    this.#onCall = onCall;
  }

  /** Outbound requests in flight. */
  get pending(): boolean {
    return this.#inFlight.size > 0;
  }

  bind(done: ivm.Reference): void {
    this.#done = done;
  }

  /** Outbound requests may take as long as the function; set when a function adopts the isolate. */
  setTimeout(ms: number): void {
    this.#timeoutMs = ms;
  }

  readonly start = (id: number, request: OutboundRequest): void => {
    if (this.#disposed || typeof id !== "number") return;
    // Copied out of an isolate whose bootstrap function code may have tampered with: check the shape.
    if (!isOutboundRequest(request)) {
      this.#reply(id, { error: "malformed request" });
      return;
    }
    if (this.#inFlight.size >= MAX_IN_FLIGHT) {
      this.#reply(id, { error: `Too many outbound requests in flight (limit ${MAX_IN_FLIGHT})` });
      return;
    }
    const abort = new AbortController();
    this.#inFlight.set(id, abort);
    this.#outbound.fetch(request, abort.signal, this.#timeoutMs).then(
      (response) => this.#reply(id, { response }),
      (err: unknown) => this.#reply(id, { error: describe(err) }),
    );
  };

  readonly abort = (id: number): void => {
    this.#inFlight.get(id)?.abort();
  };

  #reply(id: number, result: object): void {
    this.#inFlight.delete(id);
    if (this.#disposed) return;
    if (!this.#done) return;
    // The continuation that awaited this fetch runs inside this call: bounded like any other.
    const call = this.#done.apply(undefined, [id, result], { arguments: { copy: true }, timeout: this.#timeoutMs });
    this.#onCall(call);
    call.catch(() => {});
  }

  dispose(): void {
    this.#disposed = true;
    for (const abort of this.#inFlight.values()) abort.abort();
    this.#inFlight.clear();
  }
}

/** A message for the function's TypeError: our own refusals verbatim, network errors by their cause. */
function describe(err: unknown): string {
  if (err instanceof OutboundError) return err.message;
  const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause;
  if (cause instanceof OutboundError) return cause.message;
  return [e?.code ?? cause?.code, cause?.message ?? e?.message].filter(Boolean).join(": ") || "network error";
}

const REDIRECT_MODES = new Set(["follow", "manual", "error"]);

function isOutboundRequest(value: unknown): value is OutboundRequest {
  const r = value as Partial<OutboundRequest> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    typeof r.url === "string" &&
    typeof r.method === "string" &&
    REDIRECT_MODES.has(r.redirect as string) &&
    (r.body === null || r.body instanceof ArrayBuffer) &&
    Array.isArray(r.headers) &&
    r.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string")
  );
}
