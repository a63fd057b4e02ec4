/**
 * `performance` (https://w3c.github.io/hr-time/#sec-performance): an EventTarget with now(), timeOrigin
 * and toJSON(). now() comes from Date.now(): millisecond resolution. Finer time would need a host call
 * per read (≈20 µs from an isolate thread), and coarse time is also what Workers gives functions, as a
 * guard against timing side channels. No mark/measure: Workers has none to match, and a timeline
 * buffer per isolate is memory no function asked for.
 */
import { EventTarget } from "event-target-shim";

const INTERNAL = Symbol("Performance");
let timeOrigin = Date.now();

export class Performance extends EventTarget {
  /** Not for function code: there is one, `performance`. */
  constructor(key?: symbol) {
    super();
    if (key !== INTERNAL) throw new TypeError("Illegal constructor");
  }

  get timeOrigin(): number {
    return timeOrigin;
  }

  now(): number {
    return Date.now() - timeOrigin;
  }

  toJSON(): { timeOrigin: number } {
    return { timeOrigin };
  }

  get [Symbol.toStringTag](): string {
    return "Performance";
  }
}

export const performance = new Performance(INTERNAL);

/** The isolate's time origin is when it was connected, not when the bootstrap snapshot was made. */
export function resetTimeOrigin(): void {
  timeOrigin = Date.now();
}
