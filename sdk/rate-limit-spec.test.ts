import { describe, expect, it } from "vitest";
import { parseRateLimit } from "./rate-limit-spec.ts";

describe("--rate-limit", () => {
  it.each([
    ["100/min", { requests: 100, periodSeconds: 60 }],
    ["5/s", { requests: 5, periodSeconds: 1 }],
    ["50/10s", { requests: 50, periodSeconds: 10 }],
    ["off", null],
  ])("reads %s", (flag, expected) => {
    expect(parseRateLimit(flag)).toEqual(expected);
  });

  it.each(["100", "100/hour", "/min", "-1/min", "1.5/s", "ten/min"])("refuses %s with the expected form", (flag) => {
    expect(() => parseRateLimit(flag)).toThrow(/--rate-limit expects <requests>\/<s\|10s\|min>/);
  });
});
