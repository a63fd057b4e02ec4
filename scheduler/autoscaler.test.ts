import { describe, expect, it } from "vitest";
import { seededRandom } from "../test/support/seeded-random.ts";
import {
  DEFAULT_SCALE_SPEC,
  decideScale,
  initialScaleState,
  type ScaleSpec,
  type ScaleState,
  scaleSpecOf,
} from "./autoscaler.ts";

const TICK_MS = 250;
const MINUTE_MS = 60_000;

interface Step {
  readonly t: number;
  readonly concurrency: number;
  readonly desired: number;
  readonly panic: boolean;
  readonly reason: string;
}

/**
 * Runs the decision every 250 ms of virtual time. Isolates start in ~1.5 ms, far below a tick, so
 * `ready` at each tick is the previous decision.
 */
function simulate(
  spec: ScaleSpec,
  load: (t: number) => number,
  durationMs: number,
  start: { state?: ScaleState; ready?: number } = {},
): Step[] {
  let state = start.state ?? initialScaleState(0, { ready: start.ready ?? 0 });
  let ready = start.ready ?? 0;
  const steps: Step[] = [];
  for (let t = TICK_MS; t <= durationMs; t += TICK_MS) {
    const concurrency = load(t);
    const decision = decideScale(spec, { concurrency, ready }, state, t);
    steps.push({ t, concurrency, desired: decision.desired, panic: decision.panic, reason: decision.reason });
    state = decision.state;
    ready = decision.desired;
  }
  return steps;
}

const changesIn = (steps: readonly Step[]): number =>
  steps.reduce((n, s, i) => n + (i > 0 && s.desired !== steps[i - 1]?.desired ? 1 : 0), 0);

describe("scaleSpecOf", () => {
  it("fills every default and freezes the result", () => {
    const spec = scaleSpecOf({ targetConcurrency: 1 });
    expect(spec).toEqual({ ...DEFAULT_SCALE_SPEC, targetConcurrency: 1 });
    expect(Object.isFrozen(spec)).toBe(true);
    expect(Object.isFrozen(DEFAULT_SCALE_SPEC)).toBe(true);
  });

  it("names the bad field in a RangeError", () => {
    expect(() => scaleSpecOf({ targetConcurrency: 0 })).toThrow(/targetConcurrency must be > 0, got 0/);
    expect(() => scaleSpecOf({ minInstances: 1.5 })).toThrow(RangeError);
    expect(() => scaleSpecOf({ panicThreshold: 1 })).toThrow(/panicThreshold/);
    expect(() => scaleSpecOf({ idleGraceMs: Number.NaN })).toThrow(/idleGraceMs/);
    expect(() => scaleSpecOf({ minInstances: 5, maxInstances: 2 })).toThrow(/maxInstances/);
    expect(() => scaleSpecOf({ panicWindowMs: 20_000 })).toThrow(/panicWindowMs/);
    expect(() => scaleSpecOf({ targetConcurency: 3 } as Partial<ScaleSpec>)).toThrow(/no field targetConcurency/);
  });
});

describe("decideScale (virtual time, one tick every 250 ms)", () => {
  const spec = DEFAULT_SCALE_SPEC;

  it("keeps capacity constant for five minutes of steady load at 70 % of target", () => {
    const jitter = noise(1);
    const load = () => 0.7 * 32 * 5 * (1 + 0.1 * jitter()); // 112 ± 10 %
    const steps = simulate(spec, load, 5 * MINUTE_MS);
    expect(steps[0]?.desired).toBe(4);
    expect(changesIn(steps)).toBe(0);
    // Starting from zero is a panic (4 wanted, 0 ready); it must be over one stable window later.
    expect(steps.some((s) => s.panic && s.t > spec.stableWindowMs + TICK_MS)).toBe(false);
  });

  it("answers a burst from idle to 200 in flight with ceil(200 / 32) = 7 within one tick, never above 1.5x", () => {
    const steps = simulate(spec, (t) => (t >= 10_000 ? 200 : 0), 2 * MINUTE_MS);
    const first = steps.find((s) => s.t === 10_000);
    expect(first?.desired).toBe(7);
    expect(first?.reason).toMatch(/^scale from zero: 200 in flight/);
    expect(Math.max(...steps.map((s) => s.desired))).toBeLessThanOrEqual(7 * 1.5);
    expect(steps.at(-1)?.desired).toBe(7);
  });

  it("follows a slow ramp without overshooting 1.5x the need", () => {
    const load = (t: number) => Math.min(t, 120_000) * (320 / 120_000); // 0 → 320 over 2 min, then flat
    const steps = simulate(spec, load, 3 * MINUTE_MS);
    for (const s of steps) {
      const need = Math.max(1, Math.ceil(s.concurrency / 32));
      const lagged = Math.ceil(load(Math.max(0, s.t - spec.stableWindowMs)) / 32);
      expect(s.desired).toBeLessThanOrEqual(Math.ceil(need * 1.5));
      expect(s.desired).toBeGreaterThanOrEqual(lagged);
    }
    expect(steps.at(-1)?.desired).toBe(10);
  });

  it("never goes down and back up within the scale-down delay under a 50/200 sawtooth", () => {
    const steps = simulate(spec, (t) => (Math.floor(t / 5_000) % 2 === 0 ? 200 : 50), 5 * MINUTE_MS);
    steps.forEach((down, i) => {
      if (i === 0 || down.desired >= (steps[i - 1]?.desired ?? 0)) return;
      const rebound = steps.find(
        (s) => s.t > down.t && s.t <= down.t + spec.scaleDownDelayMs && s.desired > down.desired,
      );
      expect(rebound, `went down at ${down.t} ms and up at ${rebound?.t} ms`).toBeUndefined();
    });
    expect(changesIn(steps.filter((s) => s.t > MINUTE_MS))).toBe(0);
  });

  it("does not flap capacity when load flaps around an instance boundary", () => {
    const jitter = noise(7);
    const steps = simulate(spec, () => 96 + 40 * jitter(), 10 * MINUTE_MS); // 3 × 32 ± 40
    for (let m = 1; m < 10; m++) {
      const minute = steps.filter((s) => s.t > m * MINUTE_MS && s.t <= (m + 1) * MINUTE_MS);
      expect(changesIn(minute), `minute ${m}`).toBeLessThanOrEqual(1);
    }
  });

  it("scales to zero only after idleGraceMs without concurrency, keeping one warm until then", () => {
    const steps = simulate(spec, (t) => (t <= 20_000 ? 100 : 0), 7 * MINUTE_MS);
    const lastBusy = 20_000;
    for (const s of steps.filter((x) => x.t > lastBusy && x.t < lastBusy + spec.idleGraceMs)) {
      expect(s.desired).toBeGreaterThanOrEqual(1);
    }
    const zero = steps.find((s) => s.desired === 0);
    expect(zero?.t).toBe(lastBusy + spec.idleGraceMs);
    expect(zero?.reason).toBe("idle 300 s: scale to zero");
  });

  it("honours the keep-alive policy's grace, however short", () => {
    const short = scaleSpecOf({ idleGraceMs: 2_000 });
    const steps = simulate(short, (t) => (t <= 20_000 ? 100 : 0), MINUTE_MS);
    expect(steps.find((s) => s.desired === 0)?.t).toBe(22_000);
  });

  it("keeps minInstances when idle and stops at maxInstances under any burst", () => {
    const bounded = scaleSpecOf({ minInstances: 2, maxInstances: 5 });
    const idle = simulate(bounded, () => 0, 10 * MINUTE_MS);
    expect(idle.every((s) => s.desired === 2)).toBe(true);
    const burst = simulate(bounded, () => 10_000, MINUTE_MS);
    expect(burst.every((s) => s.desired === 5)).toBe(true);
  });

  it("does not scale down within the first stable window when a new leader starts in panic", () => {
    const state = initialScaleState(0, { startInPanic: true, ready: 12 });
    const steps = simulate(spec, () => 0, MINUTE_MS, { state, ready: 12 });
    const window = steps.filter((s) => s.t <= spec.stableWindowMs);
    expect(window.every((s) => s.desired === 12 && s.panic)).toBe(true);
    expect(steps.at(-1)?.desired).toBeLessThan(12);
  });

  it("limits scale-down to halving per decision and scale-up to max(10x, +10)", () => {
    const noDelay = scaleSpecOf({ scaleDownDelayMs: 0 });
    const calm = decideScale(noDelay, { concurrency: 0, ready: 40 }, initialScaleState(0, { ready: 40 }), 250);
    expect(calm.desired).toBe(20);
    const busy = decideScale(noDelay, { concurrency: 32_000, ready: 1 }, initialScaleState(0, { ready: 1 }), 250);
    expect(busy.desired).toBe(11);
    expect(busy.panic).toBe(true);
    expect(busy.reason).toBe("panic: 32000 in flight over 1 s, 1 ready");
  });

  it("sheds an isolate only when the rest would run at 90 % of target or less", () => {
    const noDelay = scaleSpecOf({ scaleDownDelayMs: 0 });
    const at = (concurrency: number) =>
      decideScale(noDelay, { concurrency, ready: 4 }, initialScaleState(0, { ready: 4 }), 250).desired;
    expect(at(90)).toBe(4); // 30 per isolate on 3 = 94 % of 32
    expect(at(86)).toBe(3); // 28.7 per isolate on 3 = 90 %
  });

  it("keeps its state bounded by the largest window", () => {
    const jitter = noise(3);
    let state = initialScaleState(0);
    let ready = 0;
    for (let t = TICK_MS; t <= 10 * MINUTE_MS; t += TICK_MS) {
      const decision = decideScale(spec, { concurrency: 100 + 50 * jitter(), ready }, state, t);
      state = decision.state;
      ready = decision.desired;
    }
    expect(state.samples.length).toBe(spec.stableWindowMs / TICK_MS);
    expect(state.recentDesired.length).toBe(spec.scaleDownDelayMs / TICK_MS);
  });
});

/** Deterministic noise in [-1, 1). */
function noise(seed: number): () => number {
  const random = seededRandom(seed);
  return () => random() * 2 - 1;
}
