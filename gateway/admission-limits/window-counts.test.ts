import { describe, expect, it } from "vitest";
import { WindowCounts } from "./window-counts.ts";

interface Scenario {
  readonly gateways: number;
  readonly limit: number;
  readonly periodMs: number;
  /** Requests per second arriving at each gateway (its share of `weights`). */
  readonly ratePerSecond: number;
  readonly weights?: readonly number[];
  readonly syncMs: number;
  readonly transitMs: number;
  readonly durationMs: number;
  readonly startMs?: number;
  /** Added to each gateway's clock. */
  readonly skewMs?: readonly number[];
  readonly roundMs?: number;
  /** What each gateway believes the cluster's size to be (default: the truth). */
  readonly knownGateways?: number;
}

/**
 * Virtual time, 1 ms steps: arrivals spread evenly per gateway, each gateway publishes what changed
 * every `syncMs`, and the others apply it `transitMs` later. Returns the admissions per window.
 */
function simulate(s: Scenario): Map<number, number> {
  const start = s.startMs ?? 1_000_000;
  const weights = s.weights ?? Array.from({ length: s.gateways }, () => 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const counts = Array.from({ length: s.gateways }, () => new WindowCounts({ roundMs: s.roundMs ?? 2 * s.syncMs }));
  const debt = Array.from({ length: s.gateways }, () => 0);
  const inTransit: { at: number; to: number; from: string; key: string; window: number; count: number }[] = [];
  const admitted = new Map<number, number>();
  for (let t = start; t < start + s.durationMs; t++) {
    for (const message of inTransit.filter((m) => m.at === t)) {
      counts[message.to]?.observe(message.from, message.key, message.window, message.count, t);
    }
    for (let g = 0; g < s.gateways; g++) {
      const clock = t + (s.skewMs?.[g] ?? 0);
      const counter = counts[g] as WindowCounts;
      debt[g] = (debt[g] as number) + (s.ratePerSecond * s.gateways * (weights[g] as number)) / total / 1000;
      while ((debt[g] as number) >= 1) {
        debt[g] = (debt[g] as number) - 1;
        if (counter.check("k", s.limit, s.periodMs, clock, s.knownGateways ?? s.gateways) === null) {
          counter.commit("k");
          const window = Math.floor(t / s.periodMs);
          admitted.set(window, (admitted.get(window) ?? 0) + 1);
        }
      }
      if ((t - start) % s.syncMs === 0) {
        for (const [key, window, count] of counter.drainChanges()) {
          for (let to = 0; to < s.gateways; to++) {
            if (to !== g) inTransit.push({ at: t + s.transitMs, to, from: `g${g}`, key, window, count });
          }
        }
      }
    }
  }
  return admitted;
}

/** Admissions of the complete windows of a run. */
function fullWindows(s: Scenario): number[] {
  const admitted = simulate(s);
  const start = s.startMs ?? 1_000_000;
  const first = Math.ceil(start / s.periodMs);
  const last = Math.floor((start + s.durationMs) / s.periodMs) - 1;
  const out: number[] = [];
  for (let w = first; w <= last; w++) out.push(admitted.get(w) ?? 0);
  return out;
}

describe("window counts across gateways (virtual time)", () => {
  it("two gateways at 10× the limit admit the limit within 2 %, each window", () => {
    // 1,000 req/s per gateway against 1,000 per 10 s: 20× the limit; counts heard 50 ms + 5 ms late.
    const windows = fullWindows({
      gateways: 2,
      limit: 1_000,
      periodMs: 10_000,
      ratePerSecond: 1_000,
      syncMs: 50,
      transitMs: 5,
      durationMs: 30_000,
      startMs: 1_000_000,
    });
    expect(windows).toHaveLength(3);
    for (const n of windows) expect(Math.abs(n - 1_000)).toBeLessThanOrEqual(20);
  });

  it("a small limit against a fast burst on three gateways stays within 10 %", () => {
    const windows = fullWindows({
      gateways: 3,
      limit: 100,
      periodMs: 1_000,
      ratePerSecond: 3_000,
      syncMs: 50,
      transitMs: 20,
      durationMs: 5_000,
    });
    for (const n of windows) expect(Math.abs(n - 100)).toBeLessThanOrEqual(10);
  });

  it("one busy gateway beside an idle one gets the whole limit", () => {
    const windows = fullWindows({
      gateways: 2,
      limit: 500,
      periodMs: 1_000,
      ratePerSecond: 1_000,
      weights: [1, 0],
      syncMs: 50,
      transitMs: 5,
      durationMs: 4_000,
    });
    for (const n of windows) expect(n).toBe(500);
  });

  it("uneven traffic (9:1) still fills the window to within 2 %", () => {
    const windows = fullWindows({
      gateways: 2,
      limit: 1_000,
      periodMs: 10_000,
      ratePerSecond: 500,
      weights: [9, 1],
      syncMs: 50,
      transitMs: 5,
      durationMs: 30_000,
    });
    for (const n of windows) expect(Math.abs(n - 1_000)).toBeLessThanOrEqual(20);
  });

  it("a first burst on gateways that do not know of each other overshoots by rate × delay", () => {
    // The rule without shares, for comparison: each admits until it hears the others are over.
    const [first, second] = fullWindows({
      gateways: 2,
      limit: 100,
      periodMs: 1_000,
      ratePerSecond: 2_000,
      syncMs: 50,
      transitMs: 5,
      durationMs: 2_000,
      knownGateways: 1,
    });
    // Each admitted ~2,000/s × (50 + 5) ms before hearing the other: ~100 % over.
    expect(first).toBeGreaterThan(180);
    expect(second).toBe(100);
  });

  it("50 ms of clock skew moves the windows' edges, not the count", () => {
    const windows = fullWindows({
      gateways: 2,
      limit: 1_000,
      periodMs: 10_000,
      ratePerSecond: 1_000,
      syncMs: 50,
      transitMs: 5,
      durationMs: 30_000,
      skewMs: [0, 50],
    });
    // Counted by the true clock, a window gets its limit ± what the skewed gateway admitted early.
    for (const n of windows) expect(Math.abs(n - 1_000)).toBeLessThanOrEqual(60);
  });

  it("refuses a full window until its end, then admits again", () => {
    const counts = new WindowCounts();
    const t0 = 60_000 * 100 + 15_000; // 15 s into a minute
    for (let i = 0; i < 3; i++) {
      expect(counts.check("k", 3, 60_000, t0 + i)).toBeNull();
      counts.commit("k");
    }
    expect(counts.check("k", 3, 60_000, t0 + 10)).toEqual({ full: true, retryAfterMs: 45_000 - 10 });
    expect(counts.check("k", 3, 60_000, t0 + 45_000)).toBeNull();
  });

  it("counts other gateways as last heard, ignoring older and stale windows", () => {
    const counts = new WindowCounts();
    const t = 10_000 * 7 + 1;
    counts.observe("b", "k", 7, 4, t);
    counts.observe("b", "k", 7, 2, t); // reordered, older
    expect(counts.check("k", 5, 10_000, t)).toBeNull();
    counts.commit("k");
    expect(counts.check("k", 5, 10_000, t + 1)).toMatchObject({ full: true });
    // b is ahead (its clock): its next window does not hide what it admitted in ours.
    counts.observe("b", "k", 8, 1, t + 2);
    expect(counts.check("k", 5, 10_000, t + 3)).toMatchObject({ full: true });
    expect(counts.drainChanges()).toEqual([["k", 7, 1]]);
    expect(counts.drainChanges()).toEqual([]);
  });

  it("takes no more than an even split of the window while another gateway's counts are late", () => {
    const counts = new WindowCounts();
    const t = 1_000 * 50;
    let admitted = 0;
    // Two gateways known, the other's counts late: 100 requests over 10 rounds, limit 40.
    for (let i = 0; i < 100; i++) {
      if (counts.check("k", 40, 1_000, t + i * 10, 2, false) === null) {
        counts.commit("k");
        admitted++;
      }
    }
    expect(admitted).toBe(20);
    // Its counts arrive (it admitted 5): the rest of the window is shared again from what remains.
    counts.observe("b", "k", 50, 5, t + 1_000 - 1);
    expect(counts.check("k", 40, 1_000, t + 1_000 - 1, 2, true)).toBeNull();
  });

  it("forgets keys unused for two periods", () => {
    const counts = new WindowCounts();
    counts.check("k", 1, 1_000, 0);
    counts.observe("b", "other", 1, 1, 0);
    counts.sweep(119_999);
    expect(counts.size).toBe(2);
    counts.sweep(120_001);
    expect(counts.size).toBe(0);
  });
});
