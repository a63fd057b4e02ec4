import { HearthError, LOG_RETENTION, type LogEntry, type LogLevel } from "../protocol/index.ts";

/** What `GET /v1/functions/<fn>/logs` was asked for, from its query string. */
export interface LogQuery {
  readonly follow: boolean;
  /** At most this many of the retained lines (after filtering); then, with follow, the live ones. */
  readonly tail: number;
  /** Milliseconds between heartbeat lines while following. */
  readonly heartbeatMs: number;
  readonly match: (entry: LogEntry) => boolean;
}

/** A client that hears nothing for 3 heartbeats (15 s) warns; `hearth logs` gives up after 6. */
export const DEFAULT_HEARTBEAT_MS = 5_000;
/** With follow, the history shown before the live lines (`tail` overrides it); without, all of it. */
export const DEFAULT_FOLLOW_TAIL = 100;
const HEARTBEAT_BOUNDS = [100, 60_000] as const;
const SEVERITY: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Parses `follow`, `tail`, `heartbeat` (ms), and the filters: `status=error|ok` (errors, or console
 * lines), `search` (a substring of the message), `version` (its number, `v<number>`, or the version
 * hash or a prefix of it of 6+ characters), `level` (that severity and above). Drop markers pass the
 * status, search and level filters: a reader is told that lines are missing whatever it filters on.
 */
export function parseLogQuery(query: URLSearchParams): LogQuery {
  const follow = flag(query, "follow");
  const tail =
    intParam(query, "tail", 0, LOG_RETENTION.linesPerFunction) ??
    (follow ? DEFAULT_FOLLOW_TAIL : LOG_RETENTION.linesPerFunction);
  const heartbeatMs = intParam(query, "heartbeat", ...HEARTBEAT_BOUNDS) ?? DEFAULT_HEARTBEAT_MS;
  const checks: Array<(entry: LogEntry) => boolean> = [];
  const status = query.get("status");
  if (status !== null) {
    if (status !== "error" && status !== "ok")
      throw new HearthError("ERR_BAD_REQUEST", `status must be "error" or "ok", got ${JSON.stringify(status)}`);
    const kind = status === "error" ? "error" : "console";
    checks.push((e) => e.kind === kind || e.kind === "dropped");
  }
  const search = query.get("search");
  if (search !== null && search !== "") checks.push((e) => e.kind === "dropped" || e.message.includes(search));
  const version = query.get("version");
  if (version !== null) checks.push(versionMatcher(version));
  const level = query.get("level");
  if (level !== null) {
    if (!Object.hasOwn(SEVERITY, level))
      throw new HearthError(
        "ERR_BAD_REQUEST",
        `level must be debug, info, warn or error, got ${JSON.stringify(level)}`,
      );
    const min = SEVERITY[level as LogLevel];
    checks.push((e) => e.kind === "dropped" || SEVERITY[e.level] >= min);
  }
  return { follow, tail, heartbeatMs, match: (entry) => checks.every((check) => check(entry)) };
}

function versionMatcher(version: string): (entry: LogEntry) => boolean {
  const number = /^v?(\d+)$/.exec(version);
  if (number) {
    const id = Number(number[1]);
    // A bare number is a version id; a hash made of digits only still matches as a hash.
    return (e) => e.versionId === id || e.version === version;
  }
  if (!/^[A-Za-z0-9_-]{6,}$/.test(version)) {
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `version must be a version number (3, v3) or a version hash (6 characters at least), got ${JSON.stringify(version)}`,
    );
  }
  return (e) => e.version.startsWith(version);
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === "0" || value === "false") return false;
  if (value === "" || value === "1" || value === "true") return true;
  throw new HearthError("ERR_BAD_REQUEST", `${name} must be 1 or 0, got ${JSON.stringify(value)}`);
}

function intParam(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const n = Number(value);
  if (value === "" || !Number.isInteger(n) || n < min || n > max)
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  return n;
}
