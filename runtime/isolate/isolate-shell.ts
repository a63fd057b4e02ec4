import { randomFillSync } from "node:crypto";
import ivm from "isolated-vm";
import type { OutboundFetch } from "../outbound/outbound-fetch.ts";
import type { LazyPartName } from "./bootstrap/lazy.ts";
import type { Bootstrap } from "./bootstrap-source.ts";
import type { CodeCache } from "./code-cache.ts";
import { CryptoHost } from "./crypto-host.ts";
import { FetchHost } from "./fetch-host.ts";
import { TimerHost } from "./timer-host.ts";

/** One console line of the function: level, text, and the invocation it belongs to (or null). */
export interface ConsoleEntry {
  readonly level: string;
  readonly message: string;
  readonly invocationId: string | null;
}

/** Receives the function's console lines, a batch at a time (bootstrap/console.ts caps them). */
export type ConsoleSink = (lines: readonly ConsoleEntry[]) => void;

/** Who holds a shell: named in a catastrophic error, and told of it first. */
interface Owner {
  fn: string;
  onLost: () => void;
}

export interface ShellDeps {
  readonly bootstrap: Bootstrap;
  readonly cache: CodeCache;
  readonly outbound: OutboundFetch;
  /** V8 hit a fatal OOM: the process must die (isolated-vm README, `onCatastrophicError`). */
  readonly onCatastrophicError: (message: string) => void;
}

/** Random bytes per host call; the bootstrap draws crypto randomness from them (bootstrap/crypto/random.ts). */
const MAX_ENTROPY_BYTES = 65_536;
/** Until a function adopts the shell, its timers and fetches get this long. */
const UNADOPTED_TIMEOUT_MS = 1_000;
/** A call into the isolate that has not settled this long after a dispose is stuck in V8. */
export const STUCK_AFTER_DISPOSE_MS = 500;

/**
 * Host CPU charged to the function for work the host does at its request, in ns, so that work after
 * the response and floods of host calls draw on the function's CPU budget like its own code does.
 * Measured on the project machine (process CPU per operation, docs/security.md): a timer wake-up
 * ≈ 200 µs of which the isolate's own share is charged from its clock, a refused outbound fetch
 * ≈ 240 µs with its completion call, a console line through pino ≈ 4 µs, 64 KiB of CSPRNG ≈ 60 µs.
 */
export const HOST_CHARGE_NS = Object.freeze({
  call: 100_000n,
  consoleLine: 4_000n,
  fetch: 150_000n,
  entropyPerKiB: 1_000n,
});

/** Fresh CSPRNG bytes for the isolate, as a standalone ArrayBuffer (a Buffer may be a pooled slab). */
function entropy(bytes: number): ArrayBuffer {
  const out = new Uint8Array(Math.min(Math.max(0, bytes | 0), MAX_ENTROPY_BYTES));
  randomFillSync(out);
  return out.buffer;
}

/** Reads a console batch copied out of the isolate, whose bootstrap function code may have tampered with. */
function consoleEntries(batch: unknown): ConsoleEntry[] {
  if (!Array.isArray(batch)) return [];
  const entries: ConsoleEntry[] = [];
  for (const line of batch) {
    if (!Array.isArray(line) || typeof line[0] !== "string" || typeof line[1] !== "string") continue;
    entries.push({ level: line[0], message: line[1], invocationId: typeof line[2] === "string" ? line[2] : null });
  }
  return entries;
}

/** Host work done for one isolate and the calls into it still running: what a watchdog reads. */
class HostLedger {
  hostNs = 0n;
  /** Every call into the isolate still running (see IsolateShell.stuck). */
  readonly calls = new Set<Promise<unknown>>();
  /** Those that are not invocations: timer wake-ups and fetch completions (see hasPendingWork). */
  readonly background = new Set<Promise<unknown>>();

  charge(ns: bigint): void {
    this.hostNs += ns;
  }

  /** Counts a call into the isolate, and keeps it until it settles. */
  track(call: Promise<unknown>, background: boolean, charged = true): void {
    if (charged) this.hostNs += HOST_CHARGE_NS.call;
    this.calls.add(call);
    if (background) this.background.add(call);
    const settled = () => {
      this.calls.delete(call);
      this.background.delete(call);
    };
    call.then(settled, settled);
  }
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
  /** The bootstrap's `__hearth_init(envJson, maxBodyBytes, maxStreamedBodyBytes)`, which binds the function's module. */
  readonly init: ivm.Reference;
  /** The bootstrap's `__hearth_body_pull(id, cancel)`: the next chunk of a streamed response body. */
  readonly bodyPull: ivm.Reference;
  /** Where console lines go; the log Callback is created before the function is known. */
  readonly #console: { sink: ConsoleSink };
  /** The function that adopted the shell, named and told if V8 loses the isolate. */
  readonly #owner: Owner;
  readonly #ledger: HostLedger;
  readonly #crypto: CryptoHost;

  private constructor(fields: {
    isolate: ivm.Isolate;
    context: ivm.Context;
    memoryMb: number;
    timers: TimerHost;
    fetches: FetchHost;
    init: ivm.Reference;
    bodyPull: ivm.Reference;
    console: { sink: ConsoleSink };
    owner: Owner;
    ledger: HostLedger;
    crypto: CryptoHost;
  }) {
    this.isolate = fields.isolate;
    this.context = fields.context;
    this.memoryMb = fields.memoryMb;
    this.timers = fields.timers;
    this.fetches = fields.fetches;
    this.init = fields.init;
    this.bodyPull = fields.bodyPull;
    this.#console = fields.console;
    this.#owner = fields.owner;
    this.#ledger = fields.ledger;
    this.#crypto = fields.crypto;
  }

  /** Host CPU spent at this isolate's request so far (ns): read by the CPU watchdog. */
  get hostNs(): bigint {
    return this.#ledger.hostNs;
  }

  /** Counts an invocation's call into the isolate: charged, and watched for getting stuck. */
  track(call: Promise<unknown>): void {
    this.#ledger.track(call, false);
  }

  /**
   * Counts a pull of a streamed response body: watched for getting stuck, but not charged as host
   * work. The consumer drives pulls, not the function, and the function's own work in them is on
   * its CPU clock; a whole body's copy out is not charged either (20 MiB is 320 pulls: charged as
   * calls, they alone would take 32 ms of a 50 ms budget).
   */
  trackPull(call: Promise<unknown>): void {
    this.#ledger.track(call, false, false);
  }

  /**
   * Timers or fetches are pending, or a wake-up or fetch completion is running in the isolate (a
   * wake-up re-arms from inside its call): the isolate will run again without a new invocation.
   * Invocations in flight do not count; they are watched on their own.
   */
  get hasPendingWork(): boolean {
    return this.timers.pending || this.fetches.pending || this.#crypto.pending || this.#ledger.background.size > 0;
  }

  /**
   * After a dispose: resolves true if a call into the isolate is still running
   * STUCK_AFTER_DISPOSE_MS later. V8 cannot interrupt some builtins (`Array.prototype.fill` on a
   * huge array, `JSON.parse` of megabytes): their thread runs on, and only the process can end it.
   */
  async stuck(): Promise<boolean> {
    if (this.#ledger.calls.size === 0) return false;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(resolve, STUCK_AFTER_DISPOSE_MS, "late");
    });
    const settled = Promise.allSettled([...this.#ledger.calls]);
    const result = await Promise.race([settled, late]);
    clearTimeout(timer);
    return result === "late";
  }

  static async create(memoryMb: number, deps: ShellDeps): Promise<IsolateShell> {
    const { bootstrap } = deps;
    const owner: Owner = { fn: "no function yet (a stem cell)", onLost: () => {} };
    const isolate = new ivm.Isolate({
      memoryLimit: memoryMb,
      // The function hears first (its callers are answered now: the isolate's thread never returns),
      // then the executor, with the function named: the log line is the trace of which one it was.
      onCatastrophicError: (message: string) => {
        owner.onLost();
        deps.onCatastrophicError(`${message} in an isolate of ${owner.fn} (memory limit ${memoryMb} MB)`);
      },
      ...(bootstrap.snapshot ? { snapshot: bootstrap.snapshot } : {}),
    });
    const ledger = new HostLedger();
    const track = (call: Promise<unknown>) => ledger.track(call, true);
    const timers = new TimerHost({ callbackTimeoutMs: UNADOPTED_TIMEOUT_MS, onFire: track });
    const fetches = new FetchHost(deps.outbound, UNADOPTED_TIMEOUT_MS, track);
    // Native crypto runs off the isolate's clock: its time is charged as host work (crypto-host.ts).
    const crypto = new CryptoHost({
      timeoutMs: UNADOPTED_TIMEOUT_MS,
      onCall: track,
      charge: (ns) => ledger.charge(ns),
    });
    const console = { sink: (() => {}) as ConsoleSink };
    const log = (batch: unknown) => {
      const entries = consoleEntries(batch);
      ledger.charge(HOST_CHARGE_NS.consoleLine * BigInt(entries.length));
      console.sink(entries);
    };
    const startFetch: typeof fetches.start = (id, request) => {
      ledger.charge(HOST_CHARGE_NS.fetch);
      fetches.start(id, request);
    };
    const drawEntropy = (bytes: number) => {
      const out = entropy(bytes);
      ledger.charge(HOST_CHARGE_NS.entropyPerKiB * BigInt(Math.ceil(out.byteLength / 1024)) + HOST_CHARGE_NS.call);
      return out;
    };
    const lazySource = (name: string) => {
      ledger.charge(HOST_CHARGE_NS.call);
      if (!Object.hasOwn(bootstrap.lazyParts, name)) throw new Error(`no lazy part named ${String(name)}`);
      return bootstrap.lazyParts[name as LazyPartName].copyInto();
    };
    try {
      const context = await isolate.createContext();
      const jail = context.global;
      // The bridge (runtime/isolate/bootstrap/host.ts): the bootstrap captures and deletes these.
      await Promise.all([
        jail.set("__hearth_log", new ivm.Callback(log, { ignored: true })),
        jail.set("__hearth_timer_wake", new ivm.Callback(timers.wake, { ignored: true })),
        jail.set("__hearth_entropy", new ivm.Callback(drawEntropy)),
        jail.set("__hearth_fetch_start", new ivm.Callback(startFetch, { ignored: true })),
        jail.set("__hearth_fetch_abort", new ivm.Callback(fetches.abort, { ignored: true })),
        jail.set("__hearth_fetch_read", new ivm.Callback(fetches.read, { ignored: true })),
        jail.set("__hearth_crypto_start", new ivm.Callback(crypto.start, { ignored: true })),
        jail.set("__hearth_lazy_source", new ivm.Callback(lazySource)),
      ]);
      if (!bootstrap.snapshot) {
        const script = await deps.cache.compile(isolate, bootstrap.source, "bootstrap", bootstrap.filename);
        await script.run(context);
      }
      await context.eval(`__hearth_connect(${Number(memoryMb)}); delete globalThis.__hearth_connect;`);
      const entries = [
        "__hearth_init",
        "__hearth_timer_fire",
        "__hearth_fetch_done",
        "__hearth_body_pull",
        "__hearth_crypto_done",
      ];
      const [init, fire, fetched, bodyPull, cryptoDone] = (await Promise.all(
        entries.map((name) => jail.get(name, { reference: true })),
      )) as ivm.Reference[];
      timers.bind(fire as ivm.Reference);
      fetches.bind(fetched as ivm.Reference);
      crypto.bind(cryptoDone as ivm.Reference);
      await Promise.all(entries.map((n) => jail.delete(n)));
      return new IsolateShell({
        isolate,
        context,
        memoryMb,
        timers,
        fetches,
        init: init as ivm.Reference,
        bodyPull: bodyPull as ivm.Reference,
        console,
        owner,
        ledger,
        crypto,
      });
    } catch (err) {
      timers.dispose();
      fetches.dispose();
      crypto.dispose();
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /** Gives the shell to a function: its name, its timeouts, where its console lines go, and who hears if V8 loses it. */
  adopt(options: { fn: string; timeoutMs: number; onConsole: ConsoleSink; onLost: () => void }): void {
    this.#owner.fn = options.fn;
    this.#owner.onLost = options.onLost;
    // A wall-clock backstop only: the CPU watchdog charges callbacks (and what they continue) to the
    // invocations open on the isolate, and ends them by CPU time, not by time spent waiting for a core.
    this.timers.setCallbackTimeout(options.timeoutMs);
    this.fetches.setTimeout(options.timeoutMs);
    this.#crypto.setTimeout(options.timeoutMs);
    this.#console.sink = options.onConsole;
  }

  /**
   * After V8 lost the isolate (a catastrophic error): stops the host's side of it, but leaves the
   * isolate itself alone. Its thread is parked inside V8 for good (isolated-vm's OOM handler), and
   * disposing it would wait on that thread; its memory goes when the process ends.
   */
  abandon(): void {
    this.timers.dispose();
    this.fetches.dispose();
    this.#crypto.dispose();
  }

  dispose(): void {
    this.abandon();
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }
}
