/**
 * Cron expressions for `hearth triggers add <fn> --cron "<expression>"`: the five fields of
 * crontab(5) (minute hour day-of-month month day-of-week), always in UTC. Parsing and the search for
 * occurrences are croner's (https://croner.56k.guru): no dependencies, names (MON, JAN), ranges,
 * steps, lists, and the `L`, `W`, `#` extensions. Day-of-month and day-of-week combine with OR when
 * both are restricted, as in Vixie cron.
 */
import { Cron } from "croner";
import { HearthError } from "../../protocol/errors.ts";

/** A validated cron expression. Times are ms since the epoch; every occurrence falls on a whole second. */
export interface CronSchedule {
  /** The expression as given, trimmed. */
  readonly expression: string;
  /** The first occurrence strictly after `afterMs`; null when there is none before the year 10000. */
  next(afterMs: number): number | null;
  /** The last occurrence at or before `atMs`; null when there is none. */
  latest(atMs: number): number | null;
}

export interface ParseCronOptions {
  /**
   * Also accept six fields, the first being seconds (`* * * * * *` ticks every second). For tests
   * only: the public validation (the default, false) refuses them, since a tick per second would
   * flood the trigger stream.
   */
  readonly allowSeconds?: boolean;
}

/** Field names and ranges of crontab(5), for error messages croner words less plainly. */
const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  // 7 is Sunday too, as in Vixie cron.
  { name: "day of week", min: 0, max: 7 },
] as const;
const SECOND_FIELD = { name: "second", min: 0, max: 59 } as const;

/** A number that is a value (not a step after `/`, nor an nth after `#`). */
const VALUE_NUMBER = /(^|[^/#\d])(\d+)/g;

const EXAMPLE = 'for example "*/15 * * * *" (every 15 minutes) or "0 9 * * MON-FRI" (09:00 UTC on weekdays)';

/**
 * Validates a cron expression and returns its schedule in UTC; throws a HearthError
 * `ERR_BAD_REQUEST` that names the bad field otherwise.
 *
 * @example
 * const schedule = parseCron("0 9 * * MON-FRI");
 * schedule.next(Date.parse("2025-01-03T09:00:00Z")); // Date.parse("2025-01-06T09:00:00Z"), a Monday
 */
export function parseCron(expression: string, options: ParseCronOptions = {}): CronSchedule {
  const trimmed = expression.trim();
  const fields = trimmed.split(/\s+/).filter(Boolean);
  const withSeconds = options.allowSeconds === true && fields.length === 6;
  if (fields.length !== 5 && !withSeconds) throw badFieldCount(trimmed, fields.length);
  const specs = withSeconds ? [SECOND_FIELD, ...FIELDS] : FIELDS;
  fields.forEach((field, i) => {
    const spec = specs[i];
    if (spec) checkValues(trimmed, field, spec);
  });
  let cron: Cron;
  try {
    // utcOffset 0 rather than timezone "UTC": the same instants, about 10× faster (no Intl).
    cron = new Cron(fields.join(" "), { utcOffset: 0, mode: withSeconds ? "6-part" : "5-part" });
  } catch (err) {
    const reason = String((err as Error).message).replace(/^CronPattern:\s*/, "");
    throw new HearthError("ERR_BAD_REQUEST", `Invalid cron expression "${trimmed}": ${reason}. Use ${EXAMPLE}.`, {
      cause: err,
    });
  }
  // Without a year field, an expression that matches once matches again within 28 years (the
  // calendar repeats), so one search from any time tells whether it can ever match.
  if (cron.nextRun(new Date(0)) === null) {
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `Invalid cron expression "${trimmed}": it never matches a date (such as the 30th of February).`,
    );
  }
  return {
    expression: trimmed,
    next: (afterMs) => cron.nextRun(new Date(afterMs))?.getTime() ?? null,
    // previousRuns is strictly before its reference; every occurrence is a whole second, so +1 ms
    // makes it "at or before".
    latest: (atMs) => cron.previousRuns(1, new Date(atMs + 1))[0]?.getTime() ?? null,
  };
}

function badFieldCount(expression: string, count: number): HearthError {
  const hint = expression.startsWith("@")
    ? ' Nicknames such as "@daily" are not accepted: write "0 0 * * *".'
    : count === 6
      ? " Seconds are not supported: the first field is the minute."
      : count === 7
        ? " Seconds and years are not supported."
        : "";
  return new HearthError(
    "ERR_BAD_REQUEST",
    `Invalid cron expression "${expression}": expected 5 fields (minute hour day-of-month month day-of-week), ` +
      `got ${count}.${hint} Use ${EXAMPLE}.`,
  );
}

function checkValues(expression: string, field: string, spec: { name: string; min: number; max: number }): void {
  for (const match of field.matchAll(VALUE_NUMBER)) {
    const value = Number(match[2]);
    if (value < spec.min || value > spec.max) {
      throw new HearthError(
        "ERR_BAD_REQUEST",
        `Invalid cron expression "${expression}": ${spec.name} ${value} is out of range ${spec.min}–${spec.max}.`,
      );
    }
  }
}
