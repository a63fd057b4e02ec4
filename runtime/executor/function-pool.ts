import {
  type FunctionCode,
  FunctionIsolate,
  type InvokeOutcome,
  type IsolateDeps,
} from "../isolate/function-isolate.ts";

/**
 * The warm isolate(s) of one function in one executor. For now one isolate that serves concurrent
 * requests (as Workers does); issue 3 grows this into a sized pool with idle eviction and recycling.
 * A dead isolate (timeout, out of memory) is replaced on the next request.
 */
export class FunctionPool {
  #fn: FunctionCode;
  readonly #deps: IsolateDeps;
  #isolate: FunctionIsolate | null = null;
  #creating: Promise<FunctionIsolate> | null = null;
  /** Isolates of an older deploy that still finish their in-flight requests. */
  readonly #retiring = new Set<FunctionIsolate>();

  constructor(fn: FunctionCode, deps: IsolateDeps) {
    this.#fn = fn;
    this.#deps = deps;
  }

  get fn(): FunctionCode {
    return this.#fn;
  }

  /** Returns a live isolate, creating one if needed; throws ERR_FUNCTION_INVALID if the code fails to load. */
  warm(): Promise<FunctionIsolate> {
    if (this.#isolate && !this.#isolate.disposed) return Promise.resolve(this.#isolate);
    // Concurrent callers share one creation; a failed one is not cached, the next call retries.
    this.#creating ??= this.#create().finally(() => {
      this.#creating = null;
    });
    return this.#creating;
  }

  async #create(): Promise<FunctionIsolate> {
    const fn = this.#fn;
    const isolate = await FunctionIsolate.create(fn, this.#deps);
    if (fn !== this.#fn) {
      // Redeployed while we were building: this one is already stale.
      isolate.dispose();
      return FunctionIsolate.create(this.#fn, this.#deps).then((fresh) => (this.#isolate = fresh));
    }
    this.#isolate = isolate;
    return isolate;
  }

  async invoke(id: string, requestJson: string, body: Uint8Array | null): Promise<InvokeOutcome> {
    let isolate = this.#isolate;
    if (!isolate || isolate.disposed) {
      try {
        isolate = await this.warm();
      } catch (err) {
        return { ok: false, code: "ERR_FUNCTION_INVALID", message: err instanceof Error ? err.message : String(err) };
      }
    }
    const outcome = await isolate.invoke(id, requestJson, body);
    if (this.#retiring.size > 0) this.#reapRetired();
    return outcome;
  }

  /** Switches to new code: new requests get a fresh isolate, old requests finish on the old one. */
  replace(fn: FunctionCode): void {
    this.#fn = fn;
    if (this.#isolate) this.#retiring.add(this.#isolate);
    this.#isolate = null;
    this.#reapRetired();
  }

  #reapRetired(): void {
    for (const isolate of this.#retiring) {
      if (isolate.inFlight === 0) {
        isolate.dispose();
        this.#retiring.delete(isolate);
      }
    }
  }

  dispose(): void {
    this.#isolate?.dispose();
    this.#isolate = null;
    void this.#creating?.then(
      (isolate) => isolate.dispose(),
      () => {},
    );
    for (const isolate of this.#retiring) isolate.dispose();
    this.#retiring.clear();
  }
}
