import type ivm from "isolated-vm";

/** How often CPU use is checked while anything runs: a breach is caught within about this. */
export const DEFAULT_TICK_MS = 10;

interface Watch {
  readonly isolate: ivm.Isolate;
  readonly startCpuNs: bigint;
  readonly budgetNs: bigint;
  /** Invocations in flight in the same isolate when checked; the budget scales with them. */
  readonly inFlight: () => number;
  readonly onBreach: () => void;
}

/**
 * Enforces CPU time per invocation from the host. isolated-vm's `timeout` covers only the synchronous
 * part of a call (research/isolated-vm.md §0.3), so one timer polls `isolate.cpuTime`, which advances
 * while the isolate runs on a pool thread, for every invocation in flight. CPU is counted per isolate:
 * with several invocations in flight in one isolate, they share a budget of `cpuMs × in flight`.
 */
export class CpuWatchdog {
  readonly #watches = new Set<Watch>();
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(tickMs = DEFAULT_TICK_MS) {
    this.#tickMs = tickMs;
  }

  /** Watches one invocation; call the returned function when it ends. */
  watch(isolate: ivm.Isolate, cpuMs: number, inFlight: () => number, onBreach: () => void): () => void {
    const entry: Watch = {
      isolate,
      startCpuNs: isolate.cpuTime,
      budgetNs: BigInt(Math.round(cpuMs * 1e6)),
      inFlight,
      onBreach,
    };
    this.#watches.add(entry);
    // One interval for the executor's life, not one per busy spell: requests arriving one at a time
    // would otherwise create and clear a timer each. unref: it never keeps the process alive.
    this.#timer ??= setInterval(this.#check, this.#tickMs).unref();
    return () => {
      this.#watches.delete(entry);
    };
  }

  readonly #check = (): void => {
    for (const watch of this.#watches) {
      if (watch.isolate.isDisposed) continue;
      const used = watch.isolate.cpuTime - watch.startCpuNs;
      if (used > watch.budgetNs * BigInt(Math.max(1, watch.inFlight()))) watch.onBreach();
    }
  };
}
