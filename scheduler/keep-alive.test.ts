import { describe, expect, it } from "vitest";
import {
  fixedKeepAlive,
  hazardHistogram,
  hybridHistogram,
  type KeepAlivePolicy,
  type KeepAlivePolicyFactory,
} from "./keep-alive.ts";

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Feeds invocations of `durationMs` starting at `arrivals` (ascending, not overlapping); returns when the last ended. */
function run(policy: KeepAlivePolicy, arrivals: readonly number[], durationMs = 100): number {
  for (const t of arrivals) {
    policy.observeArrival(t);
    policy.observeIdle(t + durationMs);
  }
  return (arrivals.at(-1) ?? 0) + durationMs;
}

/** Arrivals every `periodMs` from 0, each nudged by a deterministic jitter of up to ±`jitterMs`. */
function periodic(count: number, periodMs: number, jitterMs = 0): number[] {
  return Array.from({ length: count }, (_, i) => i * periodMs + (((i * 7919) % 11) / 5 - 1) * jitterMs);
}

describe("fixedKeepAlive", () => {
  it("keeps the pool warm for exactly the keep-alive after each busy period, never before", () => {
    const policy = fixedKeepAlive(10 * MINUTE)();
    const idleSince = run(policy, [0, 30 * MINUTE]);
    expect(policy.shouldBeWarm(idleSince, idleSince)).toBe(true);
    expect(policy.shouldBeWarm(idleSince + 10 * MINUTE - 1, idleSince)).toBe(true);
    expect(policy.shouldBeWarm(idleSince + 10 * MINUTE, idleSince)).toBe(false);
    expect(policy.warmWindows(idleSince)).toEqual([{ fromMs: idleSince, untilMs: idleSince + 10 * MINUTE }]);
    expect(policy.predictedNextArrivalMs(idleSince + MINUTE, idleSince)).toBe(Number.POSITIVE_INFINITY);
  });

  it("rejects a negative keep-alive with the value in the message", () => {
    expect(() => fixedKeepAlive(-1)).toThrow(/ms must be a number >= 0, got -1/);
  });
});

describe.each<[string, KeepAlivePolicyFactory]>([
  ["hazardHistogram (Hearth default)", hazardHistogram()],
  ["hybridHistogram", hybridHistogram({ rangeMs: 2 * HOUR })],
])("%s", (_name, newPolicy) => {
  it("learns a function invoked every 10 minutes: unloads after use, warm just before the next call", () => {
    const policy = newPolicy();
    const idleSince = run(policy, periodic(12, 10 * MINUTE, 30 * SECOND));
    const warmAt = (afterMs: number) => policy.shouldBeWarm(idleSince + afterMs, idleSince);
    expect(warmAt(30 * SECOND)).toBe(false);
    expect(warmAt(5 * MINUTE)).toBe(false);
    expect(warmAt(9.5 * MINUTE)).toBe(true);
    expect(warmAt(10 * MINUTE)).toBe(true);
    expect(warmAt(10.5 * MINUTE)).toBe(true);
    expect(warmAt(30 * MINUTE)).toBe(false);
    const warmMs = policy.warmWindows(idleSince).reduce((sum, w) => sum + w.untilMs - w.fromMs, 0);
    expect(warmMs).toBeLessThanOrEqual(5 * MINUTE);
  });

  it("keeps a pool warm after its first call, before anything is learnt", () => {
    const policy = newPolicy();
    const idleSince = run(policy, [0]);
    expect(policy.shouldBeWarm(idleSince + 10 * MINUTE, idleSince)).toBe(true);
  });

  it("learns from idle periods only, not from calls that overlap a busy period", () => {
    const policy = newPolicy();
    for (const t of periodic(12, 10 * MINUTE)) {
      policy.observeArrival(t);
      policy.observeArrival(t + 5); // concurrent: no idle time in between
      policy.observeIdle(t + 100);
    }
    const idleSince = 11 * 10 * MINUTE + 100;
    expect(policy.shouldBeWarm(idleSince + 5 * MINUTE, idleSince)).toBe(false);
    expect(policy.shouldBeWarm(idleSince + 10 * MINUTE, idleSince)).toBe(true);
  });

  it("predicts a frequently invoked function's next call sooner than a rare one's", () => {
    const frequent = newPolicy();
    const rare = newPolicy();
    const frequentIdle = run(frequent, periodic(30, 2 * MINUTE));
    const rareIdle = run(rare, periodic(6, 60 * MINUTE));
    const now = Math.max(frequentIdle, rareIdle) + 30 * SECOND;
    const soon = frequent.predictedNextArrivalMs(now, now - 30 * SECOND);
    const late = rare.predictedNextArrivalMs(now, now - 30 * SECOND);
    expect(soon).toBeGreaterThan(0);
    expect(soon).toBeLessThan(3 * MINUTE);
    expect(late).toBeGreaterThan(55 * MINUTE);
    expect(late).toBeLessThan(65 * MINUTE);
    // As the idle period goes on, the predicted arrival comes closer.
    expect(rare.predictedNextArrivalMs(now + 30 * MINUTE, now - 30 * SECOND)).toBeLessThan(late - 25 * MINUTE);
  });
});

describe("hybridHistogram", () => {
  it("keeps warm for the whole range while the histogram is not representative (CV < 2)", () => {
    const policy = hybridHistogram({ rangeMs: 2 * HOUR })();
    // One idle time in each of 40 bins: the bin counts vary little, so the histogram says nothing.
    let t = 0;
    for (let i = 0; i < 40; i++) {
      policy.observeArrival(t);
      policy.observeIdle(t + 100);
      t += 100 + (i * 3 + 1.5) * MINUTE;
    }
    expect(policy.warmWindows(0)).toEqual([{ fromMs: 0, untilMs: 2 * HOUR }]);
  });

  it("pre-warms around the last idle time when most fall beyond the range", () => {
    const policy = hybridHistogram({ rangeMs: 2 * HOUR })();
    const idleSince = run(policy, [0, 3 * HOUR, 6 * HOUR]);
    expect(policy.shouldBeWarm(idleSince + HOUR, idleSince)).toBe(false);
    expect(policy.shouldBeWarm(idleSince + 3 * HOUR, idleSince)).toBe(true);
    expect(policy.warmWindows(idleSince)[0]?.fromMs).toBeCloseTo(idleSince + 0.85 * (3 * HOUR - 100));
  });
});

describe("hazardHistogram", () => {
  it("keeps a bursty function warm between calls a few seconds apart", () => {
    const policy = hazardHistogram()();
    const arrivals = Array.from({ length: 60 }, (_, i) => i * 20 * SECOND);
    const idleSince = run(policy, arrivals);
    expect(policy.shouldBeWarm(idleSince + 20 * SECOND, idleSince)).toBe(true);
    expect(policy.shouldBeWarm(idleSince + 10 * MINUTE, idleSince)).toBe(false);
  });

  it("bridges scattered idle times of a rarely invoked function with one wide window", () => {
    const policy = hazardHistogram()();
    const idleSince = run(policy, [0, 12 * MINUTE, 45 * MINUTE, 70 * MINUTE, 110 * MINUTE]);
    const windows = policy.warmWindows(idleSince);
    expect(windows).toHaveLength(1);
    expect(policy.shouldBeWarm(idleSince + 20 * MINUTE, idleSince)).toBe(true);
    expect(policy.shouldBeWarm(idleSince + 35 * MINUTE, idleSince)).toBe(true);
  });

  it("uses the fallback keep-alive until minSamples idle times are learnt", () => {
    const policy = hazardHistogram({ minSamples: 3, fallbackMs: 30 * MINUTE })();
    let idleSince = run(policy, periodic(3, 10 * MINUTE));
    expect(policy.warmWindows(idleSince)).toEqual([{ fromMs: idleSince, untilMs: idleSince + 30 * MINUTE }]);
    idleSince = run(policy, [30 * MINUTE]);
    expect(policy.shouldBeWarm(idleSince + 5 * MINUTE, idleSince)).toBe(false);
  });

  it("warms more of the idle period as a cold start is declared more costly", () => {
    const arrivals = [0, 3, 17, 24, 41, 52, 80, 95].map((m) => m * MINUTE);
    const warmMs = (coldStartCostMs: number) => {
      const policy = hazardHistogram({ coldStartCostMs, relativeColdStartCost: 0 })();
      const idleSince = run(policy, arrivals);
      return policy.warmWindows(idleSince).reduce((sum, w) => sum + w.untilMs - w.fromMs, 0);
    };
    expect(warmMs(SECOND)).toBe(0);
    expect(warmMs(5 * MINUTE)).toBeGreaterThan(0);
    expect(warmMs(5 * MINUTE)).toBeLessThan(warmMs(30 * MINUTE));
    expect(warmMs(30 * MINUTE)).toBeLessThan(warmMs(60 * MINUTE));
  });

  it("rejects an invalid option, naming it", () => {
    expect(() => hazardHistogram({ coldStartCostMs: Number.NaN })).toThrow(/option coldStartCostMs/);
    expect(() => hazardHistogram({ binMs: 0 })).toThrow(/binMs/);
    expect(() => hybridHistogram({ rangeMsec: 1 } as never)).toThrow(/unknown option rangeMsec/);
  });
});
