import { TextEncoder } from "@exodus/bytes/encoding-lite.js";
import { BodyTooLargeError } from "./body.ts";
import type { ConsoleBuffer } from "./console.ts";
import {
  batchFromHost,
  type HostQueueEvent,
  type HostScheduledEvent,
  scheduledFromHost,
  type ThrownError,
} from "./events.ts";
import { type HostRequestHead, requestFromHost } from "./request.ts";
import { Response } from "./response.ts";
import { type OutgoingBodies, STREAM_CHUNK_BYTES } from "./response-stream.ts";

const HANDLER_KINDS = ["fetch", "queue", "scheduled"] as const;
type HandlerKind = (typeof HANDLER_KINDS)[number];
type ExportedHandler = Partial<Record<HandlerKind, (event: unknown, env: unknown, ctx: ExecutionContext) => unknown>>;

/** What the host sends: a request head, or an event (see events.ts). */
type HostHead = (HostRequestHead & { event?: undefined }) | HostQueueEvent | HostScheduledEvent;

const encoder = new TextEncoder();

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  /** Workers' values from a service binding; Hearth has none (sdk/types.ts declares it for Hono). */
  readonly props: Readonly<Record<string, never>>;
}

/** One frozen object for every invocation: handlers cannot write to it, so nothing leaks between them. */
const NO_PROPS: Readonly<Record<string, never>> = Object.freeze({});

/**
 * What the host receives back; copied out of the isolate, never a live reference. With `stream`, the
 * body goes on: `body` is its first part and the host pulls the rest (response-stream.ts).
 */
export type DispatchResult =
  | { status: number; headers: Array<[string, string]>; body: ArrayBuffer | null; stream?: number }
  | { error: { code: string; message: string; name?: string; stack?: string } };

/** Tracks which invocations are in flight so console lines can be attributed (see console.ts). */
export class InvocationTracker {
  readonly #console: ConsoleBuffer;
  #running: string | null = null;
  readonly #inFlight = new Set<string>();
  readonly #fetches = new Map<string | null, number>();

  constructor(console: ConsoleBuffer) {
    this.#console = console;
  }

  current(): string | null {
    if (this.#running !== null) return this.#running;
    if (this.#inFlight.size === 1) return this.#inFlight.values().next().value ?? null;
    return null;
  }

  begin(id: string): void {
    this.#inFlight.add(id);
    this.#running = id;
  }

  yielded(): void {
    this.#running = null;
  }

  /** The invocation answered: its console output is sent (with a note of what was dropped). */
  end(id: string): void {
    this.#inFlight.delete(id);
    this.#fetches.delete(id);
    this.#console.end(id);
    if (this.#inFlight.size === 0) {
      // Idle: unattributed output and fetches get a fresh allowance.
      this.#fetches.clear();
      this.#console.end(null);
    }
  }

  /**
   * Counts one outbound fetch and returns the count to judge it by. Made where the invocation is
   * known, it is that invocation's. Made after an await while several are in flight, it is counted
   * against each of them and judged by the lowest count: it is refused only once every candidate is
   * over its limit, and each candidate's count still ends with it. (One shared bucket for such
   * fetches, reset only when the isolate went idle, refused concurrent invocations' first fetches
   * under steady load.) With none in flight, it is work after the responses, counted on its own.
   */
  chargeFetch(): number {
    const id = this.current();
    if (id !== null || this.#inFlight.size === 0) return this.#charge(id);
    let lowest = Number.POSITIVE_INFINITY;
    for (const candidate of this.#inFlight) lowest = Math.min(lowest, this.#charge(candidate));
    return lowest;
  }

  #charge(id: string | null): number {
    const count = (this.#fetches.get(id) ?? 0) + 1;
    this.#fetches.set(id, count);
    return count;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return `an object (${(value as object).constructor?.name ?? "no constructor"})`;
}

/** What the host is told of a thrown value (a copy: message, name and stack as strings). */
export function thrownError(err: unknown): ThrownError {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown } | null;
  return {
    message: typeof e?.message === "string" ? e.message : String(err),
    name: typeof e?.name === "string" ? e.name : undefined,
    stack: typeof e?.stack === "string" ? e.stack : undefined,
  };
}

function newContext(): ExecutionContext {
  return {
    waitUntil(promise) {
      // Keep the rejection from surfacing as unhandled; the work itself continues after the response.
      Promise.resolve(promise).catch((err) => console.error("waitUntil promise rejected:", err));
    },
    passThroughOnException() {},
    props: NO_PROPS,
  };
}

/** A response as the host takes it, with `bytes` (copied out) as its whole body or its first part. */
function resultOf(response: Response, bytes: Uint8Array | null) {
  return {
    status: response.status,
    headers: [...response.headers],
    body: bytes && bytes.byteLength > 0 ? (bytes.slice().buffer as ArrayBuffer) : null,
  };
}

/** Queue and scheduled outcomes travel as an ordinary response, so the host's limits and checks apply unchanged. */
function jsonResult(value: unknown): DispatchResult {
  return {
    status: 200,
    headers: [["content-type", "application/json"]],
    body: encoder.encode(JSON.stringify(value)).buffer as ArrayBuffer,
  };
}

/**
 * Body limits: bytes the function holds whole are held to `maxBodyBytes` (sent in chunks when over
 * one, as one NATS message is smaller than the limit); a stream is cut past `maxStreamedBodyBytes`.
 */
export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly maxStreamedBodyBytes: number;
}

/** Binds the user's module once; returns the per-invocation entry point the host calls. */
export function createDispatcher(
  module: unknown,
  env: Readonly<Record<string, string>>,
  tracker: InvocationTracker,
  limits: BodyLimits,
  bodies: OutgoingBodies,
) {
  const handler = (module as { default?: ExportedHandler } | undefined)?.default ?? {};
  const has = (kind: string): kind is HandlerKind =>
    (HANDLER_KINDS as readonly string[]).includes(kind) && typeof handler[kind as HandlerKind] === "function";
  if (!HANDLER_KINDS.some(has)) {
    throw new TypeError(
      "The module has no `export default { fetch(request, env, ctx) }` handler, nor queue(batch, env, ctx) " +
        "or scheduled(event, env, ctx): it needs at least one of the three",
    );
  }

  async function call(kind: HandlerKind, event: unknown): Promise<unknown> {
    // Called as a method, as Workers does, so `this` is the exported object.
    const pending = handler[kind]?.(event, env, newContext());
    // Past its synchronous part, the handler's console lines are no longer surely this invocation's.
    tracker.yielded();
    return await pending;
  }

  /** For events a throw is part of the outcome (it decides what is retried), not a failed call. */
  async function callForOutcome(kind: HandlerKind, event: unknown): Promise<ThrownError | undefined> {
    try {
      await call(kind, event);
      return undefined;
    } catch (err) {
      return thrownError(err);
    }
  }

  async function onFetch(head: HostRequestHead, body: Uint8Array | null): Promise<DispatchResult> {
    const response = await call("fetch", requestFromHost(head, body));
    if (!(response instanceof Response)) {
      return {
        error: {
          code: "ERR_INVALID_RESPONSE",
          message: `fetch() must return a Response (or a promise of one), but returned ${describe(response)}`,
        },
      };
    }
    const source = response.takeForHost();
    // The hot path: bytes within one chunk go back whole, as they always did.
    if (source === null || (source instanceof Uint8Array && source.byteLength <= STREAM_CHUNK_BYTES)) {
      return resultOf(response, source);
    }
    if (source instanceof Uint8Array && source.byteLength > limits.maxBodyBytes) {
      throw new BodyTooLargeError(`Response body is over the ${limits.maxBodyBytes} byte limit`);
    }
    const opened = await bodies.open(source, limits.maxStreamedBodyBytes);
    // A stream that had ended within one chunk: as cheap for the host as bytes.
    if (opened.complete) return resultOf(response, opened.bytes);
    return { ...resultOf(response, opened.first), stream: opened.id };
  }

  async function onQueue(head: HostQueueEvent, body: Uint8Array | null): Promise<DispatchResult> {
    const { batch, settle } = batchFromHost(head, body);
    return jsonResult(settle(await callForOutcome("queue", batch)));
  }

  async function onScheduled(head: HostScheduledEvent): Promise<DispatchResult> {
    const { event, settle } = scheduledFromHost(head);
    return jsonResult(settle(await callForOutcome("scheduled", event)));
  }

  return async function dispatch(id: string, requestJson: string, body: Uint8Array | null): Promise<DispatchResult> {
    const head = JSON.parse(requestJson) as HostHead;
    const kind = head.event ?? "fetch";
    if (!has(kind)) return { error: { code: "ERR_NO_HANDLER", message: `The function has no ${kind}() handler` } };
    tracker.begin(id);
    try {
      switch (head.event) {
        case "queue":
          return await onQueue(head, body);
        case "scheduled":
          return await onScheduled(head);
        default:
          return await onFetch(head, body);
      }
    } catch (err) {
      const code = err instanceof BodyTooLargeError ? "ERR_PAYLOAD_TOO_LARGE" : "ERR_FUNCTION_THREW";
      return { error: { code, ...thrownError(err) } };
    } finally {
      tracker.yielded();
      tracker.end(id);
    }
  };
}
