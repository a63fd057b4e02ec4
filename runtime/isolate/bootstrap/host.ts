import type { ConsoleLine } from "./console.ts";

/**
 * The only ways out of the isolate. The host sets them as globals on each new context and calls
 * `__hearth_connect()`, which moves them here and deletes the globals, so function code never sees
 * them. Each is an isolated-vm Callback: arguments and results are copied, never shared.
 *
 * Connecting is separate from evaluating the bootstrap because the bootstrap may come from a V8
 * snapshot, made once per executor, where no host callbacks can exist.
 */
export interface HostBridge {
  /** A batch of console lines (console.ts). Fire-and-forget. */
  log(lines: ConsoleLine[]): void;
  /**
   * Asks the host to call `__hearth_timer_fire()` in `ms` (replacing an earlier request). The timers
   * themselves live in the isolate (timers.ts). Fire-and-forget.
   */
  timerWake(ms: number): void;
  /** Fresh random bytes from the host's CSPRNG (node:crypto). Synchronous. */
  entropy(bytes: number): ArrayBuffer;
  /** Starts outbound request `id`; the host answers through `__hearth_fetch_done`. Fire-and-forget. */
  fetchStart(id: number, request: object): void;
  fetchAbort(id: number): void;
  /** Asks for the next chunk of fetch `id`'s streamed body, answered through `__hearth_fetch_done`. Fire-and-forget. */
  fetchRead(id: number): void;
  /** Starts crypto operation `id` (crypto/wire.ts); the host answers through `__hearth_crypto_done`. Fire-and-forget. */
  cryptoStart(id: number, request: object): void;
  /** The script of a lazy part (lazy.ts), which the isolate compiles on its first use. Synchronous. */
  lazySource(name: string): string;
}

const notConnected = (): never => {
  throw new Error("Hearth host bridge is not connected");
};

export const host: HostBridge = {
  log: notConnected,
  timerWake: notConnected,
  entropy: notConnected,
  fetchStart: notConnected,
  fetchAbort: notConnected,
  fetchRead: notConnected,
  cryptoStart: notConnected,
  lazySource: notConnected,
};

const GLOBAL_NAMES: Record<keyof HostBridge, string> = {
  log: "__hearth_log",
  timerWake: "__hearth_timer_wake",
  entropy: "__hearth_entropy",
  fetchStart: "__hearth_fetch_start",
  fetchAbort: "__hearth_fetch_abort",
  fetchRead: "__hearth_fetch_read",
  cryptoStart: "__hearth_crypto_start",
  lazySource: "__hearth_lazy_source",
};

/** Moves the host callbacks from their globals into `host`. */
export function connectHost(): void {
  const g = globalThis as unknown as Record<string, unknown>;
  for (const [key, name] of Object.entries(GLOBAL_NAMES) as Array<[keyof HostBridge, string]>) {
    const value = g[name];
    delete g[name];
    if (typeof value !== "function") throw new Error(`host bridge ${name} is missing`);
    host[key] = value as never;
  }
}
