import type ivm from "isolated-vm";
import {
  type OpenedResponse,
  OutboundError,
  type OutboundFetch,
  type OutboundRequest,
} from "../outbound/outbound-fetch.ts";

/** Outbound requests in flight per isolate at once (Workers allows 6 open connections per request). */
const MAX_IN_FLIGHT = 100;
/**
 * A body that says it is at most this long comes with the response, whole (one call into the
 * isolate); any other streams in, a chunk per read the function makes.
 */
const WHOLE_BODY_BYTES = 64 * 1024;
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

type BodyIterator = AsyncIterator<Buffer>;

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
  /** Bodies streaming in, by fetch id: read a chunk per `read` call; aborting the controller destroys them. */
  readonly #bodies = new Map<number, { chunks: BodyIterator; abort: AbortController }>();
  /** Reads under way: like requests in flight, they will call into the isolate. */
  readonly #reading = new Set<number>();
  #done: ivm.Reference | null = null;
  #disposed = false;
  readonly #onCall: (call: Promise<unknown>) => void;

  /** `onCall` sees every call into the isolate (for host-work charges and stuck-call tracking). */
  constructor(outbound: OutboundFetch, timeoutMs: number, onCall: (call: Promise<unknown>) => void) {
    this.#outbound = outbound;
    this.#timeoutMs = timeoutMs;
    this.#onCall = onCall;
  }

  /** Outbound requests or body reads in flight. */
  get pending(): boolean {
    return this.#inFlight.size > 0 || this.#reading.size > 0;
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
    this.#outbound.open(request, abort.signal, this.#timeoutMs).then(
      (response) => this.#answer(id, response, abort),
      (err: unknown) => this.#reply(id, { error: describe(err) }),
    );
  };

  /** A small body (by its content-length) comes whole; any other is left to stream in. */
  async #answer(id: number, response: OpenedResponse, abort: AbortController): Promise<void> {
    const { body, ...head } = response;
    const length = Number(response.headers.find(([name]) => name === "content-length")?.[1] ?? Number.NaN);
    if (NULL_BODY_STATUSES.has(response.status) || length <= WHOLE_BODY_BYTES) {
      try {
        this.#reply(id, { response: { ...head, body: await this.#outbound.readBody(body) } });
      } catch (err) {
        this.#reply(id, { error: describe(err) });
      }
      return;
    }
    if (this.#disposed) {
      body.destroy();
      return;
    }
    this.#bodies.set(id, { chunks: body[Symbol.asyncIterator](), abort });
    // A body the function never reads is closed by undici (its bodyTimeout) or an abort: forget it then.
    body.once("close", () => {
      if (!body.readableEnded && !this.#reading.has(id)) this.#bodies.delete(id);
    });
    this.#reply(id, { response: { ...head, body: null, stream: true } });
  }

  /** Reads the next chunk of body `id` and hands it to the isolate (`{ chunk }`, `{ end }` or `{ error }`). */
  readonly read = (id: number): void => {
    const body = this.#bodies.get(id);
    if (this.#disposed || this.#reading.has(id)) return;
    if (body === undefined) {
      this.#reply(id, { error: "the response body was closed (timed out or aborted)" });
      return;
    }
    this.#reading.add(id);
    body.chunks.next().then(
      ({ done, value }) => {
        if (done) this.#bodies.delete(id);
        const chunk = done ? null : value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
        this.#reply(id, chunk ? { chunk } : { end: true });
      },
      (err: unknown) => {
        this.#bodies.delete(id);
        this.#reply(id, { error: describe(err) });
      },
    );
  };

  readonly abort = (id: number): void => {
    this.#inFlight.get(id)?.abort();
    const body = this.#bodies.get(id);
    this.#bodies.delete(id);
    body?.abort.abort();
  };

  #reply(id: number, result: object): void {
    this.#inFlight.delete(id);
    this.#reading.delete(id);
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
    for (const body of this.#bodies.values()) body.abort.abort();
    this.#inFlight.clear();
    this.#bodies.clear();
    this.#reading.clear();
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
