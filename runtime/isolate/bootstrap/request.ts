import { Headers } from "headers-polyfill";
import { Body, type BodySource, extractBody } from "./body.ts";

const NORMALIZED_METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]);

export interface RequestInitLike {
  method?: string;
  headers?: HeadersInit;
  body?: BodySource;
}

/** WHATWG Request with a buffered body. */
export class Request extends Body {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  readonly redirect = "follow";

  constructor(input: string | URL | Request, init: RequestInitLike = {}) {
    const source = input instanceof Request ? input : null;
    const methodInit = init.method ?? source?.method ?? "GET";
    const upper = methodInit.toUpperCase();
    const method = NORMALIZED_METHODS.has(upper) ? upper : methodInit;
    const explicitBody = init.body !== undefined && init.body !== null;
    if ((method === "GET" || method === "HEAD") && explicitBody) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    const { bytes, contentType } = explicitBody ? extractBody(init.body) : { bytes: null, contentType: null };
    super(explicitBody ? bytes : (source?.peekBytes()?.slice() ?? null));
    this.method = method;
    // new URL() throws a TypeError on relative or malformed input, as the spec requires.
    this.url = source ? source.url : new URL(String(input)).href;
    this.headers = new Headers(init.headers ?? source?.headers ?? undefined);
    if (contentType && !this.headers.has("content-type")) this.headers.set("content-type", contentType);
  }

  clone(): Request {
    if (this.bodyUsed) throw new TypeError("Cannot clone a Request whose body was used");
    return new Request(this);
  }
}
