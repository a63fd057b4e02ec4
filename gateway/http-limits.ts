import { HearthError, intFromEnv } from "../protocol/index.ts";

/**
 * Bounds on the gateway's HTTP server: how long a client may take to send a request, how long an
 * idle keep-alive connection is kept, and how many connections are open at once. 0 turns a bound
 * off (node:http's meaning). Reasons for each default are in docs/security.md, "The HTTP edge".
 */
export interface HttpLimits {
  /** Whole header section received within this (node:http `headersTimeout`), else 408 and close. */
  readonly headersTimeoutMs: number;
  /** Whole request, headers and body, received within this (`requestTimeout`), else 408 and close. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (`keepAliveTimeout`). */
  readonly keepAliveTimeoutMs: number;
  /** Connections open at once (`server.maxConnections`); past it new connections are closed at once. */
  readonly maxConnections: number;
}

/**
 * 20 s for headers: at most 16 KB (node's maxHeaderSize) even on a 2G link, a third of node's 60 s.
 * 60 s for a whole request: a 6 MB invocation body at 1 Mbit/s takes 50 s; node's 300 s let one slow
 * client hold a connection and up to a body's worth of memory for 5 minutes.
 * 65 s keep-alive: longer than the 60 s idle timeout of common load balancers (AWS ALB), so the
 * balancer, not the gateway, closes idle connections and never sends on one being closed.
 * 10,000 connections: 7–14 KB of RSS each when idle (measured, docs/security.md, "The HTTP edge"), so at most ~140 MB,
 * and under the file descriptor limit node raises itself to at start (the hard limit).
 */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 10_000,
});

/** The environment variable behind each limit. */
export const HTTP_LIMIT_ENV: Readonly<Record<keyof HttpLimits, string>> = Object.freeze({
  headersTimeoutMs: "HEARTH_HTTP_HEADERS_TIMEOUT_MS",
  requestTimeoutMs: "HEARTH_HTTP_REQUEST_TIMEOUT_MS",
  keepAliveTimeoutMs: "HEARTH_HTTP_KEEPALIVE_TIMEOUT_MS",
  maxConnections: "HEARTH_HTTP_MAX_CONNECTIONS",
});

/**
 * Fills defaults, checks and freezes. Throws ERR_BAD_REQUEST naming the bad field.
 *
 * @example parseHttpLimits({ requestTimeoutMs: 120_000 })
 */
export function parseHttpLimits(input: Partial<HttpLimits> = {}): HttpLimits {
  const limits = { ...DEFAULT_HTTP_LIMITS };
  for (const key of Object.keys(input) as (keyof HttpLimits)[]) {
    if (!Object.hasOwn(DEFAULT_HTTP_LIMITS, key)) throw bad(`unknown HTTP limit ${JSON.stringify(key)}`);
    const value = input[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) throw bad(`${key} must be a non-negative integer, got ${value}`);
    limits[key] = value;
  }
  // node:http refuses this combination; say which settings clash instead of its ERR_OUT_OF_RANGE.
  if (limits.requestTimeoutMs > 0 && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw bad(
      `headersTimeoutMs (${limits.headersTimeoutMs}) must not be over requestTimeoutMs (${limits.requestTimeoutMs})`,
    );
  }
  return Object.freeze(limits);
}

/** Reads the HEARTH_HTTP_* variables (see HTTP_LIMIT_ENV); unset ones keep their default. */
export function httpLimitsFromEnv(env: NodeJS.ProcessEnv): HttpLimits {
  const input: { -readonly [K in keyof HttpLimits]?: number } = {};
  for (const key of Object.keys(HTTP_LIMIT_ENV) as (keyof HttpLimits)[]) {
    input[key] = intFromEnv(env, HTTP_LIMIT_ENV[key], DEFAULT_HTTP_LIMITS[key]);
  }
  try {
    return parseHttpLimits(input);
  } catch (err) {
    const message = (err as Error).message.replace(
      /\b(headersTimeoutMs|requestTimeoutMs)\b/g,
      (key) => HTTP_LIMIT_ENV[key as keyof HttpLimits],
    );
    throw bad(message);
  }
}

/**
 * node:http checks header and request timeouts on an interval (30 s by default), so a bound is
 * enforced up to that late. A quarter of the shortest bound, at most 1 s, keeps the overshoot small;
 * the check walks only connections with a request in progress.
 */
export function timeoutCheckIntervalMs(limits: HttpLimits): number {
  const bounds = [limits.headersTimeoutMs, limits.requestTimeoutMs].filter((ms) => ms > 0);
  return bounds.length === 0 ? 1_000 : Math.max(10, Math.min(1_000, Math.floor(Math.min(...bounds) / 4)));
}

/**
 * The functions domain as a host suffix: `fn.example` → `.fn.example`. Lowercased; a leading `*.`
 * or `.` and a trailing `.` are dropped. Throws ERR_BAD_REQUEST unless it is a DNS name.
 */
export function parseFunctionsDomain(domain: string): string {
  const name = domain
    .trim()
    .toLowerCase()
    .replace(/^\*?\./, "")
    .replace(/\.$/, "");
  if (
    name.length > 253 ||
    !/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)
  ) {
    throw bad(`The functions domain must be a DNS name like fn.example.com, got ${JSON.stringify(domain)}`);
  }
  return `.${name}`;
}

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}
