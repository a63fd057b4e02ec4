import { Body, type BodySource, extractBody } from "./body.ts";
import { Headers, type HeadersInit } from "./headers.ts";

const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]);

export interface RequestInitLike {
  method?: string;
  headers?: HeadersInit;
  body?: BodySource;
}

/** The request head as the gateway sends it: URL already normalized (by Node's WHATWG parser). */
export interface HostRequestHead {
  method: string;
  url: string;
  headers: Array<[string, string]>;
}

/** Only this module holds it, so only the bootstrap can build a request from a trusted head. */
const FROM_HOST = Symbol("from host");

/**
 * WHATWG Request with a buffered body. Requests that arrive from the gateway skip re-parsing their
 * URL and build their Headers on first use: in the isolate core-js `new URL()` costs 16 µs, and
 * Headers from ten pairs ≈1 µs (it was 7 µs with headers-polyfill), against a hello-world invocation's few µs.
 */
export class Request extends Body {
  readonly method: string;
  readonly url: string;
  readonly redirect = "follow";
  #headers: Headers | null = null;
  #headerPairs: Array<[string, string]> | null = null;

  constructor(input: string | URL | Request | typeof FROM_HOST, init: RequestInitLike | HostRequestHead = {}) {
    if (input === FROM_HOST) {
      const head = init as HostRequestHead;
      super((init as { body?: Uint8Array | null }).body ?? null);
      this.method = head.method;
      this.url = head.url;
      this.#headerPairs = head.headers;
      return;
    }
    const options = init as RequestInitLike;
    const source = input instanceof Request ? input : null;
    const methodInit = options.method ?? source?.method ?? "GET";
    const upper = methodInit.toUpperCase();
    const method = NORMALIZED_METHODS.has(upper) ? upper : methodInit;
    const explicitBody = options.body !== undefined && options.body !== null;
    if ((method === "GET" || method === "HEAD") && explicitBody) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    const extracted = explicitBody ? extractBody(options.body) : extractBody(source?.cloneBody());
    super(extracted.bytes, extracted.stream);
    const contentType = explicitBody ? extracted.contentType : null;
    this.method = method;
    // new URL() throws a TypeError on relative or malformed input, as the spec requires.
    this.url = source ? source.url : new URL(String(input)).href;
    this.#headers = new Headers(options.headers ?? source?.headers ?? undefined);
    if (contentType && !this.#headers.has("content-type")) this.#headers.set("content-type", contentType);
  }

  get headers(): Headers {
    if (this.#headers === null) {
      this.#headers = new Headers(this.#headerPairs ?? undefined);
      this.#headerPairs = null;
    }
    return this.#headers;
  }

  clone(): Request {
    return new Request(this);
  }
}

/** Builds the Request a function receives from the gateway's head and body. */
export function requestFromHost(head: HostRequestHead, body: Uint8Array | null): Request {
  return new Request(FROM_HOST, { ...head, body } as HostRequestHead);
}
