import { describe, expect, it } from "vitest";
import { decodeLogEntry, encodeLogEntry, LOG_RETENTION, type LogEntry } from "../../protocol/index.ts";
import { LogPublisher } from "./log-publisher.ts";

const line = (message: string, fn = "f"): Omit<LogEntry, "time"> => ({
  fn,
  version: "abc123",
  versionId: 3,
  invocationId: "inv-1",
  level: "info",
  message,
  kind: "console",
});

function publisher(rate = { linesPerSecond: 10, burst: 5 }) {
  let now = 1_000_000;
  const sent: Array<{ subject: string; entry: LogEntry | null }> = [];
  const logs = new LogPublisher({
    rate,
    now: () => now,
    publish: (subject, data) => sent.push({ subject, entry: decodeLogEntry(data) }),
  });
  return { logs, sent, advance: (ms: number) => (now += ms) };
}

describe("log entries on the wire", () => {
  it("round-trip as JSON, and anything else decodes to null", () => {
    const entry: LogEntry = { time: new Date(0).toISOString(), ...line("hello") };
    expect(decodeLogEntry(encodeLogEntry(entry))).toEqual(entry);
    for (const bad of [
      "nope",
      "null",
      "{}",
      JSON.stringify({ ...entry, kind: "other" }),
      JSON.stringify({ ...entry, level: 3 }),
    ])
      expect(decodeLogEntry(new TextEncoder().encode(bad))).toBeNull();
  });

  it("a long message is cut to fit the entry cap, with a visible marker saying how much went", () => {
    const message = `${"é".repeat(3000)}"\n`; // 2-byte characters and JSON escapes
    const data = encodeLogEntry({ time: new Date(0).toISOString(), ...line(message) });
    expect(data.byteLength).toBeLessThanOrEqual(LOG_RETENTION.entryBytes);
    const entry = decodeLogEntry(data);
    const marker = /…\[truncated (\d+) bytes\]$/.exec(entry?.message ?? "");
    expect(marker).not.toBeNull();
    const kept = (entry?.message ?? "").slice(0, marker?.index);
    expect(message.startsWith(kept)).toBe(true);
    expect(Number(marker?.[1])).toBe(
      new TextEncoder().encode(message).byteLength - new TextEncoder().encode(kept).byteLength,
    );
  });
});

describe("the executor's log rate cap", () => {
  it("publishes a burst, then counts what is over the rate and reports it as one dropped entry", () => {
    const { logs, sent, advance } = publisher();
    for (let i = 0; i < 12; i++) logs.write(line(`l${i}`));
    expect(sent.map((s) => s.entry?.message)).toEqual(["l0", "l1", "l2", "l3", "l4"]);
    expect(sent[0]?.subject).toBe("hearth.logs.f");
    advance(1_000);
    logs.flushDropped();
    const marker = sent.at(-1)?.entry;
    expect(marker).toMatchObject({ kind: "dropped", level: "warn", fn: "f", version: "abc123", versionId: 3 });
    expect(marker?.message).toMatch(/^7 lines dropped \(rate limit/);
    // Refilled: lines flow again, and nothing more is reported as dropped.
    logs.write(line("after"));
    logs.flushDropped();
    expect(sent.map((s) => s.entry?.message).slice(-2)).toEqual([marker?.message, "after"]);
    logs.close();
  });

  it("caps each function on its own", () => {
    const { logs, sent } = publisher({ linesPerSecond: 1, burst: 2 });
    for (let i = 0; i < 5; i++) logs.write(line("a", "noisy"));
    logs.write(line("b", "quiet"));
    expect(sent.filter((s) => s.entry?.fn === "quiet")).toHaveLength(1);
    logs.close();
    expect(sent.filter((s) => s.entry?.kind === "dropped").map((s) => s.entry?.fn)).toEqual(["noisy"]);
  });
});
