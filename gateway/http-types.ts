import { type HeaderPairs, HearthError } from "../protocol/index.ts";

/**
 * The gateway's own request/response shapes. Plain data, not WHATWG Request/Response: building an
 * undici Request per call costs more CPU than the whole NATS hop, and the gateway only forwards.
 * Tests call the handler with these directly, no socket needed.
 */
export interface HttpRequest {
  readonly method: string;
  /** Path and query as received, e.g. `/fn/hello/a?x=1`. */
  readonly target: string;
  /** Lowercase names, in order, repeats kept. */
  readonly headers: HeaderPairs;
  readonly body: Uint8Array;
  /** Client address, for x-forwarded-for. */
  readonly remoteAddress?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: HeaderPairs;
  readonly body: Uint8Array | string;
  /**
   * A body sent as it is produced (chunked), after `body`: for answers that never end, such as
   * `hearth logs --follow`. The server stops it (`return()`) when the client goes away.
   */
  readonly stream?: AsyncIterable<Uint8Array>;
}

/** First value of a header (names are lowercase). */
export function headerValue(req: { readonly headers: HeaderPairs }, name: string): string | undefined {
  for (const [k, v] of req.headers) if (k === name) return v;
  return undefined;
}

/** A JSON response. */
export function jsonResponse(status: number, value: unknown, headers: HeaderPairs = []): HttpResponse {
  return { status, headers: [["content-type", "application/json"], ...headers], body: JSON.stringify(value) };
}

/** decodeURIComponent that yields the raw text for a malformed escape (which then fails validation). */
export function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `http://<Host>`: the gateway as the caller addressed it, for URLs in answers. */
export function originOf(req: { readonly headers: HeaderPairs }): string {
  return `http://${headerValue(req, "host") ?? "127.0.0.1"}`;
}

/** A JSON request body; ERR_BAD_REQUEST saying why when it does not parse. */
export function parseJsonBody(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch (err) {
    throw new HearthError("ERR_BAD_REQUEST", `Body is not valid JSON: ${(err as Error).message}`);
  }
}
