import { describe, expect, it } from "vitest";
import type { LogEntry } from "../protocol/index.ts";
import { parseLogQuery } from "./log-filter.ts";

const entry = (over: Partial<LogEntry>): LogEntry => ({
  time: new Date(0).toISOString(),
  fn: "f",
  version: "9f86d081884c7d65",
  versionId: 3,
  invocationId: "i",
  level: "info",
  message: "hello world",
  kind: "console",
  ...over,
});
const query = (q: string) => parseLogQuery(new URLSearchParams(q));

describe("logs query", () => {
  it("defaults: all retained lines, or the last 100 then live ones with follow", () => {
    expect(query("")).toMatchObject({ follow: false, tail: 1000, heartbeatMs: 5000 });
    expect(query("follow=1")).toMatchObject({ follow: true, tail: 100 });
    expect(query("follow=1&tail=5&heartbeat=100")).toMatchObject({ tail: 5, heartbeatMs: 100 });
  });

  it("filters on status, search, version and level; drop markers pass all but version", () => {
    const error = entry({ kind: "error", level: "error", message: "boom" });
    const dropped = entry({ kind: "dropped", level: "warn", message: "5 lines dropped" });
    const debug = entry({ level: "debug" });
    expect([entry({}), error, dropped].filter(query("status=error").match)).toEqual([error, dropped]);
    expect([entry({}), error, dropped].filter(query("status=ok").match)).toEqual([entry({}), dropped]);
    expect([entry({}), error, dropped].filter(query("search=boo").match)).toEqual([error, dropped]);
    expect([debug, entry({}), error].filter(query("level=info").match)).toEqual([entry({}), error]);
    for (const v of ["3", "v3", "9f86d0", "9f86d081884c7d65"])
      expect(query(`version=${v}`).match(entry({}))).toBe(true);
    for (const v of ["4", "9f86d1"]) expect(query(`version=${v}`).match(entry({}))).toBe(false);
    expect(query("version=4").match(dropped)).toBe(false);
  });

  it("refuses bad values, naming the parameter", () => {
    for (const [q, field] of [
      ["status=bad", /status/],
      ["level=loud", /level/],
      ["tail=-1", /tail/],
      ["tail=1001", /tail/],
      ["tail=x", /tail/],
      ["follow=yes", /follow/],
      ["heartbeat=10", /heartbeat/],
      ["version=ab", /version/],
    ] as const) {
      expect(() => query(q), q).toThrow(field);
    }
  });
});
