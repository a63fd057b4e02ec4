import { host } from "./host.ts";

/**
 * setTimeout/setInterval kept entirely in the isolate: callbacks, delays and the queue. The host only
 * holds one wake-up per isolate (`host.timerWake`), asked for when the earliest due time moves
 * earlier, and calls `__hearth_timer_fire()` then. So `for (;;) clearTimeout(setTimeout(f))` makes
 * no host call after the first, where one host call per set and clear grew an executor by gigabytes
 * and starved its event loop. A cap on live timers bounds the isolate's own memory for them.
 */
export const MAX_LIVE_TIMERS = 10_000;
/** Intervals repeat at most every 10 ms (browsers clamp nested timers to 4 ms). */
const MIN_INTERVAL_MS = 10;
/** Callbacks run per wake-up; the rest wait for the next one (asked for at once), in order. */
const MAX_CALLBACKS_PER_WAKE = 256;

interface Timer {
  readonly id: number;
  readonly callback: (...args: unknown[]) => void;
  readonly args: unknown[];
  readonly intervalMs: number | null;
  dueMs: number;
}

const timers = new Map<number, Timer>();
let nextId = 1;
/** When the host will next wake us (Date.now), or Infinity when it will not. */
let wakeAtMs = Number.POSITIVE_INFINITY;

function wakeBy(dueMs: number): void {
  if (dueMs >= wakeAtMs) return;
  wakeAtMs = dueMs;
  host.timerWake(Math.max(0, dueMs - Date.now()));
}

function arm(callback: unknown, ms: unknown, args: unknown[], repeat: boolean): number {
  if (typeof callback !== "function") throw new TypeError("The callback must be a function");
  if (timers.size >= MAX_LIVE_TIMERS) throw new RangeError(`Too many live timers (limit ${MAX_LIVE_TIMERS})`);
  const delay = Math.max(0, Number(ms) || 0);
  const id = nextId++;
  const timer: Timer = {
    id,
    callback: callback as Timer["callback"],
    args,
    intervalMs: repeat ? Math.max(MIN_INTERVAL_MS, delay) : null,
    dueMs: Date.now() + delay,
  };
  timers.set(id, timer);
  wakeBy(timer.dueMs);
  return id;
}

function clear(id: unknown): void {
  if (typeof id === "number") timers.delete(id);
}

export const setTimeout = (callback: unknown, ms?: unknown, ...args: unknown[]) => arm(callback, ms, args, false);
export const setInterval = (callback: unknown, ms?: unknown, ...args: unknown[]) => arm(callback, ms, args, true);
export const clearTimeout = clear;
export const clearInterval = clear;

/** Live timers in this isolate. */
export function liveTimers(): number {
  return timers.size;
}

/**
 * Called by the host at the wake-up it was asked for: runs the due timers in due order (ties in
 * creation order), then asks for the next wake-up. An error in a callback is reported, as browsers do.
 */
export function fireTimers(): void {
  wakeAtMs = Number.POSITIVE_INFINITY;
  const now = Date.now();
  const due: Timer[] = [];
  for (const timer of timers.values()) if (timer.dueMs <= now) due.push(timer);
  due.sort((a, b) => a.dueMs - b.dueMs || a.id - b.id);
  for (const timer of due.slice(0, MAX_CALLBACKS_PER_WAKE)) {
    if (timers.get(timer.id) !== timer) continue; // cleared by an earlier callback
    if (timer.intervalMs === null) timers.delete(timer.id);
    else timer.dueMs = now + timer.intervalMs;
    try {
      timer.callback(...timer.args);
    } catch (err) {
      console.error("Uncaught error in timer callback:", err);
    }
  }
  let next = Number.POSITIVE_INFINITY;
  for (const timer of timers.values()) if (timer.dueMs < next) next = timer.dueMs;
  if (next !== Number.POSITIVE_INFINITY) wakeBy(next);
}
