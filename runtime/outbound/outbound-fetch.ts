import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import { Agent, type Dispatcher, request } from "undici";
import type { EgressPolicy } from "./egress-policy.ts";

/** What function code asked for, copied out of the isolate. */
export interface OutboundRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Array<[string, string]>;
  readonly body: ArrayBuffer | null;
  readonly redirect: "follow" | "manual" | "error";
}

export interface OutboundResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Array<[string, string]>;
  readonly url: string;
  readonly redirected: boolean;
  readonly body: ArrayBuffer;
}

/** A response whose body is still to be read, as it arrives (`open`). */
export interface OpenedResponse extends Omit<OutboundResponse, "body"> {
  /** undici's body: a Readable that holds at most its highWaterMark and pauses the socket past it. */
  readonly body: Dispatcher.ResponseData["body"];
}

/** A refused or failed fetch; the isolate turns it into a TypeError, as browsers do. */
export class OutboundError extends Error {
  override name = "OutboundError";
}

const MAX_REDIRECTS = 20;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

/**
 * fetch() for functions, on undici, under an egress policy that is checked on the resolved address
 * of every connection (a custom DNS lookup in the connector, so redirects and DNS rebinding go through
 * the same rule) and on IP-literal URLs before any connection is made.
 */
export class OutboundFetch {
  readonly #policy: EgressPolicy;
  readonly #agent: Agent;
  readonly #maxBodyBytes: number;

  constructor(options: { policy: EgressPolicy; maxBodyBytes: number }) {
    this.#policy = options.policy;
    this.#maxBodyBytes = options.maxBodyBytes;
    this.#agent = new Agent({ connect: { lookup: this.#lookup } });
  }

  /**
   * Resolves like dns.lookup, but fails when any resolved address is not allowed. Typed loosely:
   * node's LookupFunction overloads do not fit one implementation.
   */
  readonly #lookup = (hostname: string, options: object, callback: (...args: never[]) => void): void => {
    const reply = callback as (...args: unknown[]) => void;
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return reply(err);
      const denied = addresses.find((a) => !this.#policy.isAllowed(a.address));
      if (denied)
        return reply(new OutboundError(`${hostname} resolves to ${denied.address}, which functions may not reach`));
      if ((options as { all?: boolean }).all) return reply(null, addresses);
      const first = addresses[0];
      return first ? reply(null, first.address, first.family) : reply(new OutboundError(`${hostname} has no address`));
    });
  };

  /** The whole response, its body read under the body limit. */
  async fetch(req: OutboundRequest, signal: AbortSignal, timeoutMs: number): Promise<OutboundResponse> {
    const res = await this.open(req, signal, timeoutMs);
    return { ...res, body: await this.readBody(res.body) };
  }

  /** The response once its head arrived (redirects followed); its body is left to the caller to read or destroy. */
  async open(req: OutboundRequest, signal: AbortSignal, timeoutMs: number): Promise<OpenedResponse> {
    let url = new URL(req.url);
    let method = req.method;
    let body = req.body;
    let headers = req.headers;
    for (let hops = 0; ; hops++) {
      this.#check(url);
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: headers.flat(),
        body: body ? new Uint8Array(body) : undefined,
        dispatcher: this.#agent,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode) && typeof location === "string" && req.redirect !== "manual") {
        await res.body.dump();
        if (req.redirect === "error") throw new OutboundError(`Redirect to ${location} with redirect: "error"`);
        if (hops >= MAX_REDIRECTS) throw new OutboundError(`More than ${MAX_REDIRECTS} redirects`);
        const next = new URL(location, url);
        // Credentials are for the origin they were sent to (Fetch spec, HTTP-redirect fetch).
        if (next.origin !== url.origin)
          headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
        url = next;
        // 303, and 301/302 after POST, become GET without a body (Fetch spec, HTTP-redirect fetch).
        if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === "POST")) {
          method = "GET";
          body = null;
        }
        continue;
      }
      return {
        status: res.statusCode,
        statusText: "",
        headers: pairsOf(res.headers),
        url: url.href,
        redirected: hops > 0,
        body: res.body,
      };
    }
  }

  #check(url: URL): void {
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new OutboundError(`Only http: and https: URLs can be fetched, not ${url.protocol}`);
    }
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (isIP(host) !== 0 && !this.#policy.isAllowed(host)) {
      throw new OutboundError(`${host} is an address functions may not reach`);
    }
  }

  /** Reads a body whole; past the body limit it is destroyed and the read fails. */
  async readBody(body: Dispatcher.ResponseData["body"]): Promise<ArrayBuffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).byteLength;
      if (size > this.#maxBodyBytes) {
        body.destroy();
        throw new OutboundError(`Response body is over the ${this.#maxBodyBytes} byte limit`);
      }
      chunks.push(chunk as Buffer);
    }
    const all = Buffer.concat(chunks);
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

function pairsOf(headers: Record<string, string | string[] | undefined>): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const v of value) pairs.push([name, v]);
    else if (value !== undefined) pairs.push([name, value]);
  }
  return pairs;
}
