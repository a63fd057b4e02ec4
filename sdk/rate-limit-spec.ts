/** The period spellings a rate limit takes, in seconds. */
const PERIODS: Readonly<Record<string, number>> = { s: 1, "1s": 1, "10s": 10, min: 60, m: 60, "60s": 60 };

/**
 * `100/min` → `{ requests: 100, periodSeconds: 60 }`; `off` → null (removes the limit): the spelling of
 * `--rate-limit` and of hearth.toml's `rate_limit`, named by `what` in the error. The count's bounds are
 * the gateway's to check; its message names them.
 *
 * @example
 * parseRateLimit("50/10s") // { requests: 50, periodSeconds: 10 }
 */
export function parseRateLimit(
  value: string,
  what = "--rate-limit",
): { requests: number; periodSeconds: number } | null {
  if (value === "off" || value === "none") return null;
  const match = /^(\d+)\/([a-z0-9]+)$/.exec(value.trim());
  const periodSeconds = match ? PERIODS[match[2] as string] : undefined;
  if (!match || periodSeconds === undefined) {
    throw new Error(`${what} expects <requests>/<s|10s|min> (e.g. 100/min) or off, got ${JSON.stringify(value)}`);
  }
  return { requests: Number(match[1]), periodSeconds };
}
