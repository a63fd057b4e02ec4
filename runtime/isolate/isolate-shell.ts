import { randomFillSync } from "node:crypto";
import ivm from "isolated-vm";
import type { OutboundFetch } from "../outbound/outbound-fetch.ts";
import type { Bootstrap } from "./bootstrap-source.ts";
import type { CodeCache } from "./code-cache.ts";
import { FetchHost } from "./fetch-host.ts";
import { TimerHost } from "./timer-host.ts";

/** Receives each `console.*` call of the function, with the invocation it belongs to (or null). */
export type ConsoleSink = (level: string, message: string, invocationId: string | null) => void;

export interface ShellDeps {
  readonly bootstrap: Bootstrap;
  readonly cache: CodeCache;
  readonly outbound: OutboundFetch;
  /** V8 hit a fatal OOM: the process must die (research/isolated-vm.md §0.2). */
  readonly onCatastrophicError: (message: string) => void;
}

/** Live timers per isolate; the bootstrap throws RangeError past it (bootstrap/timers.ts). */
const MAX_LIVE_TIMERS = 10_000;
/** Random bytes per host call; the bootstrap draws crypto randomness from them (bootstrap/crypto.ts). */
const MAX_ENTROPY_BYTES = 65_536;
/** Until a function adopts the shell, its timers and fetches get this long. */
const UNADOPTED_TIMEOUT_MS = 1_000;

/** Fresh CSPRNG bytes for the isolate, as a standalone ArrayBuffer (a Buffer may be a pooled slab). */
function entropy(bytes: number): ArrayBuffer {
  const out = new Uint8Array(Math.min(Math.max(0, bytes | 0), MAX_ENTROPY_BYTES));
  randomFillSync(out);
  return out.buffer;
}

/**
 * An isolate with the runtime bootstrapped and its host bridge connected, but no function yet: the
 * generic part of a cold start, which can be done ahead of time ("stem cells", after OpenWhisk's
 * prewarmed containers). A function adopts it with its own limits and console.
 */
export class IsolateShell {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  readonly memoryMb: number;
  readonly timers: TimerHost;
  readonly fetches: FetchHost;
  /** The bootstrap's `__hearth_init(envJson, maxBodyBytes)`, which binds the function's module. */
  readonly init: ivm.Reference;
  /** Where console lines go; the log Callback is created before the function is known. */
  readonly #console: { sink: ConsoleSink };

  private constructor(fields: {
    isolate: ivm.Isolate;
    context: ivm.Context;
    memoryMb: number;
    timers: TimerHost;
    fetches: FetchHost;
    init: ivm.Reference;
    console: { sink: ConsoleSink };
  }) {
    this.isolate = fields.isolate;
    this.context = fields.context;
    this.memoryMb = fields.memoryMb;
    this.timers = fields.timers;
    this.fetches = fields.fetches;
    this.init = fields.init;
    this.#console = fields.console;
  }

  static async create(memoryMb: number, deps: ShellDeps): Promise<IsolateShell> {
    const { bootstrap } = deps;
    const isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      onCatastrophicError: deps.onCatastrophicError,
      ...(bootstrap.snapshot ? { snapshot: bootstrap.snapshot } : {}),
    });
    const timers = new TimerHost({ maxTimers: MAX_LIVE_TIMERS, callbackTimeoutMs: UNADOPTED_TIMEOUT_MS });
    const fetches = new FetchHost(deps.outbound, UNADOPTED_TIMEOUT_MS);
    const console = { sink: (() => {}) as ConsoleSink };
    try {
      const context = await isolate.createContext();
      const jail = context.global;
      // The bridge (runtime/isolate/bootstrap/host.ts): the bootstrap captures and deletes these.
      await Promise.all([
        jail.set(
          "__hearth_log",
          new ivm.Callback((...args: Parameters<ConsoleSink>) => console.sink(...args), { ignored: true }),
        ),
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
      await context.eval(`__hearth_connect(${Number(memoryMb)}); delete globalThis.__hearth_connect;`);
      const [init, fire, fetched] = (await Promise.all([
        jail.get("__hearth_init", { reference: true }),
        jail.get("__hearth_timer_fire", { reference: true }),
        jail.get("__hearth_fetch_done", { reference: true }),
      ])) as ivm.Reference[];
      timers.bind(fire as ivm.Reference);
      fetches.bind(fetched as ivm.Reference);
      await Promise.all(["__hearth_init", "__hearth_timer_fire", "__hearth_fetch_done"].map((n) => jail.delete(n)));
      return new IsolateShell({ isolate, context, memoryMb, timers, fetches, init: init as ivm.Reference, console });
    } catch (err) {
      timers.dispose();
      fetches.dispose();
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /** Gives the shell to a function: its timeouts, and where its console lines go. */
  adopt(options: { timeoutMs: number; cpuMs: number; onConsole: ConsoleSink }): void {
    // A timer callback runs outside any invocation: its synchronous part gets the CPU budget.
    this.timers.setCallbackTimeout(options.cpuMs);
    this.fetches.setTimeout(options.timeoutMs);
    this.#console.sink = options.onConsole;
  }

  dispose(): void {
    this.timers.dispose();
    this.fetches.dispose();
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }
}
