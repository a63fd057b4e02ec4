import type ivm from "isolated-vm";

/** How often CPU use is checked while anything runs: a breach is caught within about this. */
export const DEFAULT_TICK_MS = 10;

interface Watched {
  readonly isolate: ivm.Isolate;
  readonly budgetNs: bigint;
  /** isolate.cpuTime when the isolate last made progress (an invocation began on an idle isolate, or one ended). */
  sinceNs: bigint;
  readonly breaches: Set<() => void>;
}

/**
 * Enforces CPU time per invocation from the host. isolated-vm's `timeout` covers only the synchronous
 * part of a call (research/isolated-vm.md §0.3), so one timer polls `isolate.cpuTime`, which advances
 * while the isolate runs on a pool thread.
 *
 * CPU is counted per isolate since its last progress (an invocation ending resets the count), against
 * `cpuMs ×` the invocations in flight there: they may all have run since. Calls into one isolate run
 * one at a time, so counting from when a call was *made* charged a queued call for the CPU of every
 * call ahead of it: at ~2 ms of CPU per request and a 50 ms limit, 844 of a step test's requests
 * failed with ERR_FUNCTION_CPU_TIME while none used more than 3 ms. A runaway invocation still
 * breaches: while it spins, no other invocation in its isolate can end.
 */
export class CpuWatchdog {
  readonly #isolates = new Map<ivm.Isolate, Watched>();
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(tickMs = DEFAULT_TICK_MS) {
    this.#tickMs = tickMs;
  }

  /** Watches one invocation; call the returned function when it ends. */
  watch(isolate: ivm.Isolate, cpuMs: number, onBreach: () => void): () => void {
    let watched = this.#isolates.get(isolate);
    if (!watched) {
      watched = { isolate, budgetNs: BigInt(Math.round(cpuMs * 1e6)), sinceNs: isolate.cpuTime, breaches: new Set() };
      this.#isolates.set(isolate, watched);
    }
    const entry = watched;
    // A fresh function per call, so two invocations with the same callback are counted apart.
    const breach = () => onBreach();
    entry.breaches.add(breach);
    // One interval for the executor's life, not one per busy spell: requests arriving one at a time
    // would otherwise create and clear a timer each. unref: it never keeps the process alive.
    this.#timer ??= setInterval(this.#check, this.#tickMs).unref();
    return () => {
      entry.breaches.delete(breach);
      if (entry.breaches.size === 0) this.#isolates.delete(isolate);
      else if (!isolate.isDisposed) entry.sinceNs = isolate.cpuTime;
    };
  }

  readonly #check = (): void => {
    for (const watched of this.#isolates.values()) {
      if (watched.isolate.isDisposed) continue;
      // Every invocation in flight may have run since the last one ended: they share their budgets.
      const budgetNs = watched.budgetNs * BigInt(Math.max(1, watched.breaches.size));
      if (watched.isolate.cpuTime - watched.sinceNs > budgetNs) {
        for (const breach of [...watched.breaches]) breach();
      }
    }
  };
}
