import type ivm from "isolated-vm";

/** Node's setTimeout holds at most a signed 32-bit delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;
/**
 * Timer callbacks one isolate may run per window; more wait for the next window. 500 per 100 ms
 * (5,000/s): at 1,000 per 1 s, an isolate serving 32 requests at a time that each await a 5 ms timer
 * was capped at 1,010 req/s, with every request past the budget stalled up to a second (p99 734 ms).
 * Short windows keep a flood's stall short; the flood still gets no more than the budget.
 */
const FIRE_WINDOW_MS = 100;
const MAX_FIRES_PER_WINDOW = 500;

/**
 * The host side of an isolate's timers: one Node timer per live isolate timer, firing
 * `__hearth_timer_fire(id)` in the isolate. Callbacks never leave the isolate; only ids and delays
 * cross. Disposed with the isolate, so a replaced isolate leaves no timers behind.
 */
export class TimerHost {
  readonly #timers = new Map<number, NodeJS.Timeout>();
  readonly #maxTimers: number;
  #callbackTimeoutMs: number;
  #fire: ivm.Reference | null = null;
  #windowStart = 0;
  #firesInWindow = 0;
  #disposed = false;

  constructor(options: { maxTimers: number; callbackTimeoutMs: number }) {
    this.#maxTimers = options.maxTimers;
    this.#callbackTimeoutMs = options.callbackTimeoutMs;
  }

  /** The in-isolate `fireTimer`, available once the bootstrap has run. */
  bind(fire: ivm.Reference): void {
    this.#fire = fire;
  }

  /** How long one timer callback may run; set when a function adopts the isolate. */
  setCallbackTimeout(ms: number): void {
    this.#callbackTimeoutMs = ms;
  }

  readonly set = (id: number, ms: number): void => {
    if (this.#disposed || typeof id !== "number") return;
    const existing = this.#timers.get(id);
    if (existing) clearTimeout(existing);
    else if (this.#timers.size >= this.#maxTimers) return; // the isolate enforces the same cap
    const delay = Math.min(Math.max(0, Number(ms) || 0), MAX_DELAY_MS);
    this.#timers.set(
      id,
      setTimeout(() => this.#fireOrDefer(id), delay),
    );
  };

  /** Fires timer `id` unless this window's budget is spent, in which case it waits for the next. */
  #fireOrDefer(id: number): void {
    const now = Date.now();
    if (now - this.#windowStart >= FIRE_WINDOW_MS) {
      this.#windowStart = now;
      this.#firesInWindow = 0;
    }
    if (this.#firesInWindow >= MAX_FIRES_PER_WINDOW) {
      this.#timers.set(
        id,
        setTimeout(() => this.#fireOrDefer(id), this.#windowStart + FIRE_WINDOW_MS - now),
      );
      return;
    }
    this.#firesInWindow++;
    this.#timers.delete(id);
    // A callback that runs too long is cut off by `timeout`; the isolate stays usable.
    this.#fire?.apply(undefined, [id], { timeout: this.#callbackTimeoutMs }).catch(() => {});
  }

  readonly clear = (id: number): void => {
    const timer = this.#timers.get(id);
    if (timer) clearTimeout(timer);
    this.#timers.delete(id);
  };

  dispose(): void {
    this.#disposed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
