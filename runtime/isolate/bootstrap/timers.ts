import { host } from "./host.ts";

/**
 * setTimeout/setInterval with the callbacks kept in the isolate and only (id, delay) sent to the host,
 * which fires `__hearth_timer_fire(id)` back (the pattern of ricsam/isolate; research §5). A cap on
 * live timers stops a function from flooding the host with them.
 */
export const MAX_LIVE_TIMERS = 10_000;
/** Intervals repeat at most every 10 ms (browsers clamp nested timers to 4 ms). */
const MIN_INTERVAL_MS = 10;

interface Timer {
  callback: (...args: unknown[]) => void;
  args: unknown[];
  intervalMs: number | null;
}

const timers = new Map<number, Timer>();
let nextId = 1;

function arm(callback: unknown, ms: unknown, args: unknown[], repeat: boolean): number {
  if (typeof callback !== "function") throw new TypeError("The callback must be a function");
  if (timers.size >= MAX_LIVE_TIMERS) throw new RangeError(`Too many live timers (limit ${MAX_LIVE_TIMERS})`);
  const delay = Math.max(0, Number(ms) || 0);
  const id = nextId++;
  timers.set(id, {
    callback: callback as Timer["callback"],
    args,
    intervalMs: repeat ? Math.max(MIN_INTERVAL_MS, delay) : null,
  });
  host.timerSet(id, delay);
  return id;
}

function clear(id: unknown): void {
  if (typeof id === "number" && timers.delete(id)) host.timerClear(id);
}

export const setTimeout = (callback: unknown, ms?: unknown, ...args: unknown[]) => arm(callback, ms, args, false);
export const setInterval = (callback: unknown, ms?: unknown, ...args: unknown[]) => arm(callback, ms, args, true);
export const clearTimeout = clear;
export const clearInterval = clear;

/** Called by the host when timer `id` is due. An error in a callback is reported, as browsers do. */
export function fireTimer(id: number): void {
  const timer = timers.get(id);
  if (!timer) return;
  if (timer.intervalMs === null) timers.delete(id);
  else host.timerSet(id, timer.intervalMs);
  try {
    timer.callback(...timer.args);
  } catch (err) {
    console.error("Uncaught error in timer callback:", err);
  }
}
