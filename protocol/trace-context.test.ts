import { describe, expect, it } from "vitest";
import {
  continueTrace,
  formatTraceparent,
  IdSource,
  parseTraceparent,
  type TraceContext,
  traceIdOfHeaders,
  traceIdOfRequestJson,
  traceOfHeaders,
  withTraceHeaders,
} from "./trace-context.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;

describe("parseTraceparent", () => {
  it("reads a valid version 00 header", () => {
    expect(parseTraceparent(VALID)).toEqual({ version: "00", traceId: TRACE_ID, parentId: PARENT_ID, flags: "01" });
  });

  it.each([
    ["absent", undefined],
    ["empty", ""],
    ["version ff", `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${PARENT_ID}-01`],
    ["an all-zero parent id", `00-${TRACE_ID}-${"0".repeat(16)}-01`],
    ["uppercase hex in the trace id", `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`],
    ["uppercase hex in the flags", `00-${TRACE_ID}-${PARENT_ID}-0A`],
    ["a short trace id", `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`],
    ["version 00 longer than 55 characters", `${VALID}-extra`],
    ["a trailing space", `${VALID} `],
    ["a non-hex character", `00-${TRACE_ID.slice(0, 31)}g-${PARENT_ID}-01`],
    ["missing flags", `00-${TRACE_ID}-${PARENT_ID}`],
  ])("refuses %s", (_what, value) => {
    expect(parseTraceparent(value)).toBeNull();
  });

  it("reads a higher version's first four fields and ignores what follows a dash", () => {
    expect(parseTraceparent(`01-${TRACE_ID}-${PARENT_ID}-01-whatever`)?.traceId).toBe(TRACE_ID);
    expect(parseTraceparent(`01-${TRACE_ID}-${PARENT_ID}-01x`)).toBeNull();
  });
});

describe("continueTrace", () => {
  it("keeps the trace id and the flags and makes a new parent id", () => {
    const trace = continueTrace(VALID);
    expect(trace.continued).toBe(true);
    expect(trace.traceId).toBe(TRACE_ID);
    const parsed = parseTraceparent(trace.traceparent);
    expect(parsed?.traceId).toBe(TRACE_ID);
    expect(parsed?.flags).toBe("01");
    expect(parsed?.parentId).toMatch(HEX16);
    expect(parsed?.parentId).not.toBe(PARENT_ID);
    expect(trace.traceparent).toHaveLength(55);
  });

  it("answers a higher version with version 00", () => {
    expect(continueTrace(`cc-${TRACE_ID}-${PARENT_ID}-00-more`).traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-`));
  });

  it.each([
    ["absent", undefined],
    ["invalid", "not a traceparent"],
    ["version ff", `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ["all-zero ids", `00-${"0".repeat(32)}-${"0".repeat(16)}-01`],
  ])("starts a new trace when the header is %s", (_what, value) => {
    const trace = continueTrace(value);
    expect(trace.continued).toBe(false);
    expect(trace.traceId).toMatch(HEX32);
    expect(trace.traceId).not.toBe(TRACE_ID);
    expect(parseTraceparent(trace.traceparent)).toMatchObject({ traceId: trace.traceId, flags: "00" });
  });

  it("never sends an all-zero id, even when the random bytes are zeros", () => {
    let fills = 0;
    // The first 4 KiB are zeros (every id drawn from them is refused), the next are 0xab.
    const ids = new IdSource((pool) => pool.fill(fills++ === 0 ? 0 : 0xab));
    const trace = continueTrace(undefined, ids);
    expect(trace.traceparent).toBe(formatTraceparent("ab".repeat(16), "ab".repeat(8), "00"));
    expect(fills).toBe(2);
  });

  it("makes different ids each time", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => continueTrace(undefined).traceId));
    expect(ids.size).toBe(1000);
  });
});

describe("headers", () => {
  it("passes tracestate through unchanged when the trace is continued", () => {
    const headers: Array<[string, string]> = [
      ["host", "a"],
      ["traceparent", VALID],
      ["tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
    ];
    const trace = traceOfHeaders(headers) as TraceContext;
    const out = withTraceHeaders(headers, trace);
    expect(out).toContainEqual(["tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]);
    expect(out.filter(([name]) => name === "traceparent")).toEqual([["traceparent", trace.traceparent]]);
    expect(traceIdOfHeaders(out)).toBe(TRACE_ID);
  });

  it("drops tracestate when a new trace starts (no valid traceparent came with it)", () => {
    const headers: Array<[string, string]> = [
      ["traceparent", "00-garbage"],
      ["tracestate", "rojo=1"],
    ];
    const trace = traceOfHeaders(headers) as TraceContext;
    expect(trace.continued).toBe(false);
    const out = withTraceHeaders(headers, trace);
    expect(out).toEqual([["traceparent", trace.traceparent]]);
  });

  it("leaves a request without traceparent untraced", () => {
    expect(traceOfHeaders([["host", "a"]])).toBeNull();
  });

  it("starts a new trace when two traceparent headers came", () => {
    const other = `00-${"1".repeat(32)}-${PARENT_ID}-01`;
    const trace = traceOfHeaders([
      ["traceparent", VALID],
      ["traceparent", other],
    ]) as TraceContext;
    expect(trace.continued).toBe(false);
    expect([TRACE_ID, "1".repeat(32)]).not.toContain(trace.traceId);
  });

  it("finds the trace id in a request head's JSON, and not in a header value that imitates one", () => {
    const head = { method: "GET", url: "http://x/", headers: [["traceparent", VALID]] };
    expect(traceIdOfRequestJson(JSON.stringify(head))).toBe(TRACE_ID);
    const forged = { method: "GET", url: "http://x/", headers: [["x-note", `["traceparent","${VALID}"]`]] };
    expect(traceIdOfRequestJson(JSON.stringify(forged))).toBeUndefined();
    expect(traceIdOfRequestJson('{"event":"queue","queue":"q","messages":[]}')).toBeUndefined();
  });
});
