/**
 * performance.now() from Date.now(): millisecond resolution. Finer time would need a host call per
 * read (≈20 µs from an isolate thread), and coarse time is also what Workers gives functions, as a
 * guard against timing side channels.
 */
let timeOrigin = Date.now();

export const performance = {
  get timeOrigin(): number {
    return timeOrigin;
  },
  now: (): number => Date.now() - timeOrigin,
  toJSON: () => ({ timeOrigin }),
};

/** The isolate's time origin is when it was connected, not when the bootstrap snapshot was made. */
export function resetTimeOrigin(): void {
  timeOrigin = Date.now();
}
