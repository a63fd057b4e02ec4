import { HearthError } from "./errors.ts";
import type { RateLimit } from "./function-record.ts";

/**
 * What FunctionSettings.rateLimit may hold. Periods are a second, ten seconds or a minute, the
 * units envoyproxy/ratelimit and most API gateways offer: the window is aligned to the wall clock,
 * and a longer period would make the burst at a window's start (up to the whole limit) a bigger
 * surprise than a limit per minute already is. A million per period is far beyond what a cluster
 * serves per function.
 */
export const RATE_LIMIT_BOUNDS = {
  minRequests: 1,
  maxRequests: 1_000_000,
  periodsSeconds: [1, 10, 60] as readonly number[],
} as const;

/**
 * A deploy body's `rateLimit`: `{ requests, periodSeconds }` within RATE_LIMIT_BOUNDS; `null`
 * removes the limit; absent (undefined) keeps the current one. Throws ERR_BAD_REQUEST naming the field.
 */
export function parseRateLimit(value: unknown): RateLimit | null | undefined {
  if (value === undefined || value === null) return value;
  const bad = (message: string) => new HearthError("ERR_BAD_REQUEST", message);
  if (typeof value !== "object" || Array.isArray(value)) {
    throw bad('rateLimit must be an object like { "requests": 100, "periodSeconds": 60 }, or null to remove it');
  }
  const { requests, periodSeconds, ...other } = value as Record<string, unknown>;
  const unknown = Object.keys(other);
  if (unknown.length > 0) throw bad(`rateLimit may only hold requests and periodSeconds, got ${unknown.join(", ")}`);
  const { minRequests, maxRequests, periodsSeconds } = RATE_LIMIT_BOUNDS;
  if (typeof requests !== "number" || !Number.isInteger(requests) || requests < minRequests || requests > maxRequests) {
    throw bad(
      `rateLimit.requests must be an integer from ${minRequests} to ${maxRequests}, got ${JSON.stringify(requests)}`,
    );
  }
  if (typeof periodSeconds !== "number" || !periodsSeconds.includes(periodSeconds)) {
    throw bad(
      `rateLimit.periodSeconds must be one of ${periodsSeconds.join(", ")}, got ${JSON.stringify(periodSeconds)}`,
    );
  }
  return { requests, periodSeconds };
}
