/**
 * The only ways out of the isolate, captured once from globals the host set before the bootstrap
 * ran, then deleted so function code never sees them. Each is an isolated-vm Callback: arguments and
 * results are copied, never shared.
 */
export interface HostBridge {
  /** A console line: level, text, invocation id (or null). Fire-and-forget. */
  log(level: string, message: string, invocationId: string | null): void;
  /** Arms a host timer that will call `__hearth_timer_fire(id)` after `ms`. Fire-and-forget. */
  timerSet(id: number, ms: number): void;
  timerClear(id: number): void;
  /** Fresh random bytes from the host's CSPRNG (node:crypto). Synchronous. */
  entropy(bytes: number): ArrayBuffer;
}

const g = globalThis as unknown as Record<string, unknown>;

function take<T>(name: string): T {
  const value = g[name] as T;
  delete g[name];
  if (typeof value !== "function") throw new Error(`host bridge ${name} is missing`);
  return value;
}

export const host: HostBridge = {
  log: take("__hearth_log"),
  timerSet: take("__hearth_timer_set"),
  timerClear: take("__hearth_timer_clear"),
  entropy: take("__hearth_entropy"),
};
