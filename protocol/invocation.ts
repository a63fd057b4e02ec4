import { type Msg, type MsgHdrs, headers as natsHeaders } from "@nats-io/transport-node";
import { type ErrorCode, HearthError, isErrorCode } from "./errors.ts";
import { HEADERS } from "./subjects.ts";

/** Header pairs in order, repeated names allowed (Set-Cookie), names lowercase. */
export type HeaderPairs = Array<[string, string]>;

/** The HTTP request as the function will see it. */
export interface RequestHead {
  readonly method: string;
  /** Absolute URL as if the function were mounted at the root: `http://host/some/path?x=1`. */
  readonly url: string;
  readonly headers: HeaderPairs;
}

export interface ResponseHead {
  readonly status: number;
  readonly headers: HeaderPairs;
}

/** How an invocation reached its function: a metrics label (metrics/faas.ts maps it to OTel's faas.trigger). */
export type InvocationTrigger = "http" | "async" | "queue" | "cron";

/** One sync invocation as it travels over NATS: metadata in headers, body as the raw payload. */
export interface InvocationMessage {
  readonly id: string;
  readonly version: string;
  /** `RequestHead` as JSON, kept as a string: only the isolate parses it. */
  readonly requestJson: string;
  /** "http" when the message names none (the gateway sends none: one header less on the hot path). */
  readonly trigger: InvocationTrigger;
}

/** The outcome of an invocation as the gateway reads it from the reply. */
export type InvocationReply =
  | {
      readonly ok: true;
      readonly head: ResponseHead;
      /** The whole body, or with `stream` its first part. */
      readonly body: Uint8Array;
      /** The body goes on: the token to pull the rest under (protocol/body-stream.ts). */
      readonly streamToken?: string;
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly errorId?: string };

/**
 * `head` may come as JSON already (a queued invocation keeps it as the gateway wrote it, or an event).
 * `trigger` is sent only when it is not "http". An "http" invocation may be answered with a body that
 * goes on after the reply (protocol/body-stream.ts); any other gets the whole body.
 */
export function encodeInvocation(
  id: string,
  version: string,
  head: RequestHead | string,
  trigger: InvocationTrigger = "http",
): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADERS.invocationId, id);
  h.set(HEADERS.version, version);
  h.set(HEADERS.request, typeof head === "string" ? head : JSON.stringify(head));
  if (trigger !== "http") h.set(HEADERS.trigger, trigger);
  return h;
}

const TRIGGERS: ReadonlySet<string> = new Set(["async", "queue", "cron"]);

export function decodeInvocation(msg: Msg): InvocationMessage {
  const h = msg.headers;
  const id = h?.get(HEADERS.invocationId);
  const version = h?.get(HEADERS.version);
  const requestJson = h?.get(HEADERS.request);
  if (!id || !version || !requestJson) {
    throw new HearthError("ERR_BAD_REQUEST", "Invocation message lacks its hearth-* headers");
  }
  // Only the worker sends one; anything else would be an unbounded metrics label.
  const sent = h?.get(HEADERS.trigger);
  const trigger = sent && TRIGGERS.has(sent) ? (sent as InvocationTrigger) : "http";
  return { id, version, requestJson, trigger };
}

/**
 * `streamToken`: the body goes on, pulled under this token. It travels inside the head's JSON (as
 * `stream`), which the gateway parses anyway: a whole reply costs no extra header.
 */
export function encodeResponseHeaders(head: ResponseHead, streamToken?: string): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADERS.response, JSON.stringify(streamToken === undefined ? head : { ...head, stream: streamToken }));
  return h;
}

/** An error reply: the code in a header, `{ message, errorId }` as the payload. */
export function encodeErrorReply(code: ErrorCode, message: string, errorId?: string): [MsgHdrs, Uint8Array] {
  const h = natsHeaders();
  h.set(HEADERS.error, code);
  return [h, new TextEncoder().encode(JSON.stringify({ message, errorId }))];
}

export function decodeReply(msg: Msg): InvocationReply {
  const h = msg.headers;
  const code = h?.get(HEADERS.error);
  if (code) {
    const { message, errorId } = msg.json<{ message: string; errorId?: string }>();
    return isErrorCode(code)
      ? { ok: false, code, message, errorId }
      : { ok: false, code: "ERR_INTERNAL", message: `Unknown error code ${code}: ${message}`, errorId };
  }
  const headJson = h?.get(HEADERS.response);
  if (!headJson) throw new HearthError("ERR_INTERNAL", "Invocation reply lacks hearth-response");
  const head = JSON.parse(headJson) as ResponseHead & { stream?: unknown };
  if (typeof head.stream !== "string") return { ok: true, head, body: msg.data };
  return { ok: true, head: { status: head.status, headers: head.headers }, body: msg.data, streamToken: head.stream };
}
