import { type ErrorCode, HearthError, isErrorCode, LIMITS } from "../../protocol/index.ts";

/**
 * A streamed response body may grow to this. AWS Lambda holds streamed responses to 20 MB and
 * buffered ones to 6 MB ("Lambda quotas", docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
 * a stream is never held whole anywhere, so it can be larger than what one NATS message carries.
 */
export const MAX_STREAMED_BODY_BYTES = 20 * 1024 * 1024;

/**
 * The streamed limit for a function whose whole-body limit is `bodyLimit`: a function that lowered
 * its limit below the platform's default keeps it for streams too; at the default, streams get
 * MAX_STREAMED_BODY_BYTES.
 */
export function streamedBodyLimit(bodyLimit: number): number {
  return bodyLimit < LIMITS.defaultMaxBodyBytes ? bodyLimit : Math.max(bodyLimit, MAX_STREAMED_BODY_BYTES);
}

/**
 * A response body the function is still producing, read a chunk at a time (at most 64 KiB each).
 * While it is open the invocation is: its CPU and wall-clock limits go on applying.
 */
export interface ResponseBody {
  /** The next chunk, or null at the end. Rejects with a BodyCutError. Calls must not overlap. */
  read(): Promise<Uint8Array | null>;
  /** The consumer went away: the function's stream is cancelled. Idempotent. */
  cancel(): void;
  /** Settles once the body ended, was cut or was cancelled. */
  readonly closed: Promise<void>;
}

/** Why a streamed body was cut short; `detail` carries a function's own error (logged, never sent). */
export class BodyCutError extends HearthError {
  readonly detail: { readonly name?: string; readonly stack?: string } | undefined;

  constructor(code: ErrorCode, message: string, detail?: { name?: string; stack?: string }) {
    super(code, message);
    this.name = "BodyCutError";
    this.detail = detail;
  }
}

export interface IsolateResponseBodyOptions {
  /** One call of the bootstrap's `__hearth_body_pull` for this body. */
  readonly pull: (cancel: boolean) => Promise<unknown>;
  /** Resolves with the failure to report once the invocation can no longer go on (isolate disposed). */
  readonly stopped: Promise<{ code: ErrorCode; message: string }>;
  readonly limitBytes: number;
  /** The body is over: the invocation ends with it. Called once. */
  readonly onClose: () => void;
}

/**
 * A body streamed out of an isolate. Every pull is checked: function code can tamper with the
 * bootstrap, so what comes back must be bytes, an end or a known error, and the limit is counted here
 * again.
 */
export class IsolateResponseBody implements ResponseBody {
  readonly #options: IsolateResponseBodyOptions;
  readonly #closed = Promise.withResolvers<void>();
  #open = true;
  #reading = false;
  #bytes = 0;

  constructor(options: IsolateResponseBodyOptions) {
    this.#options = options;
  }

  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  async read(): Promise<Uint8Array | null> {
    if (!this.#open) return null;
    if (this.#reading) throw new HearthError("ERR_INTERNAL", "Overlapping reads of a response body");
    this.#reading = true;
    try {
      const result = await Promise.race([this.#options.pull(false), this.#options.stopped]);
      return this.#take(result);
    } catch (err) {
      this.#close();
      if (err instanceof BodyCutError) throw err;
      // The call failed: the isolate was disposed (by a limit, or with its executor).
      const stopped = await Promise.race([this.#options.stopped, Promise.resolve(null)]);
      throw new BodyCutError(stopped?.code ?? "ERR_INTERNAL", stopped?.message ?? String(err));
    } finally {
      this.#reading = false;
    }
  }

  #take(result: unknown): Uint8Array | null {
    const r = result as {
      chunk?: unknown;
      done?: unknown;
      error?: { code?: unknown; message?: unknown; name?: unknown; stack?: unknown };
      code?: unknown;
      message?: unknown;
    } | null;
    if (r?.chunk instanceof ArrayBuffer) {
      this.#bytes += r.chunk.byteLength;
      if (this.#bytes > this.#options.limitBytes) {
        this.cancel();
        throw new BodyCutError(
          "ERR_PAYLOAD_TOO_LARGE",
          `Response body is over the ${this.#options.limitBytes} byte limit`,
        );
      }
      return new Uint8Array(r.chunk);
    }
    if (r?.done === true) {
      this.#close();
      return null;
    }
    if (r?.error && typeof r.error === "object") {
      const code = r.error.code === "ERR_PAYLOAD_TOO_LARGE" ? "ERR_PAYLOAD_TOO_LARGE" : "ERR_FUNCTION_THREW";
      throw new BodyCutError(code, String(r.error.message), {
        ...(typeof r.error.name === "string" ? { name: r.error.name } : {}),
        ...(typeof r.error.stack === "string" ? { stack: r.error.stack } : {}),
      });
    }
    // `stopped` won the race: the isolate was disposed.
    if (isErrorCode(r?.code)) throw new BodyCutError(r.code, String(r.message));
    throw new BodyCutError("ERR_INVALID_RESPONSE", "A response body chunk is not bytes");
  }

  cancel(): void {
    if (!this.#open) return;
    this.#options.pull(true).catch(() => {});
    this.#close();
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#options.onClose();
    this.#closed.resolve();
  }
}
