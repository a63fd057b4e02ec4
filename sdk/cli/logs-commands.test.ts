import { describe, expect, it } from "vitest";
import { formatLogEntry } from "./logs-commands.ts";

describe("hearth logs' line format", () => {
  const entry = {
    time: "2026-11-23T08:00:00.000Z",
    fn: "api",
    version: "0123456789abcdef",
    versionId: 3,
    invocationId: "NUIDPREFIX00000012345678",
    level: "info" as const,
    kind: "console" as const,
  };

  it("prints time, version, level, invocation and the message, continuation lines indented", () => {
    const line = formatLogEntry({ ...entry, message: "first\nsecond" });
    const head = "2026-11-23T08:00:00.000Z [v3] INFO  12345678 ";
    expect(line).toBe(`${head}first\n${" ".repeat(head.length)}second`);
  });

  it("drops the control characters of a function's message, so it cannot drive the terminal", () => {
    const line = formatLogEntry({ ...entry, message: "\u001b]0;owned\u0007\u001b[2Jred\ttab\u009b" });
    expect(line).toBe("2026-11-23T08:00:00.000Z [v3] INFO  12345678 ]0;owned[2Jred\ttab");
  });
});
