import { Event, EventTarget } from "event-target-shim";
import { setTimeout } from "./timers.ts";

const INTERNAL = Symbol("AbortSignal");

/** AbortSignal on event-target-shim (no maintained library has `timeout` and `any`; research §4). */
export class AbortSignal extends EventTarget {
  #aborted = false;
  #reason: unknown = undefined;
  onabort: ((event: Event) => void) | null = null;

  /** Not for function code: signals are made by AbortController and the static factories. */
  constructor(key?: symbol) {
    super();
    if (key !== INTERNAL) throw new TypeError("Illegal constructor");
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  throwIfAborted(): void {
    if (this.#aborted) throw this.#reason;
  }

  /** @internal */
  _abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
    const event = new Event("abort");
    this.onabort?.(event);
    this.dispatchEvent(event);
  }

  static abort(reason?: unknown): AbortSignal {
    const signal = new AbortSignal(INTERNAL);
    signal._abort(reason);
    return signal;
  }

  static timeout(ms: number): AbortSignal {
    const signal = new AbortSignal(INTERNAL);
    setTimeout(() => signal._abort(new DOMException("The operation timed out.", "TimeoutError")), ms);
    return signal;
  }

  static any(signals: Iterable<AbortSignal>): AbortSignal {
    const combined = new AbortSignal(INTERNAL);
    for (const signal of signals) {
      if (signal.aborted) {
        combined._abort(signal.reason);
        return combined;
      }
    }
    for (const signal of signals)
      signal.addEventListener("abort", () => combined._abort(signal.reason), { once: true });
    return combined;
  }
}

export class AbortController {
  readonly signal = new AbortSignal(INTERNAL);

  abort(reason?: unknown): void {
    this.signal._abort(reason);
  }
}
