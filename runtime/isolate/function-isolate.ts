import ivm from "isolated-vm";
import { type ErrorCode, type HeaderPairs, HearthError, type ResponseHead } from "../../protocol/index.ts";
import type { CpuWatchdog, Watch } from "./cpu-watchdog.ts";
import { type ConsoleSink, IsolateShell, type ShellDeps } from "./isolate-shell.ts";
import { type BodyCutError, IsolateResponseBody, type ResponseBody, streamedBodyLimit } from "./response-body.ts";
import type { StemCells } from "./stem-cells.ts";

/** Everything an isolate needs to run one deployed function. */
export interface FunctionCode {
  readonly name: string;
  /** sha256 of the bundle: the key of its compile cache. */
  readonly digest: string;
  /** FunctionRecord.version: changes with code, env or limits. */
  readonly version: string;
  /** The version's id (1, 2, 3, ...), for logs; absent in tests that run code without a deploy. */
  readonly versionId?: number;
  /** The bundle as a classic script that sets `globalThis.__hearth_module`. */
  readonly code: string;
  readonly env: Readonly<Record<string, string>>;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly cpuMs: number;
  /** Requests in flight per isolate before the pool adds another. */
  readonly concurrency: number;
  /** The function's own body limit (the executor's applies too). */
  readonly maxBodyBytes: number;
  /** The version's source map in the bundles store, read only when a stack is mapped. */
  readonly sourceMapDigest?: string;
}

export type { ConsoleSink };

export interface IsolateDeps extends ShellDeps {
  readonly onConsole: ConsoleSink;
  /** Shared by the isolates of an executor: one timer polls CPU time for all of them. */
  readonly watchdog: CpuWatchdog;
  /** Response bodies stop being read past this (the executor checks again before replying). */
  readonly maxBodyBytes: number;
  /** Pre-built shells; a cold start takes one when its memory limit matches. */
  readonly stemCells?: StemCells;
  /** What happens to isolates out of any caller's sight: work after a response, stuck threads. */
  readonly events?: IsolateEvents;
  /** How long work may go on after a response (POST_RESPONSE_MS by default). */
  readonly postResponseMs?: number;
}

export interface IsolateEvents {
  /** Work an invocation left after its response was cut off (by its CPU budget or its time bound). */
  backgroundCut?(fn: string, code: ErrorCode, message: string): void;
  /**
   * A disposed isolate's thread is still running: V8 could not interrupt it. Only ending the process
   * frees that thread (and the memory it may still be taking).
   */
  stuck?(fn: string): void;
  /** An isolate of `fn` was created and its module evaluated in `seconds` (for faas_init_duration_seconds). */
  isolateCreated?(fn: FunctionCode, seconds: number): void;
}

/**
 * How long work may go on after a response (timers, fetches, `ctx.waitUntil`): Workers allows 30 s
 * for waitUntil. It draws on what the invocation left of its `cpuMs`, and ends with it.
 */
export const POST_RESPONSE_MS = 30_000;

export type InvokeOutcome =
  | {
      readonly ok: true;
      readonly head: ResponseHead;
      /** The whole body; with `stream`, only its first part. */
      readonly body: Uint8Array;
      /** The rest of a body still being produced (only when the caller asked: see InvokeOptions). */
      readonly stream?: ResponseBody;
    }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      /** Function errors only: logged, never sent to the caller. */
      readonly detail?: { readonly name?: string; readonly stack?: string };
    };

/** How a caller takes the response. */
export interface InvokeOptions {
  /**
   * The caller can send a body on while it is produced (the gateway's HTTP path): a body that streams
   * comes as `stream`. Otherwise it is read here whole, under the whole-body limit.
   */
  readonly stream?: boolean;
}

type DispatchResult =
  | { status: unknown; headers: unknown; body: ArrayBuffer | null; stream?: unknown }
  | { error: { code: string; message: string; name?: string; stack?: string } };

/** User code gets this long to run its top level and bind its handler. */
export const STARTUP_TIMEOUT_MS = 1_000;

/** The file name a function's script is compiled under: what its stack frames name (`hello.js:25:11`). */
export function scriptNameOf(fn: string): string {
  return `${fn}.js`;
}
const EMPTY = new Uint8Array(0);
/** Node's HTTP parser accepts 16 KiB of request headers; responses get more room, but bounded. */
const MAX_RESPONSE_HEADERS = 256;
const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * One V8 isolate running one function: the bootstrap, then the user's bundle, then requests through
 * a single dispatcher Reference that never leaves the host. Arguments go in as copies and results
 * come out as copies, so no host object is ever reachable from function code.
 */
export class FunctionIsolate {
  readonly fn: FunctionCode;
  readonly #isolate: ivm.Isolate;
  readonly #dispatch: ivm.Reference;
  readonly #shell: IsolateShell;
  readonly #watchdog: CpuWatchdog;
  readonly #events: IsolateEvents;
  readonly #postResponseMs: number;
  /** The whole-body limit, and the streamed one (response-body.ts). */
  readonly #maxBodyBytes: number;
  readonly #maxStreamedBodyBytes: number;
  #inFlight = 0;
  #invocations = 0;
  /** A watch is open on work an invocation left after its response (at most one per isolate). */
  #lingering = false;
  /** Calls in flight, told when the isolate is disposed so they answer at once. */
  readonly #waiters = new Set<(value: "disposed") => void>();
  #disposeReason: ErrorCode | null = null;

  private constructor(fn: FunctionCode, shell: IsolateShell, dispatch: ivm.Reference, deps: IsolateDeps) {
    this.fn = fn;
    this.#shell = shell;
    this.#isolate = shell.isolate;
    this.#dispatch = dispatch;
    this.#watchdog = deps.watchdog;
    this.#events = deps.events ?? {};
    this.#postResponseMs = deps.postResponseMs ?? POST_RESPONSE_MS;
    [this.#maxBodyBytes, this.#maxStreamedBodyBytes] = bodyLimits(fn, deps);
  }

  /**
   * Builds a warm isolate for `fn`, from a stem cell when one of the right size is ready; throws
   * ERR_FUNCTION_INVALID when the function's top level fails.
   */
  static async create(fn: FunctionCode, deps: IsolateDeps): Promise<FunctionIsolate> {
    let shell: IsolateShell | null = null;
    let built: FunctionIsolate | null = null;
    try {
      shell = deps.stemCells?.take(fn.memoryMb) ?? (await IsolateShell.create(fn.memoryMb, deps));
      shell.adopt({
        fn: fn.name,
        timeoutMs: fn.timeoutMs,
        onConsole: deps.onConsole,
        // Lost during the top level: the executor's own handling of the catastrophe ends that start.
        onLost: () => {
          if (built) built.#lose();
        },
      });
      const user = await deps.cache.compile(shell.isolate, fn.code, fn.digest, scriptNameOf(fn.name));
      await user.run(shell.context, { timeout: STARTUP_TIMEOUT_MS });
      user.release();
      const dispatch: ivm.Reference = await shell.init.apply(
        undefined,
        [JSON.stringify(fn.env), ...bodyLimits(fn, deps)],
        {
          result: { reference: true },
          timeout: STARTUP_TIMEOUT_MS,
        },
      );
      shell.init.release();
      const isolate = new FunctionIsolate(fn, shell, dispatch, deps);
      built = isolate;
      // Timers or fetches started by the top level run under the same post-response rules.
      if (shell.hasPendingWork) isolate.#linger(isolate.#watch());
      return isolate;
    } catch (err) {
      shell?.dispose();
      throw new HearthError("ERR_FUNCTION_INVALID", `Function ${fn.name} failed to load: ${messageOf(err)}`, {
        cause: err,
      });
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Invocations started on this isolate so far. */
  get invocations(): number {
    return this.#invocations;
  }

  /** How full the heap is against the memory limit (0–1; 1 once disposed). */
  async heapUsedRatio(): Promise<number> {
    if (this.disposed) return 1;
    try {
      const heap = await this.#isolate.getHeapStatistics();
      return (heap.used_heap_size + heap.externally_allocated_size) / (this.fn.memoryMb * 1024 * 1024);
    } catch {
      return 1; // disposed meanwhile
    }
  }

  /** Invocations the CPU watchdog holds open here: those in flight, and at most one lingering after its response. */
  get watchedInvocations(): number {
    return this.#watchdog.openCount(this.#isolate);
  }

  get disposed(): boolean {
    return this.#disposeReason !== null || this.#isolate.isDisposed;
  }

  /**
   * Runs one request. Never throws: every failure is an outcome with a code. A streamed body keeps
   * the invocation open (in flight, CPU-watched, under its timeout) until it ends.
   */
  async invoke(
    id: string,
    requestJson: string,
    body: Uint8Array | null,
    options: InvokeOptions = {},
  ): Promise<InvokeOutcome> {
    if (this.disposed) return { ok: false, code: "ERR_INTERNAL", message: "isolate already disposed" };
    this.#inFlight++;
    this.#invocations++;
    const watch = this.#watch();
    // One resolver per call, dropped when the call ends: racing a promise that lives as long as the
    // isolate would keep every call's result reachable from it (measured: 200 × 1 MB kept 200 MB).
    const disposal = Promise.withResolvers<"disposed">();
    this.#waiters.add(disposal.resolve);
    const disposed = disposal.promise;
    // isolated-vm's `timeout` covers only the synchronous part; this host timer covers the rest.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"deadline">((resolve) => {
      timer = setTimeout(resolve, this.fn.timeoutMs, "deadline");
    });
    const finish = () => {
      this.#waiters.delete(disposal.resolve);
      clearTimeout(timer);
      this.#inFlight--;
      // The last invocation out watches what is left behind; while others are in flight, their
      // watches charge the isolate's work, and one lingering watch per isolate is enough.
      if (!this.disposed && this.#inFlight === 0 && !this.#lingering && this.#shell.hasPendingWork) {
        this.#linger(watch);
      } else {
        watch.end();
      }
    };
    let streaming = false;
    try {
      const bodyArg = body && body.byteLength > 0 ? new ivm.ExternalCopy(body).copyInto({ release: true }) : null;
      const call = this.#dispatch.apply(undefined, [id, requestJson, bodyArg], {
        result: { promise: true, copy: true },
        timeout: this.fn.timeoutMs,
      }) as Promise<DispatchResult>;
      this.#shell.track(call);
      // Disposal answers at once: some V8 builtins (Array.prototype.fill) cannot be interrupted and
      // keep the call pending for seconds after the isolate was disposed.
      const result = await Promise.race([call, deadline, disposed]);
      if (result === "deadline" || result === "disposed") {
        call.catch(() => {}); // it rejects as "abandoned" once the isolate is disposed
        if (result === "deadline") this.dispose("ERR_FUNCTION_TIMEOUT");
        return this.#failure(null);
      }
      const outcome = readResult(result);
      const streamId = "stream" in result ? result.stream : undefined;
      if (!outcome.ok || typeof streamId !== "number") return outcome;
      const stream = this.#responseBody(streamId, disposed, finish);
      streaming = true;
      // The timeout covers the whole body: past it, the isolate goes, as for any invocation.
      void deadline.then(() => this.dispose("ERR_FUNCTION_TIMEOUT"));
      return options.stream ? { ...outcome, stream } : await readWhole(outcome, stream, this.#maxBodyBytes);
    } catch (err) {
      return this.#failure(err);
    } finally {
      if (!streaming) finish();
    }
  }

  /** The rest of body `streamId`, pulled from the isolate; `onClose` ends the invocation. */
  #responseBody(streamId: number, disposed: Promise<"disposed">, onClose: () => void): ResponseBody {
    return new IsolateResponseBody({
      pull: (cancel) => {
        if (this.disposed) return Promise.reject(new Error("isolate disposed"));
        const call = this.#shell.bodyPull.apply(undefined, [streamId, cancel], {
          result: { promise: true, copy: true },
          timeout: this.fn.timeoutMs,
        });
        this.#shell.trackPull(call);
        return call;
      },
      stopped: disposed.then(() => {
        const failure = this.#failure(null);
        return failure.ok ? { code: "ERR_INTERNAL" as const, message: "disposed" } : failure;
      }),
      limitBytes: this.#maxStreamedBodyBytes,
      onClose,
    });
  }

  /** Watches one invocation's CPU: over budget, the isolate is disposed (its callers get the error). */
  #watch(): Watch {
    return this.#watchdog.watch(this.#shell, this.fn.cpuMs, () => {
      if (this.disposed) return;
      // Nobody may be waiting for this isolate (work after a response): say so.
      if (this.#inFlight === 0) {
        this.#events.backgroundCut?.(
          this.fn.name,
          "ERR_FUNCTION_CPU_TIME",
          `Work after the response used more than ${this.fn.cpuMs} ms of CPU time`,
        );
      }
      this.dispose("ERR_FUNCTION_CPU_TIME");
    });
  }

  /** The invocation answered with work still pending: it stays charged until that ends, or is cut. */
  #linger(watch: Watch): void {
    this.#lingering = true;
    watch.linger(
      () => {
        this.#lingering = this.#shell.hasPendingWork;
        return this.#lingering;
      },
      Date.now() + this.#postResponseMs,
      () => {
        this.#lingering = false;
        // Others still open here keep the isolate (and this work rides on their budgets); alone, it ends.
        if (this.disposed || this.#watchdog.openCount(this.#isolate) > 0) return;
        this.#events.backgroundCut?.(
          this.fn.name,
          "ERR_FUNCTION_TIMEOUT",
          `Work after the response was still running ${this.#postResponseMs} ms later`,
        );
        this.dispose("ERR_FUNCTION_TIMEOUT");
      },
    );
  }

  /** Frees the isolate at once; in-flight calls reject. Idempotent. */
  dispose(reason: ErrorCode = "ERR_INTERNAL"): void {
    if (this.#disposeReason !== null) return;
    this.#disposeReason = reason;
    this.#shell.dispose();
    void this.#shell.stuck().then((stuck) => {
      if (stuck) this.#events.stuck?.(this.fn.name);
    });
    this.#answerWaiters();
  }

  /**
   * V8 lost the isolate (isolated-vm's `onCatastrophicError`, a fatal out-of-memory): its callers are
   * answered now, since the call will never return, and the isolate is abandoned rather than disposed
   * (see IsolateShell.abandon). The executor then retires (executor.ts). Alone in the isolate, the
   * caller ran out of memory: ERR_FUNCTION_MEMORY. With others, any of them may have, so each gets
   * ERR_EXECUTOR_LOST, as when a whole executor dies: the async runner charges such a loss to nobody
   * and reruns each suspect alone, so only the culprit ends in the dead-letter queue.
   */
  #lose(): void {
    if (this.#disposeReason !== null) return;
    this.#disposeReason = this.#inFlight > 1 ? "ERR_EXECUTOR_LOST" : "ERR_FUNCTION_MEMORY";
    this.#shell.abandon();
    this.#answerWaiters();
  }

  #answerWaiters(): void {
    for (const resolve of this.#waiters) resolve("disposed");
    this.#waiters.clear();
  }

  /** Maps a failed or abandoned call to its code; the isolate is disposed either way. */
  #failure(err: unknown): InvokeOutcome {
    const message = messageOf(err);
    if (this.#disposeReason === null) {
      // isolated-vm's own verdicts arrive as messages: its sync-part timeout, or its memory limit.
      if (/timed out/i.test(message)) this.dispose("ERR_FUNCTION_TIMEOUT");
      else if (/memory limit/i.test(message)) this.dispose("ERR_FUNCTION_MEMORY");
      else this.dispose("ERR_INTERNAL");
    }
    switch (this.#disposeReason) {
      case "ERR_FUNCTION_CPU_TIME":
        return {
          ok: false,
          code: "ERR_FUNCTION_CPU_TIME",
          message: `Function used more than its ${this.fn.cpuMs} ms of CPU time`,
        };
      case "ERR_FUNCTION_TIMEOUT":
        return {
          ok: false,
          code: "ERR_FUNCTION_TIMEOUT",
          message: `Function ran past its ${this.fn.timeoutMs} ms timeout`,
        };
      case "ERR_FUNCTION_MEMORY":
        return {
          ok: false,
          code: "ERR_FUNCTION_MEMORY",
          message: `Function exceeded its ${this.fn.memoryMb} MB memory limit`,
        };
      case "ERR_EXECUTOR_LOST":
        return {
          ok: false,
          code: "ERR_EXECUTOR_LOST",
          message: `The isolate running ${this.fn.name} ran out of memory beyond recovery, with other invocations in it`,
        };
      default:
        return {
          ok: false,
          code: "ERR_INTERNAL",
          message: err === null ? "The isolate was disposed during the call" : message,
        };
    }
  }
}

/** A streamed body read to its end for a caller that cannot stream, under the whole-body limit. */
async function readWhole(
  outcome: Extract<InvokeOutcome, { ok: true }>,
  stream: ResponseBody,
  limitBytes: number,
): Promise<InvokeOutcome> {
  const parts = [outcome.body];
  let size = outcome.body.byteLength;
  try {
    for (let chunk = await stream.read(); chunk !== null; chunk = await stream.read()) {
      size += chunk.byteLength;
      if (size > limitBytes) {
        stream.cancel();
        return {
          ok: false,
          code: "ERR_PAYLOAD_TOO_LARGE",
          message: `Response body is over the ${limitBytes} byte limit`,
        };
      }
      parts.push(chunk);
    }
  } catch (err) {
    const cut = err as BodyCutError;
    return { ok: false, code: cut.code, message: cut.message, ...(cut.detail ? { detail: cut.detail } : {}) };
  }
  return { ok: true, head: outcome.head, body: Buffer.concat(parts, size) };
}

/** The whole-body limit (the function's, within the executor's) and the streamed one. */
function bodyLimits(fn: FunctionCode, deps: IsolateDeps): [number, number] {
  const whole = Math.min(fn.maxBodyBytes, deps.maxBodyBytes);
  return [whole, streamedBodyLimit(whole)];
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Checks what came out of the isolate: function code can tamper with Response and Headers. */
function readResult(result: DispatchResult): InvokeOutcome {
  if ("error" in result) {
    const code: ErrorCode =
      result.error.code === "ERR_INVALID_RESPONSE" ||
      result.error.code === "ERR_PAYLOAD_TOO_LARGE" ||
      result.error.code === "ERR_NO_HANDLER"
        ? result.error.code
        : "ERR_FUNCTION_THREW";
    return {
      ok: false,
      code,
      message: String(result.error.message),
      detail: { name: result.error.name, stack: result.error.stack },
    };
  }
  const { status, headers, body } = result;
  if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599) {
    return { ok: false, code: "ERR_INVALID_RESPONSE", message: `Invalid response status ${String(status)}` };
  }
  if (!isHeaderPairs(headers)) {
    return { ok: false, code: "ERR_INVALID_RESPONSE", message: "Response headers contain an invalid name or value" };
  }
  if (headers.length > MAX_RESPONSE_HEADERS || headerBytes(headers) > MAX_RESPONSE_HEADER_BYTES) {
    return {
      ok: false,
      code: "ERR_INVALID_RESPONSE",
      message: `Response headers are over ${MAX_RESPONSE_HEADERS} or ${MAX_RESPONSE_HEADER_BYTES} bytes`,
    };
  }
  // A tampered bootstrap could hand back anything here; only an ArrayBuffer (or nothing) is a body.
  if (body !== null && !(body instanceof ArrayBuffer)) {
    return { ok: false, code: "ERR_INVALID_RESPONSE", message: "Response body is not bytes" };
  }
  return { ok: true, head: { status, headers }, body: body ? new Uint8Array(body) : EMPTY };
}

function isHeaderPairs(value: unknown): value is HeaderPairs {
  return (
    Array.isArray(value) &&
    value.every(
      (pair) =>
        Array.isArray(pair) &&
        pair.length === 2 &&
        typeof pair[0] === "string" &&
        typeof pair[1] === "string" &&
        HEADER_NAME.test(pair[0]) &&
        HEADER_VALUE.test(pair[1]),
    )
  );
}

function headerBytes(pairs: HeaderPairs): number {
  let bytes = 0;
  for (const [name, value] of pairs) bytes += name.length + value.length + 4;
  return bytes;
}
