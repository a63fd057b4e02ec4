import { describe, expect, it } from "vitest";
import { parseCron } from "./cron-expression.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The next `count` occurrences after `fromIso`. */
function nextRuns(expression: string, fromIso: string, count: number): string[] {
  const schedule = parseCron(expression);
  const runs: string[] = [];
  let t = at(fromIso);
  for (let i = 0; i < count; i++) {
    const next = schedule.next(t);
    if (next === null) break;
    runs.push(new Date(next).toISOString());
    t = next;
  }
  return runs;
}

function errorOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error("expected it to throw");
}

describe("parseCron", () => {
  it("finds the next occurrences in UTC, strictly after the given time", () => {
    expect(nextRuns("*/15 * * * *", "2025-01-01T00:15:00.000Z", 3)).toEqual([
      "2025-01-01T00:30:00.000Z",
      "2025-01-01T00:45:00.000Z",
      "2025-01-01T01:00:00.000Z",
    ]);
    const schedule = parseCron("*/15 * * * *");
    expect(iso(schedule.next(at("2025-01-01T00:14:59.999Z")))).toBe("2025-01-01T00:15:00.000Z");
    expect(iso(schedule.next(at("2025-01-01T00:15:00.001Z")))).toBe("2025-01-01T00:30:00.000Z");
  });

  it("reads hours in UTC whatever the process's time zone", () => {
    expect(nextRuns("30 9 * * *", "2025-06-01T12:00:00Z", 2)).toEqual([
      "2025-06-02T09:30:00.000Z",
      "2025-06-03T09:30:00.000Z",
    ]);
  });

  it("finds the latest occurrence at or before a time", () => {
    const schedule = parseCron("0 * * * *");
    expect(iso(schedule.latest(at("2025-01-01T10:00:00.000Z")))).toBe("2025-01-01T10:00:00.000Z");
    expect(iso(schedule.latest(at("2025-01-01T10:59:59.999Z")))).toBe("2025-01-01T10:00:00.000Z");
    expect(iso(schedule.latest(at("2025-01-01T09:59:59.999Z")))).toBe("2025-01-01T09:00:00.000Z");
  });

  it("accepts day and month names in any case", () => {
    // 2025-01-03 is a Friday.
    expect(nextRuns("0 9 * * MON-FRI", "2025-01-03T09:00:00Z", 2)).toEqual([
      "2025-01-06T09:00:00.000Z",
      "2025-01-07T09:00:00.000Z",
    ]);
    expect(nextRuns("0 0 1 jan,Jul *", "2025-02-01T00:00:00Z", 2)).toEqual([
      "2025-07-01T00:00:00.000Z",
      "2026-01-01T00:00:00.000Z",
    ]);
    expect(nextRuns("0 0 * * sun", "2025-01-01T00:00:00Z", 1)).toEqual(["2025-01-05T00:00:00.000Z"]);
  });

  it("accepts steps, ranges with steps and lists", () => {
    expect(nextRuns("10-50/20 */6 * * *", "2025-01-01T00:00:00Z", 4)).toEqual([
      "2025-01-01T00:10:00.000Z",
      "2025-01-01T00:30:00.000Z",
      "2025-01-01T00:50:00.000Z",
      "2025-01-01T06:10:00.000Z",
    ]);
    expect(nextRuns("0 0 1,15 * *", "2025-01-01T00:00:00Z", 2)).toEqual([
      "2025-01-15T00:00:00.000Z",
      "2025-02-01T00:00:00.000Z",
    ]);
  });

  it("counts 7 as Sunday, and matches either day field when both are restricted, as Vixie cron", () => {
    expect(nextRuns("0 0 * * 7", "2025-01-01T00:00:00Z", 1)).toEqual(["2025-01-05T00:00:00.000Z"]);
    // The 1st of the month OR a Monday.
    expect(nextRuns("0 0 1 * MON", "2025-01-01T00:00:00Z", 2)).toEqual([
      "2025-01-06T00:00:00.000Z",
      "2025-01-13T00:00:00.000Z",
    ]);
  });

  it("finds leap days four years apart", () => {
    expect(nextRuns("0 0 29 2 *", "2025-01-01T00:00:00Z", 2)).toEqual([
      "2028-02-29T00:00:00.000Z",
      "2032-02-29T00:00:00.000Z",
    ]);
  });

  it("trims and tolerates several spaces or tabs between fields", () => {
    expect(parseCron("  0  0\t* * *  ").expression).toBe("0  0\t* * *");
    expect(nextRuns("0  0\t* * *", "2025-01-01T00:00:00Z", 1)).toEqual(["2025-01-02T00:00:00.000Z"]);
  });

  it.each([
    ["", /expected 5 fields .* got 0/],
    ["* * * *", /expected 5 fields .* got 4/],
    ["* * * * * *", /got 6\. Seconds are not supported/],
    ["0 0 0 1 1 * 2030", /got 7\. Seconds and years are not supported/],
    ["@daily", /Nicknames .* "0 0 \* \* \*"/],
    ["60 * * * *", /minute 60 is out of range 0–59/],
    ["0 24 * * *", /hour 24 is out of range 0–23/],
    ["0 0 0 * *", /day of month 0 is out of range 1–31/],
    ["0 0 * 13 *", /month 13 is out of range 1–12/],
    ["0 0 * * 8", /day of week 8 is out of range 0–7/],
    ["0 0 * * MONDAY", /Invalid cron expression "0 0 \* \* MONDAY"/],
    ["a * * * *", /illegal characters/],
    ["*/0 * * * *", /illegal stepping/],
    ["30-10 * * * *", /larger than/],
    ["0 0 30 2 *", /never matches/],
  ])("refuses %j with a clear ERR_BAD_REQUEST", (expression, message) => {
    const err = errorOf(() => parseCron(expression));
    expect(err.code).toBe("ERR_BAD_REQUEST");
    expect(err.message).toMatch(message);
  });

  it("accepts a seconds field only when a test asks for it", () => {
    expect(errorOf(() => parseCron("*/2 * * * * *")).code).toBe("ERR_BAD_REQUEST");
    const schedule = parseCron("*/2 * * * * *", { allowSeconds: true });
    expect(iso(schedule.next(at("2025-01-01T00:00:01.500Z")))).toBe("2025-01-01T00:00:02.000Z");
    expect(iso(schedule.next(at("2025-01-01T00:00:02.000Z")))).toBe("2025-01-01T00:00:04.000Z");
    expect(errorOf(() => parseCron("60 * * * * *", { allowSeconds: true })).message).toMatch(/second 60 is out/);
    // Five fields still mean minutes.
    expect(iso(parseCron("* * * * *", { allowSeconds: true }).next(at("2025-01-01T00:00:01Z")))).toBe(
      "2025-01-01T00:01:00.000Z",
    );
  });
});
