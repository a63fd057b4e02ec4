import ivm from "isolated-vm";
import { type ErrorCode, type HeaderPairs, HearthError, type ResponseHead } from "../../protocol/index.ts";
import type { CpuWatchdog, Watch } from "./cpu-watchdog.ts";
import { type ConsoleSink, IsolateShell, type ShellDeps } from "./isolate-shell.ts";
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
  | { readonly ok: true; readonly head: ResponseHead; readonly body: Uint8Array }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      /** Function errors only: logged, never sent to the caller. */
      readonly detail?: { readonly name?: string; readonly stack?: string };
    };

type DispatchResult =
  | { status: unknown; headers: unknown; body: ArrayBuffer | null }
  | { error: { code: string; message: string; name?: string; stack?: string } };

/** User code gets this long to run its top level and bind its handler. */
const STARTUP_TIMEOUT_MS = 1_000;
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
  }

  /**
   * Builds a warm isolate for `fn`, from a stem cell when one of the right size is ready; throws
   * ERR_FUNCTION_INVALID when the function's top level fails.
   */
  static async create(fn: FunctionCode, deps: IsolateDeps): Promise<FunctionIsolate> {
    let shell: IsolateShell | null = null;
    try {
      shell = deps.stemCells?.take(fn.memoryMb) ?? (await IsolateShell.create(fn.memoryMb, deps));
      shell.adopt({ timeoutMs: fn.timeoutMs, onConsole: deps.onConsole });
      const user = await deps.cache.compile(shell.isolate, fn.code, fn.digest, `${fn.name}.js`);
      await user.run(shell.context, { timeout: STARTUP_TIMEOUT_MS });
      user.release();
      const dispatch: ivm.Reference = await shell.init.apply(
        undefined,
        [JSON.stringify(fn.env), Math.min(fn.maxBodyBytes, deps.maxBodyBytes)],
        {
          result: { reference: true },
          timeout: STARTUP_TIMEOUT_MS,
        },
      );
      shell.init.release();
      const isolate = new FunctionIsolate(fn, shell, dispatch, deps);
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

  /** Runs one request. Never throws: every failure is an outcome with a code. */
  async invoke(id: string, requestJson: string, body: Uint8Array | null): Promise<InvokeOutcome> {
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
      return readResult(result);
    } catch (err) {
      return this.#failure(err);
    } finally {
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
    }
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
      default:
        return {
          ok: false,
          code: "ERR_INTERNAL",
          message: err === null ? "The isolate was disposed during the call" : message,
        };
    }
  }
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
