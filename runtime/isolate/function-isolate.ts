import { randomFillSync } from "node:crypto";
import ivm from "isolated-vm";
import { type ErrorCode, type HeaderPairs, HearthError, type ResponseHead } from "../../protocol/index.ts";
import type { OutboundFetch } from "../outbound/outbound-fetch.ts";
import type { Bootstrap } from "./bootstrap-source.ts";
import type { CodeCache } from "./code-cache.ts";
import type { CpuWatchdog } from "./cpu-watchdog.ts";
import { FetchHost } from "./fetch-host.ts";
import { TimerHost } from "./timer-host.ts";

/** Everything an isolate needs to run one deployed function. */
export interface FunctionCode {
  readonly name: string;
  /** sha256 of the bundle: the key of its compile cache. */
  readonly digest: string;
  /** FunctionRecord.version: changes with code, env or limits. */
  readonly version: string;
  /** The bundle as a classic script that sets `globalThis.__hearth_module`. */
  readonly code: string;
  readonly env: Readonly<Record<string, string>>;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly cpuMs: number;
  /** Requests in flight per isolate before the pool adds another. */
  readonly concurrency: number;
}

/** Receives each `console.*` call of the function, with the invocation it belongs to (or null). */
export type ConsoleSink = (level: string, message: string, invocationId: string | null) => void;

export interface IsolateDeps {
  readonly bootstrap: Bootstrap;
  readonly cache: CodeCache;
  readonly onConsole: ConsoleSink;
  /** V8 hit a fatal OOM: the process must die (research/isolated-vm.md §0.2). */
  readonly onCatastrophicError: (message: string) => void;
  /** Shared by the isolates of an executor: one timer polls CPU time for all of them. */
  readonly watchdog: CpuWatchdog;
  /** Shared by the isolates of an executor: fetch() under the egress policy. */
  readonly outbound: OutboundFetch;
  /** Response bodies stop being read past this (the executor checks again before replying). */
  readonly maxBodyBytes: number;
}

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

/** Live timers per isolate; the bootstrap throws RangeError past it (bootstrap/timers.ts). */
const MAX_LIVE_TIMERS = 10_000;
/** Random bytes per host call; the bootstrap draws crypto randomness from them (bootstrap/crypto.ts). */
const MAX_ENTROPY_BYTES = 65_536;

/** Fresh CSPRNG bytes for the isolate, as a standalone ArrayBuffer (a Buffer may be a pooled slab). */
function entropy(bytes: number): ArrayBuffer {
  const out = new Uint8Array(Math.min(Math.max(0, bytes | 0), MAX_ENTROPY_BYTES));
  randomFillSync(out);
  return out.buffer;
}

/** User code gets this long to run its top level and bind its handler. */
const STARTUP_TIMEOUT_MS = 1_000;
const EMPTY = new Uint8Array(0);
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
  readonly #timers: TimerHost;
  readonly #fetches: FetchHost;
  readonly #watchdog: CpuWatchdog;
  #inFlight = 0;
  #invocations = 0;
  #disposeReason: ErrorCode | null = null;

  private constructor(
    fn: FunctionCode,
    isolate: ivm.Isolate,
    dispatch: ivm.Reference,
    hosts: { timers: TimerHost; fetches: FetchHost },
    watchdog: CpuWatchdog,
  ) {
    this.fn = fn;
    this.#isolate = isolate;
    this.#dispatch = dispatch;
    this.#timers = hosts.timers;
    this.#fetches = hosts.fetches;
    this.#watchdog = watchdog;
  }

  /** Builds a warm isolate; throws ERR_FUNCTION_INVALID when the function's top level fails. */
  static async create(fn: FunctionCode, deps: IsolateDeps): Promise<FunctionIsolate> {
    const { bootstrap } = deps;
    const isolate = new ivm.Isolate({
      memoryLimit: fn.memoryMb,
      onCatastrophicError: deps.onCatastrophicError,
      ...(bootstrap.snapshot ? { snapshot: bootstrap.snapshot } : {}),
    });
    const timers = new TimerHost({ maxTimers: MAX_LIVE_TIMERS, callbackTimeoutMs: fn.timeoutMs });
    const fetches = new FetchHost(deps.outbound, fn.timeoutMs);
    try {
      const context = await isolate.createContext();
      const jail = context.global;
      // The bridge (runtime/isolate/bootstrap/host.ts): the bootstrap captures and deletes these.
      await Promise.all([
        jail.set("__hearth_log", new ivm.Callback(deps.onConsole, { ignored: true })),
        jail.set("__hearth_timer_set", new ivm.Callback(timers.set, { ignored: true })),
        jail.set("__hearth_timer_clear", new ivm.Callback(timers.clear, { ignored: true })),
        jail.set("__hearth_entropy", new ivm.Callback(entropy)),
        jail.set("__hearth_fetch_start", new ivm.Callback(fetches.start, { ignored: true })),
        jail.set("__hearth_fetch_abort", new ivm.Callback(fetches.abort, { ignored: true })),
      ]);
      if (!bootstrap.snapshot) {
        const script = await deps.cache.compile(isolate, bootstrap.source, "bootstrap", bootstrap.filename);
        await script.run(context);
      }
      await context.eval("__hearth_connect(); delete globalThis.__hearth_connect;");
      const [init, fire, fetched]: ivm.Reference[] = await Promise.all([
        jail.get("__hearth_init", { reference: true }),
        jail.get("__hearth_timer_fire", { reference: true }),
        jail.get("__hearth_fetch_done", { reference: true }),
      ]);
      timers.bind(fire as ivm.Reference);
      fetches.bind(fetched as ivm.Reference);
      await Promise.all(
        ["__hearth_init", "__hearth_timer_fire", "__hearth_fetch_done"].map((name) => jail.delete(name)),
      );
      const user = await deps.cache.compile(isolate, fn.code, fn.digest, `${fn.name}.js`);
      await user.run(context, { timeout: STARTUP_TIMEOUT_MS });
      const dispatch: ivm.Reference = await (init as ivm.Reference).apply(
        undefined,
        [JSON.stringify(fn.env), deps.maxBodyBytes],
        {
          result: { reference: true },
          timeout: STARTUP_TIMEOUT_MS,
        },
      );
      (init as ivm.Reference).release();
      return new FunctionIsolate(fn, isolate, dispatch, { timers, fetches }, deps.watchdog);
    } catch (err) {
      timers.dispose();
      fetches.dispose();
      if (!isolate.isDisposed) isolate.dispose();
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

  get disposed(): boolean {
    return this.#disposeReason !== null || this.#isolate.isDisposed;
  }

  /** Runs one request. Never throws: every failure is an outcome with a code. */
  async invoke(id: string, requestJson: string, body: Uint8Array | null): Promise<InvokeOutcome> {
    if (this.disposed) return { ok: false, code: "ERR_INTERNAL", message: "isolate already disposed" };
    this.#inFlight++;
    this.#invocations++;
    const unwatch = this.#watchdog.watch(
      this.#isolate,
      this.fn.cpuMs,
      () => this.#inFlight,
      () => this.dispose("ERR_FUNCTION_CPU_TIME"),
    );
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
      const result = await Promise.race([call, deadline]);
      if (result === "deadline") {
        call.catch(() => {}); // it rejects as "abandoned" once the isolate is disposed
        this.dispose("ERR_FUNCTION_TIMEOUT");
        return this.#failure(null);
      }
      return readResult(result);
    } catch (err) {
      return this.#failure(err);
    } finally {
      unwatch();
      clearTimeout(timer);
      this.#inFlight--;
    }
  }

  /** Frees the isolate at once; in-flight calls reject. Idempotent. */
  dispose(reason: ErrorCode = "ERR_INTERNAL"): void {
    this.#disposeReason ??= reason;
    this.#timers.dispose();
    this.#fetches.dispose();
    if (!this.#isolate.isDisposed) this.#isolate.dispose();
  }

  #failure(err: unknown): InvokeOutcome {
    const message = messageOf(err);
    if (this.#disposeReason === "ERR_FUNCTION_CPU_TIME") {
      return {
        ok: false,
        code: "ERR_FUNCTION_CPU_TIME",
        message: `Function used more than its ${this.fn.cpuMs} ms of CPU time`,
      };
    }
    if (this.#disposeReason === "ERR_FUNCTION_TIMEOUT" || /timed out/i.test(message)) {
      this.dispose("ERR_FUNCTION_TIMEOUT");
      return {
        ok: false,
        code: "ERR_FUNCTION_TIMEOUT",
        message: `Function ran past its ${this.fn.timeoutMs} ms timeout`,
      };
    }
    if (/memory limit/i.test(message)) {
      this.dispose("ERR_FUNCTION_MEMORY");
      return {
        ok: false,
        code: "ERR_FUNCTION_MEMORY",
        message: `Function exceeded its ${this.fn.memoryMb} MB memory limit`,
      };
    }
    this.dispose();
    return { ok: false, code: "ERR_INTERNAL", message };
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Checks what came out of the isolate: function code can tamper with Response and Headers. */
function readResult(result: DispatchResult): InvokeOutcome {
  if ("error" in result) {
    const code: ErrorCode =
      result.error.code === "ERR_INVALID_RESPONSE" || result.error.code === "ERR_PAYLOAD_TOO_LARGE"
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
