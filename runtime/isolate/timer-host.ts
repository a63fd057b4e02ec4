import type ivm from "isolated-vm";

/** Node's setTimeout holds at most a signed 32-bit delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;
/**
 * Wake-ups one isolate gets per window; later ones wait for the next window. Each wake-up runs every
 * due timer (up to 256), so 200 per 100 ms is ample: an isolate serving 32 requests at a time that
 * each await a 5 ms timer needs about one per due time, not one per timer.
 */
const WAKE_WINDOW_MS = 100;
const MAX_WAKES_PER_WINDOW = 200;
/** A fire that failed (cut off by its timeout) is followed by another wake-up this soon, to re-arm. */
const RETRY_AFTER_FAILURE_MS = 10;

/**
 * The host side of an isolate's timers: at most one Node timer, which calls
 * `__hearth_timer_fire()` in the isolate when it asked to be woken (bootstrap/timers.ts keeps the
 * timers themselves). Disposed with the isolate, so a replaced isolate leaves no timer behind.
 */
export class TimerHost {
  #timer: NodeJS.Timeout | null = null;
  #callbackTimeoutMs: number;
  #fire: ivm.Reference | null = null;
  #windowStart = 0;
  #wakesInWindow = 0;
  #disposed = false;
  readonly #onFire: (call: Promise<unknown>) => void;

  /** `onFire` sees every call into the isolate (for host-work charges and stuck-call tracking). */
  constructor(options: { callbackTimeoutMs: number; onFire: (call: Promise<unknown>) => void }) {
    this.#callbackTimeoutMs = options.callbackTimeoutMs;
    this.#onFire = options.onFire;
  }

  /** The in-isolate `fireTimers`, available once the bootstrap has run. */
  bind(fire: ivm.Reference): void {
    this.#fire = fire;
  }

  /** How long one wake-up's callbacks may run; set when a function adopts the isolate. */
  setCallbackTimeout(ms: number): void {
    this.#callbackTimeoutMs = ms;
  }

  /** A wake-up is armed: the isolate has timers that will run. */
  get pending(): boolean {
    return this.#timer !== null;
  }

  /** The isolate asks to be woken in `ms`; it asks only when that is earlier than before. */
  readonly wake = (ms: number): void => {
    if (this.#disposed) return;
    const delay = Math.min(Math.max(0, Number(ms) || 0), MAX_DELAY_MS);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#fireOrDefer, delay);
  };

  /** Wakes the isolate unless this window's wake-ups are spent, in which case it waits for the next. */
  readonly #fireOrDefer = (): void => {
    this.#timer = null;
    if (this.#disposed || !this.#fire) return;
    const now = Date.now();
    if (now - this.#windowStart >= WAKE_WINDOW_MS) {
      this.#windowStart = now;
      this.#wakesInWindow = 0;
    }
    if (this.#wakesInWindow >= MAX_WAKES_PER_WINDOW) {
      this.#timer = setTimeout(this.#fireOrDefer, this.#windowStart + WAKE_WINDOW_MS - now);
      return;
    }
    this.#wakesInWindow++;
    // A callback that runs too long is cut off by `timeout`; the isolate stays usable, and is woken
    // again so that the timers after the one cut off still run.
    const call = this.#fire.apply(undefined, [], { timeout: this.#callbackTimeoutMs });
    this.#onFire(call);
    call.catch(() => {
      if (!this.#disposed && !this.#timer) this.wake(RETRY_AFTER_FAILURE_MS);
    });
  };

  dispose(): void {
    this.#disposed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
