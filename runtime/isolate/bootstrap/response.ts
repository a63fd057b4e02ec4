import { Body, type BodySource, extractBody } from "./body.ts";
import { Headers, type HeadersInit } from "./headers.ts";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

export interface ResponseInitLike {
  status?: number;
  statusText?: string;
  headers?: HeadersInit;
}

/** WHATWG Response with a buffered body. */
export class Response extends Body {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly type: "default" | "error" = "default";
  readonly url = "";
  readonly redirected = false;

  constructor(body?: BodySource, init: ResponseInitLike = {}) {
    const status = init.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError(`Response status ${status} is not in the range 200 to 599`);
    }
    const { bytes, stream, contentType } = extractBody(body);
    if ((bytes !== null || stream !== null) && NULL_BODY_STATUSES.has(status)) {
      throw new TypeError(`Response with status ${status} cannot have a body`);
    }
    super(bytes, stream);
    this.status = status;
    this.statusText = init.statusText ?? "";
    this.headers = new Headers(init.headers);
    if (contentType && !this.headers.has("content-type")) this.headers.set("content-type", contentType);
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  clone(): Response {
    return new Response(this.cloneBody(), this);
  }

  static json(data: unknown, init: ResponseInitLike = {}): Response {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Response.json: data is not JSON-serializable");
    const headers = new Headers(init.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new Response(text, { ...init, headers });
  }

  static redirect(url: string | URL, status = 302): Response {
    if (!REDIRECT_STATUSES.has(status)) throw new RangeError(`Invalid redirect status ${status}`);
    return new Response(null, { status, headers: { location: new URL(String(url)).href } });
  }

  static error(): Response {
    const response = new Response(null, { status: 200 });
    Object.defineProperty(response, "type", { value: "error" });
    Object.defineProperty(response, "status", { value: 0 });
    return response;
  }
}
