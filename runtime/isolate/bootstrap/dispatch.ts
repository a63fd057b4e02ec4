import { BodyTooLargeError } from "./body.ts";
import type { ConsoleBuffer } from "./console.ts";
import { type Request, requestFromHost } from "./request.ts";
import { Response } from "./response.ts";

interface FetchHandler {
  fetch(request: Request, env: unknown, ctx: ExecutionContext): unknown;
}

interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}

/** What the host receives back; copied out of the isolate, never a live reference. */
export type DispatchResult =
  | { status: number; headers: Array<[string, string]>; body: ArrayBuffer | null }
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

  /** Counts one outbound fetch against the current invocation (or, when unknown, against all in flight). */
  chargeFetch(): number {
    const id = this.current();
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

function errorResult(code: string, err: unknown): DispatchResult {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown } | null;
  return {
    error: {
      code,
      message: typeof e?.message === "string" ? e.message : String(err),
      name: typeof e?.name === "string" ? e.name : undefined,
      stack: typeof e?.stack === "string" ? e.stack : undefined,
    },
  };
}

/** Binds the user's module once; returns the per-request entry point the host calls. */
export function createDispatcher(
  module: unknown,
  env: Readonly<Record<string, string>>,
  tracker: InvocationTracker,
  maxBodyBytes: number,
) {
  const handler = (module as { default?: FetchHandler } | undefined)?.default;
  if (typeof handler?.fetch !== "function") {
    throw new TypeError("The module has no `export default { fetch(request, env, ctx) }` handler");
  }

  return async function dispatch(id: string, requestJson: string, body: Uint8Array | null): Promise<DispatchResult> {
    const head = JSON.parse(requestJson) as { method: string; url: string; headers: Array<[string, string]> };
    tracker.begin(id);
    try {
      const request = requestFromHost(head, body);
      const ctx: ExecutionContext = {
        waitUntil(promise) {
          // Keep the rejection from surfacing as unhandled; the work itself continues after the response.
          Promise.resolve(promise).catch((err) => console.error("waitUntil promise rejected:", err));
        },
        passThroughOnException() {},
      };
      const pending = handler.fetch(request, env, ctx);
      tracker.yielded();
      const response = await pending;
      if (!(response instanceof Response)) {
        return {
          error: {
            code: "ERR_INVALID_RESPONSE",
            message: `fetch() must return a Response (or a promise of one), but returned ${describe(response)}`,
          },
        };
      }
      const bytes = await response.readForHost(maxBodyBytes);
      return {
        status: response.status,
        headers: [...response.headers],
        body: bytes && bytes.byteLength > 0 ? (bytes.slice().buffer as ArrayBuffer) : null,
      };
    } catch (err) {
      return errorResult(err instanceof BodyTooLargeError ? "ERR_PAYLOAD_TOO_LARGE" : "ERR_FUNCTION_THREW", err);
    } finally {
      tracker.yielded();
      tracker.end(id);
    }
  };
}
