import type { JsMsg } from "@nats-io/jetstream";
import { describe, expect, it, vi } from "vitest";
import { retryDelayMs } from "../../protocol/index.ts";
import { Batcher } from "./batcher.ts";

/** Just what the batcher touches: an id to see, and working() to count. */
function message(id: number): JsMsg & { workingCalls: number } {
  const msg = { id, workingCalls: 0, working() {} } as unknown as JsMsg & { workingCalls: number };
  msg.working = () => {
    msg.workingCalls++;
  };
  return msg;
}

describe("Batcher", () => {
  it("sends a full batch at once, and the rest after the wait", async () => {
    vi.useFakeTimers();
    try {
      const batches: number[][] = [];
      const batcher = new Batcher(3, 1_000, 30_000, async (batch) => {
        batches.push(batch.map((m) => (m as unknown as { id: number }).id));
      });
      const done = [1, 2, 3, 4].map((id) => batcher.add(message(id)));
      expect(batches).toEqual([[1, 2, 3]]);
      await vi.advanceTimersByTimeAsync(999);
      expect(batches).toEqual([[1, 2, 3]]);
      await vi.advanceTimersByTimeAsync(1);
      expect(batches).toEqual([[1, 2, 3], [4]]);
      await Promise.all(done);
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps waiting messages alive with in-progress acks when the wait outlasts a third of the ack window", async () => {
    vi.useFakeTimers();
    try {
      const batcher = new Batcher(10, 60_000, 30_000, async () => {});
      const msg = message(1);
      const done = batcher.add(msg);
      await vi.advanceTimersByTimeAsync(30_000);
      expect(msg.workingCalls).toBe(3); // every 10 s
      await vi.advanceTimersByTimeAsync(30_000);
      await done;
      const after = msg.workingCalls;
      await vi.advanceTimersByTimeAsync(30_000);
      expect(msg.workingCalls).toBe(after); // stopped once sent
    } finally {
      vi.useRealTimers();
    }
  });

  it("settles every message of a batch with the batch's outcome", async () => {
    const batcher = new Batcher(2, 0, 30_000, async () => {
      throw new Error("queue() failed");
    });
    const results = await Promise.allSettled([batcher.add(message(1)), batcher.add(message(2))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  });
});

describe("retryDelayMs", () => {
  it("is full jitter under an exponential ceiling, capped", () => {
    expect(retryDelayMs(1, 100, 10_000, () => 0.999)).toBe(99);
    expect(retryDelayMs(2, 100, 10_000, () => 0.999)).toBe(199);
    expect(retryDelayMs(4, 100, 10_000, () => 0.5)).toBe(400);
    expect(retryDelayMs(20, 100, 10_000, () => 0.999)).toBe(9_990);
    expect(retryDelayMs(3, 100, 10_000, () => 0)).toBe(0);
  });
});
