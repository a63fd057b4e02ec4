import { randomFillSync } from "node:crypto";

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), the part Hearth needs: read a
 * `traceparent`, continue it with a span id of our own, or start a trace when there is none. No
 * OpenTelemetry SDK: the header is 55 characters and one regular expression.
 */

/** The fields of a `traceparent` header, lowercase hex. */
export interface TraceParent {
  readonly version: string;
  /** 32 hex digits, not all zero. */
  readonly traceId: string;
  /** 16 hex digits, not all zero: the span of the caller. */
  readonly parentId: string;
  /** 2 hex digits; bit 0 is "sampled". */
  readonly flags: string;
}

/** The trace an invocation belongs to, as Hearth forwards it. */
export interface TraceContext {
  /** The `traceparent` to send on: the same trace id, our own span id, the caller's flags. */
  readonly traceparent: string;
  readonly traceId: string;
  /** False when the request carried no valid `traceparent` and this trace starts here. */
  readonly continued: boolean;
}

/**
 * version "-" trace-id "-" parent-id "-" trace-flags, all lowercase hex (HEXDIGLC). A version above
 * 00 may carry more fields after a dash (§3.2.4 "Versioning of traceparent"): parsed as 00, the rest ignored.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_PARENT_ID = "0".repeat(16);
/** Header name as Hearth's header pairs carry it (lowercase). */
export const TRACEPARENT_HEADER = "traceparent";
export const TRACESTATE_HEADER = "tracestate";

/**
 * Parses a `traceparent` value, or returns null when it is invalid: version ff, a version 00 header
 * that is not exactly 55 characters, uppercase hex, an all-zero trace id or parent id.
 *
 * @example
 * parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
 * // → { version: "00", traceId: "4bf9…4736", parentId: "00f067aa0ba902b7", flags: "01" }
 */
export function parseTraceparent(value: string | undefined): TraceParent | null {
  if (value === undefined || value.length < 55) return null;
  const match = TRACEPARENT.exec(value);
  if (!match) return null;
  const [, version, traceId, parentId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_PARENT_ID) return null;
  return { version, traceId, parentId, flags };
}

/** A version 00 `traceparent` (we only ever send the version we know, §3.2.4). */
export function formatTraceparent(traceId: string, parentId: string, flags: string): string {
  return `00-${traceId}-${parentId}-${flags}`;
}

/** Random bytes for ids, drawn from a pool: one getrandom call per 512 span ids, not one per request. */
export class IdSource {
  readonly #pool = Buffer.alloc(4096);
  #offset = this.#pool.length;
  readonly #fill: (pool: Buffer) => void;

  constructor(fill: (pool: Buffer) => void = randomFillSync) {
    this.#fill = fill;
  }

  hex(bytes: number): string {
    for (;;) {
      if (this.#offset + bytes > this.#pool.length) {
        this.#fill(this.#pool);
        this.#offset = 0;
      }
      const start = this.#offset;
      this.#offset += bytes;
      const id = this.#pool.toString("hex", start, start + bytes);
      // All zeros is the one invalid value (§3.2.2.3); at 2^-64 it is a formality, but never send it.
      if (id !== ZERO_PARENT_ID && id !== ZERO_TRACE_ID) return id;
    }
  }
}

const DEFAULT_IDS = new IdSource();

/**
 * The trace context for one request, from its `traceparent` value (undefined when absent): a valid
 * one is continued (same trace id and flags, a new span id: Hearth's hop), anything else starts a new
 * trace, sampled flag clear (we record no spans; a downstream tracer decides).
 *
 * @example
 * continueTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").traceparent
 * // → "00-4bf92f3577b34da6a3ce929d0e0e4736-<16 new hex digits>-01"
 */
export function continueTrace(
  incoming: string | undefined,
  ids: { hex(bytes: number): string } = DEFAULT_IDS,
): TraceContext {
  const parent = parseTraceparent(incoming);
  const spanId = ids.hex(8);
  if (parent) {
    return {
      traceparent: formatTraceparent(parent.traceId, spanId, parent.flags),
      traceId: parent.traceId,
      continued: true,
    };
  }
  const traceId = ids.hex(16);
  return { traceparent: formatTraceparent(traceId, spanId, "00"), traceId, continued: false };
}

/**
 * The trace context of a request's header pairs (lowercase names): one `traceparent` is continued;
 * an invalid one, or several (which §3.2 leaves no way to choose between) start a new trace. None:
 * null, and the request goes on untraced — starting a trace for every untraced request cost the warm
 * path a header, random ids and a copy of the headers, and its function a header to parse.
 */
export function traceOfHeaders(headers: ReadonlyArray<readonly [string, string]>): TraceContext | null {
  let found: string | undefined;
  let count = 0;
  for (const [name, value] of headers) {
    if (name === TRACEPARENT_HEADER) {
      found = value;
      count++;
    }
  }
  if (count === 0) return null;
  return continueTrace(count === 1 ? found : undefined);
}

/**
 * The headers to forward with a request's trace context: every pair but `traceparent`, then ours.
 * `tracestate` passes through unchanged when the caller's trace is continued, and is dropped when a
 * new trace starts (§4.2/§4.3: a `tracestate` without a valid `traceparent` MUST be discarded).
 */
export function withTraceHeaders(
  headers: ReadonlyArray<[string, string]>,
  trace: TraceContext,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const pair of headers) {
    if (pair[0] === TRACEPARENT_HEADER || (!trace.continued && pair[0] === TRACESTATE_HEADER)) continue;
    out.push(pair);
  }
  out.push([TRACEPARENT_HEADER, trace.traceparent]);
  return out;
}

/** The trace id of the one valid `traceparent` among header pairs (lowercase names), if any. */
export function traceIdOfHeaders(headers: ReadonlyArray<readonly [string, string]>): string | undefined {
  for (const [name, value] of headers) if (name === TRACEPARENT_HEADER) return parseTraceparent(value)?.traceId;
  return undefined;
}

/**
 * The trace id inside a request head's JSON (`"headers":[…,["traceparent","00-<id>-…"],…]`), for log
 * lines of processes that carry the head as a string and must not parse it on the hot path. Only
 * called when a line is logged. In that JSON a header name is the only string followed by `,"` (a
 * value is followed by `]`, and quotes inside strings are escaped), so a value cannot fake a match.
 */
export function traceIdOfRequestJson(requestJson: string): string | undefined {
  return TRACE_IN_JSON.exec(requestJson)?.[1];
}

const TRACE_IN_JSON = /\["traceparent","[0-9a-f]{2}-([0-9a-f]{32})-/;
