import {
  type FunctionCode,
  FunctionIsolate,
  type InvokeOptions,
  type InvokeOutcome,
  type IsolateDeps,
} from "../isolate/function-isolate.ts";
import type { InvocationObserver } from "./function-host.ts";

/** How a pool grows and recycles its isolates. */
export interface PoolPolicy {
  /** Isolates per function in one executor. */
  readonly maxIsolates: number;
  /** An isolate is recycled after this many invocations (leaks in isolated-vm and in user code: research §3). */
  readonly maxInvocationsPerIsolate: number;
  /** ...or when its heap is this full (Noodl recycled at 80%). */
  readonly recycleHeapRatio: number;
  /** How often (in invocations) the heap is looked at. */
  readonly heapCheckEvery: number;
}

export const DEFAULT_POOL_POLICY: PoolPolicy = Object.freeze({
  maxIsolates: 4,
  maxInvocationsPerIsolate: 10_000,
  recycleHeapRatio: 0.8,
  heapCheckEvery: 64,
});

/**
 * The warm isolates of one function in one executor. A request goes to the least busy isolate; a
 * new isolate is added when every one has `fn.concurrency` requests in flight (up to
 * `maxIsolates`). Isolates are recycled after many invocations or when their heap is nearly full,
 * and replaced after a limit killed them. Retired isolates finish their in-flight requests first.
 */
export class FunctionPool {
  #fn: FunctionCode;
  readonly #deps: IsolateDeps;
  readonly #policy: PoolPolicy;
  readonly #now: () => number;
  #isolates: FunctionIsolate[] = [];
  #creating: Promise<FunctionIsolate> | null = null;
  readonly #retiring = new Set<FunctionIsolate>();
  #lastUsedMs: number;
  #disposed = false;
  #maxIsolates: number;
  #inFlight = 0;
  #invocations = 0;
  /** Resolved when the last request in flight ends, while close() waits for it. */
  #drained: PromiseWithResolvers<void> | null = null;

  constructor(fn: FunctionCode, deps: IsolateDeps, policy: PoolPolicy = DEFAULT_POOL_POLICY, now = Date.now) {
    this.#fn = fn;
    this.#deps = deps;
    this.#policy = policy;
    this.#now = now;
    this.#lastUsedMs = now();
    this.#maxIsolates = policy.maxIsolates;
  }

  get fn(): FunctionCode {
    return this.#fn;
  }

  /** Live isolates (not counting retiring ones). */
  get size(): number {
    return this.#isolates.length;
  }

  /** Invocations in flight on this pool, over all its isolates. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Invocations started since the pool was created. */
  get invocations(): number {
    return this.#invocations;
  }

  /** The most isolates this pool may grow to: set by the scheduler's placement. */
  get maxIsolates(): number {
    return this.#maxIsolates;
  }

  /** Changes the pool's ceiling; isolates over a lower one are retired once their requests finish. */
  setMaxIsolates(max: number): void {
    this.#maxIsolates = Math.max(1, max);
    this.#prune();
    while (this.#isolates.length > this.#maxIsolates) {
      const idlest = this.#isolates.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
      this.#retire(idlest);
    }
  }

  /** Milliseconds since the last request ended, or 0 while any is in flight. */
  idleMs(): number {
    return this.#inFlight > 0 ? 0 : this.#now() - this.#lastUsedMs;
  }

  /** Makes sure one isolate is ready; throws ERR_FUNCTION_INVALID if the code fails to load. */
  async warm(): Promise<void> {
    this.#prune();
    if (this.#isolates.length === 0) await this.#grow();
  }

  /** `observer` hears whether the request had to wait for a new isolate (a cold start). */
  async invoke(
    id: string,
    requestJson: string,
    body: Uint8Array | null,
    observer?: InvocationObserver,
    options?: InvokeOptions,
  ): Promise<InvokeOutcome> {
    if (this.#disposed) {
      return {
        ok: false,
        code: "ERR_NO_CAPACITY",
        message: `${this.#fn.name} was unloaded as the request arrived; retry`,
      };
    }
    // Picked synchronously, and isolate.invoke counts itself in flight synchronously, so concurrent
    // callers see each other's load.
    this.#inFlight++;
    this.#invocations++;
    try {
      let isolate = this.#pick();
      if (!isolate) {
        observer?.coldStart();
        try {
          isolate = await this.#grow();
        } catch (err) {
          // Unloaded while the isolate was being built: the request did not run, so it may be retried.
          if (this.#disposed)
            return { ok: false, code: "ERR_NO_CAPACITY", message: `${this.#fn.name} was unloaded; retry` };
          return { ok: false, code: "ERR_FUNCTION_INVALID", message: err instanceof Error ? err.message : String(err) };
        }
      }
      const outcome = await isolate.invoke(id, requestJson, body, options);
      this.#lastUsedMs = this.#now();
      this.#afterInvoke(isolate);
      if (outcome.ok && outcome.stream) {
        // Still in flight until its body ends: close() waits for it.
        this.#inFlight++;
        void outcome.stream.closed.then(() => {
          if (--this.#inFlight === 0) this.#drained?.resolve();
        });
      }
      return outcome;
    } finally {
      if (--this.#inFlight === 0) this.#drained?.resolve();
    }
  }

  /** The least busy live isolate, or null when the pool should (and may) grow first. */
  #pick(): FunctionIsolate | null {
    this.#prune();
    let best: FunctionIsolate | null = null;
    for (const isolate of this.#isolates) if (!best || isolate.inFlight < best.inFlight) best = isolate;
    if (best && (best.inFlight < this.#fn.concurrency || this.#isolates.length >= this.#maxIsolates)) return best;
    return null;
  }

  /** Adds one isolate; concurrent callers share the creation, a failed one is not cached. */
  #grow(): Promise<FunctionIsolate> {
    let creating = this.#creating;
    if (!creating) {
      creating = this.#create().finally(() => {
        this.#creating = null;
      });
      this.#creating = creating;
    }
    return creating;
  }

  async #create(): Promise<FunctionIsolate> {
    const fn = this.#fn;
    const started = performance.now();
    const isolate = await FunctionIsolate.create(fn, this.#deps);
    this.#deps.events?.isolateCreated?.(fn, (performance.now() - started) / 1000);
    if (this.#disposed) {
      // The pool went away while this was being built: nothing would ever dispose it.
      isolate.dispose();
      throw new Error(`${fn.name} was unloaded during a cold start`);
    }
    if (fn === this.#fn) return this.#add(isolate);
    // Redeployed while we were building: this one is already stale.
    isolate.dispose();
    return this.#add(await FunctionIsolate.create(this.#fn, this.#deps));
  }

  #add(isolate: FunctionIsolate): FunctionIsolate {
    this.#isolates.push(isolate);
    return isolate;
  }

  /** Drops isolates a limit has killed, so the next request builds a fresh one. */
  #prune(): void {
    if (this.#isolates.some((i) => i.disposed)) this.#isolates = this.#isolates.filter((i) => !i.disposed);
  }

  #afterInvoke(isolate: FunctionIsolate): void {
    if (isolate.invocations >= this.#policy.maxInvocationsPerIsolate) this.#retire(isolate);
    else if (isolate.invocations % this.#policy.heapCheckEvery === 0) {
      void isolate.heapUsedRatio().then((ratio) => {
        if (ratio >= this.#policy.recycleHeapRatio) this.#retire(isolate);
      });
    }
    if (this.#retiring.size > 0) this.#reapRetired();
  }

  #retire(isolate: FunctionIsolate): void {
    const index = this.#isolates.indexOf(isolate);
    if (index === -1) return;
    this.#isolates.splice(index, 1);
    this.#retiring.add(isolate);
    this.#reapRetired();
  }

  /** Switches to new code: new requests get fresh isolates, old requests finish on the old ones. */
  replace(fn: FunctionCode): void {
    this.#fn = fn;
    for (const isolate of [...this.#isolates]) this.#retire(isolate);
  }

  #reapRetired(): void {
    for (const isolate of this.#retiring) {
      if (isolate.inFlight === 0) {
        isolate.dispose();
        this.#retiring.delete(isolate);
      }
    }
  }

  /**
   * Takes no new requests, lets those in flight finish (up to the function's timeout), then frees
   * every isolate: an unload the scheduler asked for must not fail a request that is already running.
   */
  async close(): Promise<void> {
    this.#disposed = true;
    for (const isolate of [...this.#isolates]) this.#retire(isolate);
    if (this.#inFlight > 0) {
      // The function's own timeout bounds every request; past it (plus a margin) nothing is waited for.
      this.#drained = Promise.withResolvers<void>();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#fn.timeoutMs + 1_000)));
      await Promise.race([this.#drained.promise, deadline]);
      clearTimeout(timer);
    }
    this.dispose();
  }

  dispose(): void {
    this.#disposed = true;
    for (const isolate of [...this.#isolates, ...this.#retiring]) isolate.dispose();
    this.#isolates = [];
    this.#retiring.clear();
    void this.#creating?.then(
      (isolate) => isolate.dispose(),
      () => {},
    );
  }
}
