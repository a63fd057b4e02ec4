import {
  ERROR_CODES,
  type FunctionRecord,
  type HeaderPairs,
  HearthError,
  type Logger,
  type RequestHead,
  traceIdOfHeaders,
} from "../protocol/index.ts";
import { errorResponse, invocationErrorResponse } from "./error-response.ts";
import { type HttpRequest, type HttpResponse, headerValue } from "./http-types.ts";
import type { Invoker } from "./invoker.ts";

/** Connection-level headers (RFC 9110 §7.6.1) that must not be forwarded either way. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-prefix",
]);
/** A DNS name, IPv4 or bracketed IPv6 literal, with an optional port. */
const VALID_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
/** Also dropped from responses: Node computes the length of the body it sends. */
const RESPONSE_DROPPED = new Set([...HOP_BY_HOP, "content-length"]);

/**
 * Builds the request the function sees: mounted at the root, so `/fn/api/users/7?q=1` arrives as
 * `http://<host>/users/7?q=1`, with `x-forwarded-*` carrying the original host, proto and prefix.
 * `mounted` is false for host-based routing (`<name>.<functions domain>`): the path is the
 * function's own, and there is no prefix to report.
 */
export function requestHeadFor(req: HttpRequest, name: string, rest: string, mounted = true): RequestHead {
  const host = headerValue(req, "host") ?? "localhost";
  // The host becomes part of request.url: anything but a plain host[:port] would garble the URL.
  if (!VALID_HOST.test(host)) throw new HearthError("ERR_BAD_REQUEST", `Invalid Host header ${JSON.stringify(host)}`);
  const headers: HeaderPairs = [];
  let forwardedFor: string | undefined;
  for (const pair of req.headers) {
    if (pair[0] === "x-forwarded-for") forwardedFor = pair[1];
    else if (!HOP_BY_HOP.has(pair[0])) headers.push(pair);
  }
  headers.push(["x-forwarded-host", host], ["x-forwarded-proto", "http"]);
  if (mounted) headers.push(["x-forwarded-prefix", `/fn/${name}`]);
  const chain = [forwardedFor, req.remoteAddress].filter(Boolean).join(", ");
  if (chain) headers.push(["x-forwarded-for", chain]);
  // Normalized here by Node's native WHATWG parser, so the isolate need not parse it again.
  // Concatenated, not resolved against a base: a rest of `//other.host/` must stay a path.
  let url: string;
  try {
    url = new URL(`http://${host}${rest}`).href;
  } catch {
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `Cannot form a URL from Host ${JSON.stringify(host)} and path ${JSON.stringify(rest)}`,
    );
  }
  return { method: req.method, url, headers };
}

/** The 413 for a body over the function's own limit (sync or async alike), or null when it fits. */
export function bodyOverLimit(record: FunctionRecord, req: HttpRequest): HttpResponse | null {
  if (req.body.byteLength <= record.maxBodyBytes) return null;
  return errorResponse(
    "ERR_PAYLOAD_TOO_LARGE",
    `Request body is over ${record.name}'s ${record.maxBodyBytes} byte limit`,
  );
}

/** A function's response headers as the caller gets them: hop-by-hop ones dropped, the invocation id added. */
export function forwardedResponseHeaders(headers: HeaderPairs, invocationId: string): HeaderPairs {
  const forwarded = headers.filter(([name]) => !RESPONSE_DROPPED.has(name));
  forwarded.push(["x-hearth-id", invocationId]);
  return forwarded;
}

/**
 * Runs one invocation of the version `record` describes (see chooseVersion) and turns its reply into
 * the HTTP response. `mounted`: see requestHeadFor.
 */
export async function invokeFunction(
  invoker: Invoker,
  record: FunctionRecord,
  req: HttpRequest,
  rest: string,
  log: Logger,
  mounted = true,
): Promise<HttpResponse> {
  const tooLarge = bodyOverLimit(record, req);
  if (tooLarge) return tooLarge;
  const { invocationId, reply, stream } = await invoker.invoke(
    record,
    requestHeadFor(req, record.name, rest, mounted),
    req.body,
  );
  // Which version answered: what a canary's callers and smoke tests check (a record made before
  // versions existed has no id).
  const version: HeaderPairs = record.versionId === undefined ? [] : [["x-hearth-version", String(record.versionId)]];
  if (!reply.ok) {
    // One line per failed request, no stack: under load a stack per 5xx buries everything else. A
    // function's own failure is logged (with its stack) by the executor and kept in its logs.
    const system = ERROR_CODES[reply.code].kind === "system";
    const failed = log.child({ traceId: traceIdOfHeaders(req.headers) });
    failed[system ? "warn" : "debug"](
      { fn: record.name, version: record.version, invocationId, code: reply.code, reason: reply.message },
      "invocation failed",
    );
    const error = invocationErrorResponse(reply, invocationId, record.name, failed);
    return { ...error, headers: [...error.headers, ["x-hearth-id", invocationId], ...version] };
  }
  const headers = forwardedResponseHeaders(reply.head.headers, invocationId);
  headers.push(...version);
  // A streamed body is sent chunked as it comes; its first part is copied, as the NATS client reuses its buffer.
  if (stream) return { status: reply.head.status, headers, body: new Uint8Array(reply.body), stream };
  return { status: reply.head.status, headers, body: reply.body };
}
