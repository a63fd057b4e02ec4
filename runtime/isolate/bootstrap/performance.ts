/**
 * performance.now() from Date.now(): millisecond resolution. Finer time would need a host call per
 * read (≈20 µs from an isolate thread), and coarse time is also what Workers gives functions, as a
 * guard against timing side channels.
 */
const timeOrigin = Date.now();

export const performance = {
  timeOrigin,
  now: () => Date.now() - timeOrigin,
  toJSON: () => ({ timeOrigin }),
};
