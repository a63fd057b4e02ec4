import { Event, EventTarget, getEventAttributeValue, setEventAttributeValue } from "event-target-shim";
import { setTimeout } from "./timers.ts";

const INTERNAL = Symbol("AbortSignal");
/** WebIDL [EnforceRange] unsigned long long, which AbortSignal.timeout() takes. */
const MAX_TIMEOUT_MS = Number.MAX_SAFE_INTEGER;

/**
 * AbortSignal (https://dom.spec.whatwg.org/#interface-AbortSignal) on event-target-shim: no
 * maintained library has `timeout` and `any`. The abort event is dispatched to the signal, so its
 * target is the signal, and `onabort` is an event handler attribute, which runs in the order it was
 * first set among the listeners.
 */
export class AbortSignal extends EventTarget {
  #aborted = false;
  #reason: unknown = undefined;
  /** Signals made by any() from this one; they abort with it, after it (the spec's "dependent signals"). */
  readonly #dependents = new Set<AbortSignal>();
  /** For a signal made by any(): the plain signals it follows (never themselves made by any()). */
  readonly #sources: AbortSignal[] = [];

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

  get onabort(): ((event: Event) => void) | null {
    return getEventAttributeValue(this, "abort") as ((event: Event) => void) | null;
  }

  set onabort(handler: ((event: Event) => void) | null) {
    setEventAttributeValue(this, "abort", handler);
  }

  throwIfAborted(): void {
    if (this.#aborted) throw this.#reason;
  }

  /**
   * @internal https://dom.spec.whatwg.org/#abortsignal-signal-abort: every dependent is marked
   * aborted before any event fires, and the source's event fires first.
   */
  _abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason === undefined ? new DOMException("signal is aborted without reason", "AbortError") : reason;
    const dependents = [...this.#dependents].filter((dependent) => !dependent.#aborted);
    for (const dependent of dependents) {
      dependent.#aborted = true;
      dependent.#reason = this.#reason;
    }
    this.#dependents.clear();
    this.dispatchEvent(new Event("abort"));
    for (const dependent of dependents) dependent.dispatchEvent(new Event("abort"));
  }

  static abort(reason?: unknown): AbortSignal {
    const signal = new AbortSignal(INTERNAL);
    signal._abort(reason);
    return signal;
  }

  static timeout(ms: number): AbortSignal {
    const delay = Number(ms);
    if (!Number.isFinite(delay) || delay < 0 || delay > MAX_TIMEOUT_MS) {
      throw new TypeError(`AbortSignal.timeout: ${String(ms)} is not a delay from 0 to ${MAX_TIMEOUT_MS} ms`);
    }
    const signal = new AbortSignal(INTERNAL);
    setTimeout(() => signal._abort(new DOMException("signal timed out", "TimeoutError")), Math.trunc(delay));
    return signal;
  }

  /** https://dom.spec.whatwg.org/#create-a-dependent-abort-signal */
  static any(signals: Iterable<AbortSignal>): AbortSignal {
    const list = [...signals];
    for (const signal of list) {
      if (!(signal instanceof AbortSignal)) throw new TypeError("AbortSignal.any takes a sequence of AbortSignals");
    }
    const combined = new AbortSignal(INTERNAL);
    const aborted = list.find((signal) => signal.#aborted);
    if (aborted) {
      combined._abort(aborted.#reason);
      return combined;
    }
    for (const signal of list) {
      // A dependent signal's sources stand in for it, so chains of any() stay one level deep.
      for (const source of signal.#sources.length > 0 ? signal.#sources : [signal]) {
        if (combined.#sources.includes(source)) continue;
        combined.#sources.push(source);
        source.#dependents.add(combined);
      }
    }
    return combined;
  }
}

export class AbortController {
  readonly signal = new AbortSignal(INTERNAL);

  abort(reason?: unknown): void {
    this.signal._abort(reason);
  }
}
