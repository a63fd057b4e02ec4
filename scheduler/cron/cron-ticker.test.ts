import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseCron } from "./cron-expression.ts";
import { type CronPublish, CronTicker, type CronTickerOptions } from "./cron-ticker.ts";

interface Sent {
  readonly subject: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly msgID: string;
}

const START = Date.parse("2025-01-01T00:00:00.500Z");
const EVERY_SECOND = "* * * * * *";
const withSeconds = (expression: string) => parseCron(expression, { allowSeconds: true });

/** A publisher that records what it is given and answers like a stream with a dedupe window. */
function fakeStream(fail: (attempt: number, msgID: string) => boolean = () => false) {
  const sent: Sent[] = [];
  const stored = new Set<string>();
  const attempts = new Map<string, number>();
  const publish: CronPublish = async (subject, headers, msgID) => {
    const attempt = (attempts.get(msgID) ?? 0) + 1;
    attempts.set(msgID, attempt);
    if (fail(attempt, msgID)) throw new Error("no responders");
    sent.push({ subject, headers, msgID });
    const duplicate = stored.has(msgID);
    stored.add(msgID);
    return { duplicate };
  };
  return { publish, sent, stored, attempts };
}

function newTicker(options: Partial<CronTickerOptions> & Pick<CronTickerOptions, "publish">): CronTicker {
  return new CronTicker({ parse: withSeconds, now: () => Date.now(), ...options });
}

describe("CronTicker", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: START });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("publishes every tick once, with the trigger subject, headers and message id", async () => {
    const stream = fakeStream();
    await using ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: EVERY_SECOND }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(stream.sent).toEqual(
      ["00:00:01", "00:00:02", "00:00:03"].map((time) => ({
        subject: "hearth.trigger.t1",
        headers: { "hearth-trigger": "t1", "hearth-scheduled-time": `2025-01-01T${time}.000Z` },
        msgID: `cron:t1:2025-01-01T${time}.000Z`,
      })),
    );
    expect(ticker.stats()).toEqual({ published: 3, duplicates: 0, failed: 0, skipped: 0 });
  });

  it("never publishes ticks from before its start", async () => {
    const stream = fakeStream();
    // Every minute: 00:00:00 passed 500 ms before the start, so the first tick is 00:01:00.
    await using ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: "* * * * *" }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(59_000);
    expect(stream.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(stream.sent.map((s) => s.msgID)).toEqual(["cron:t1:2025-01-01T00:01:00.000Z"]);
  });

  it("ticks by its own clock, so a skewed clock publishes early or late", async () => {
    const stream = fakeStream();
    await using ahead = newTicker({
      publish: stream.publish,
      now: () => Date.now() + 5_000,
      triggers: [{ id: "t1", expression: EVERY_SECOND }],
    });
    ahead.start();
    await vi.advanceTimersByTimeAsync(600);
    // Its clock reads 00:00:06.1: ticks from its start (00:00:05.5) on, so 00:00:06 only.
    expect(stream.sent.map((s) => s.headers["hearth-scheduled-time"])).toEqual(["2025-01-01T00:00:06.000Z"]);
  });

  it("counts a tick another publisher stored first as a duplicate", async () => {
    const stream = fakeStream();
    await using a = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: EVERY_SECOND }] });
    await using b = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: EVERY_SECOND }] });
    a.start();
    b.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(stream.stored.size).toBe(2);
    const total = (s: ReturnType<CronTicker["stats"]>) => s.published + s.duplicates;
    expect(total(a.stats()) + total(b.stats())).toBe(4);
    expect(a.stats().published + b.stats().published).toBe(2);
  });

  it("retries a failed publish until it is stored", async () => {
    const stream = fakeStream((attempt) => attempt <= 3);
    await using ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: "* * * * *" }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(60_000 + 5_000);
    expect(stream.attempts.get("cron:t1:2025-01-01T00:01:00.000Z")).toBe(4);
    expect(stream.sent.map((s) => s.msgID)).toEqual(["cron:t1:2025-01-01T00:01:00.000Z"]);
    expect(ticker.stats()).toMatchObject({ published: 1, failed: 0 });
  });

  it("gives a tick up once it is older than half the dedupe window", async () => {
    const attemptedAt: number[] = [];
    const stream = fakeStream(() => attemptedAt.push(Date.now()) > 0);
    await using ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: "0 * * * *" }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(60 * 60_000 + 2 * 60_000); // the 01:00 tick, and 2 minutes
    const tickMs = Date.parse("2025-01-01T01:00:00Z");
    expect(attemptedAt.length).toBeGreaterThan(5);
    expect(Math.max(...attemptedAt) - tickMs).toBeLessThan(60_000);
    expect(ticker.stats()).toMatchObject({ published: 0, failed: 1 });
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(attemptedAt.filter((t) => t >= tickMs + 60_000 && t < tickMs + 60 * 60_000)).toEqual([]);
  });

  it("still publishes a tick the timer fired late for by less than a period", async () => {
    const stream = fakeStream();
    await using ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: "* * * * *" }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(59_000);
    // A blocked event loop: the wall clock moves on 30 s, the 00:01:00 timer has not fired yet.
    vi.setSystemTime(Date.now() + 30_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(stream.sent.map((s) => s.msgID)).toEqual(["cron:t1:2025-01-01T00:01:00.000Z"]);
    expect(ticker.stats().skipped).toBe(0);
  });

  it("publishes only the latest tick after a delay longer than a period, without a burst", async () => {
    const stream = fakeStream();
    await using ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: EVERY_SECOND }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(500); // 00:00:01
    // The wall clock moves on 4.2 s while the 1 s timer waits: it fires at 00:00:06.2.
    vi.setSystemTime(Date.now() + 4_200);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(stream.sent.map((s) => s.headers["hearth-scheduled-time"])).toEqual([
      "2025-01-01T00:00:01.000Z",
      "2025-01-01T00:00:06.000Z",
    ]);
    expect(ticker.stats().skipped).toBe(1);
  });

  it("keeps one timer for all its triggers, and follows triggers added and removed at runtime", async () => {
    const stream = fakeStream();
    await using ticker = newTicker({ publish: stream.publish });
    ticker.start();
    expect(vi.getTimerCount()).toBe(0);
    ticker.setTriggers([
      { id: "even", expression: "*/2 * * * * *" },
      { id: "third", expression: "*/3 * * * * *" },
    ]);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000); // until 00:00:03.5
    ticker.setTriggers([
      { id: "third", expression: "*/3 * * * * *" },
      { id: "every", expression: EVERY_SECOND },
    ]);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000); // until 00:00:05.5
    expect(stream.sent.map((s) => s.msgID.replace(/2025-01-01T00:00:|\.000Z/g, ""))).toEqual([
      "cron:even:02",
      "cron:third:03",
      "cron:every:04",
      "cron:every:05",
    ]);
  });

  it("logs and skips a trigger whose expression does not parse", async () => {
    const stream = fakeStream();
    await using ticker = new CronTicker({
      publish: stream.publish,
      triggers: [
        { id: "bad", expression: "* * * * * *" }, // seconds: refused by the default parser
        { id: "good", expression: "* * * * *" },
      ],
    });
    ticker.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(stream.sent.map((s) => s.msgID)).toEqual(["cron:good:2025-01-01T00:01:00.000Z"]);
  });

  it("stops ticking and retrying on close", async () => {
    const stream = fakeStream((attempt) => attempt === 1);
    const ticker = newTicker({ publish: stream.publish, triggers: [{ id: "t1", expression: EVERY_SECOND }] });
    ticker.start();
    await vi.advanceTimersByTimeAsync(500); // first attempt of 00:00:01 failed, a retry is pending
    await ticker.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(stream.sent).toEqual([]);
    await ticker.close(); // idempotent
  });
});
