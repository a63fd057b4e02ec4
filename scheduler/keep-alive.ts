/**
 * Keep-alive policies: how long a function's isolate pool stays warm after it goes idle, and when to
 * warm it again before a predicted arrival. Pure: no timers, time is an argument (ms).
 */

/** An interval [fromMs, untilMs) of absolute time during which the pool should be warm. */
export interface WarmWindow {
  readonly fromMs: number;
  readonly untilMs: number;
}

/** One instance per function; `observe*` feed it, the other methods answer for one idle period. */
export interface KeepAlivePolicy {
  /** An invocation arrived at `now`. An arrival after `observeIdle` ends that idle period. */
  observeArrival(now: number): void;
  /** The function became idle (no invocation in flight) at `now`. */
  observeIdle(now: number): void;
  /**
   * When the pool should be warm during the idle period that began at `idleSince`, ordered, disjoint.
   * Stays the same until the next observation. Empty = unload now and wait for a cold start.
   */
  warmWindows(idleSince: number): readonly WarmWindow[];
  /** Whether a pool should be warm at `now` (keep-alive after use or pre-warm before an arrival). */
  shouldBeWarm(now: number, idleSince: number): boolean;
  /** Predicted ms from `now` until the next arrival, for eviction order; Infinity when unknown. */
  predictedNextArrivalMs(now: number, idleSince: number): number;
}

/** Makes one policy per function. */
export type KeepAlivePolicyFactory = () => KeepAlivePolicy;

const MINUTE_MS = 60_000;

/** Shared plumbing: tracks idle periods and turns `warmWindows` into the point queries. */
abstract class IdleTracker implements KeepAlivePolicy {
  #idleSince: number | null = null;

  observeArrival(now: number): void {
    if (this.#idleSince === null) return;
    this.learn(Math.max(0, now - this.#idleSince));
    this.#idleSince = null;
  }

  observeIdle(now: number): void {
    this.#idleSince = now;
  }

  shouldBeWarm(now: number, idleSince: number): boolean {
    return this.warmWindows(idleSince).some((w) => w.fromMs <= now && now < w.untilMs);
  }

  predictedNextArrivalMs(_now: number, _idleSince: number): number {
    return Number.POSITIVE_INFINITY;
  }

  /** One completed idle time (arrival minus the end of the previous busy period). */
  protected abstract learn(idleMs: number): void;
  abstract warmWindows(idleSince: number): readonly WarmWindow[];
}

class FixedKeepAlive extends IdleTracker {
  readonly #ms: number;
  constructor(ms: number) {
    super();
    this.#ms = ms;
  }
  protected learn(): void {}
  warmWindows(idleSince: number): readonly WarmWindow[] {
    return [{ fromMs: idleSince, untilMs: idleSince + this.#ms }];
  }
}

/**
 * Keep the pool warm for `ms` after every busy period, never pre-warm (AWS 10 min, Azure 20 min and
 * Hearth's `HEARTH_IDLE_MS` of 5 min are policies of this kind).
 */
export function fixedKeepAlive(ms: number): KeepAlivePolicyFactory {
  if (!(ms >= 0)) throw new RangeError(`fixedKeepAlive: ms must be >= 0, got ${ms}`);
  return () => new FixedKeepAlive(ms);
}

/**
 * Idle-time histogram with fixed-width bins over [0, rangeMs); longer idle times are counted apart
 * ("out of bounds"). Keeps the coefficient of variation of the bin counts up to date in O(1).
 */
export class IdleHistogram {
  readonly binMs: number;
  readonly bins: Uint32Array;
  /** Samples inside the range. */
  inRange = 0;
  /** Samples at or beyond the range. */
  outOfRange = 0;
  /** The most recent sample at or beyond the range, NaN before the first. */
  lastOutOfRangeMs = Number.NaN;
  #sumSquares = 0;

  constructor(rangeMs: number, binMs: number) {
    this.binMs = binMs;
    this.bins = new Uint32Array(Math.max(2, Math.round(rangeMs / binMs)));
  }

  get total(): number {
    return this.inRange + this.outOfRange;
  }

  add(idleMs: number): void {
    const bin = Math.floor(idleMs / this.binMs);
    const count = this.bins[bin];
    if (count === undefined) {
      this.outOfRange++;
      this.lastOutOfRangeMs = idleMs;
      return;
    }
    this.bins[bin] = count + 1;
    this.inRange++;
    this.#sumSquares += 2 * count + 1;
  }

  /** Coefficient of variation of the bin counts (sample standard deviation / mean); 0 when empty. */
  binCountCv(): number {
    const n = this.bins.length;
    if (this.inRange === 0) return 0;
    const mean = this.inRange / n;
    const variance = (this.#sumSquares - n * mean * mean) / (n - 1);
    return Math.sqrt(Math.max(0, variance)) / mean;
  }

  /** Index of the first bin at which the cumulative in-range fraction reaches `p` (0..1). */
  percentileBin(p: number): number {
    let cumulative = 0;
    for (let i = 0; i < this.bins.length; i++) {
      cumulative += this.bins[i] ?? 0;
      if (cumulative >= p * this.inRange) return i;
    }
    return this.bins.length - 1;
  }
}

/** Options of {@link hybridHistogram}; defaults as in the paper and dslab's experiments. */
export interface HybridOptions {
  /** Histogram range; idle times beyond it are out of bounds. Default 4 h (the paper). */
  readonly rangeMs: number;
  /** Bin width. Default 1 min. */
  readonly binMs: number;
  /** Below this CV of bin counts the histogram is "not representative". Default 2. */
  readonly cvThreshold: number;
  /** Samples needed before the histogram is trusted. Default 1 (dslab sets no minimum). */
  readonly minSamples: number;
  /** Out-of-range share at or above which the last out-of-range idle time is the forecast. Default 0.5. */
  readonly outOfRangeThreshold: number;
  /** Margin around the histogram percentiles (pre-warm × (1 − m), keep-alive × (1 + m)). Default 0.1. */
  readonly histogramMargin: number;
  /** Window around the out-of-range forecast x: [x × (1 − m), x × (1 + m)]. Default 0.15. */
  readonly forecastMargin: number;
  /** Keep-alive while not representative. Default: the range. */
  readonly fallbackMs: number;
}

/** Defaults of {@link hybridHistogram}. */
export const DEFAULT_HYBRID_OPTIONS: HybridOptions = Object.freeze({
  rangeMs: 240 * MINUTE_MS,
  binMs: MINUTE_MS,
  cvThreshold: 2,
  minSamples: 1,
  outOfRangeThreshold: 0.5,
  histogramMargin: 0.1,
  forecastMargin: 0.15,
  fallbackMs: Number.NaN,
});

const HEAD_PERCENTILE = 0.05;
const TAIL_PERCENTILE = 0.99;

class HybridHistogram extends IdleTracker {
  readonly #o: HybridOptions;
  readonly #h: IdleHistogram;
  /** Window offsets from the start of an idle period, recomputed on each sample. */
  #fromOffsetMs = 0;
  #untilOffsetMs: number;

  constructor(o: HybridOptions) {
    super();
    this.#o = o;
    this.#h = new IdleHistogram(o.rangeMs, o.binMs);
    this.#untilOffsetMs = o.fallbackMs;
  }

  protected learn(idleMs: number): void {
    const o = this.#o;
    const h = this.#h;
    h.add(idleMs);
    if (h.total >= o.minSamples && h.outOfRange / h.total >= o.outOfRangeThreshold) {
      // The paper fits ARIMA to the out-of-range idle times; the last one is the forecast here.
      this.#fromOffsetMs = h.lastOutOfRangeMs * (1 - o.forecastMargin);
      this.#untilOffsetMs = h.lastOutOfRangeMs * (1 + o.forecastMargin);
    } else if (h.total >= o.minSamples && h.binCountCv() >= o.cvThreshold) {
      this.#fromOffsetMs = h.percentileBin(HEAD_PERCENTILE) * o.binMs * (1 - o.histogramMargin);
      this.#untilOffsetMs = (h.percentileBin(TAIL_PERCENTILE) + 1) * o.binMs * (1 + o.histogramMargin);
    } else {
      this.#fromOffsetMs = 0;
      this.#untilOffsetMs = o.fallbackMs;
    }
  }

  warmWindows(idleSince: number): readonly WarmWindow[] {
    return [{ fromMs: idleSince + this.#fromOffsetMs, untilMs: idleSince + this.#untilOffsetMs }];
  }
}

/**
 * The hybrid histogram policy of "Serverless in the Wild" (Shahrad et al., USENIX ATC'20), with the
 * parameters of osukhoroslov/dslab `hybrid_histogram.rs`: pre-warm at the 5th percentile of the
 * idle-time histogram, keep warm until its 99th; keep warm for the whole range while the histogram
 * is not representative; ARIMA replaced by the last out-of-range idle time.
 *
 * @example hybridHistogram({ rangeMs: 2 * 3_600_000 })
 */
export function hybridHistogram(options: Partial<HybridOptions> = {}): KeepAlivePolicyFactory {
  const merged = { ...DEFAULT_HYBRID_OPTIONS, ...options };
  const o: HybridOptions = Object.freeze({
    ...merged,
    fallbackMs: Number.isNaN(merged.fallbackMs) ? merged.rangeMs : merged.fallbackMs,
  });
  return () => new HybridHistogram(o);
}

/** Options of {@link hazardKeepAlive}. */
export interface HazardOptions {
  readonly rangeMs: number;
  readonly binMs: number;
  /** What one cold start is worth in idle pool time: warm a bin when P(arrival in bin) × this ≥ P(still idle) × bin. */
  readonly coldStartCostMs: number;
  /** Cost also scales with the mean idle time: max(coldStartCostMs, this × mean idle). */
  readonly relativeColdStartCost: number;
  /** Samples needed before the histogram decides; before that keep warm for `fallbackMs`. */
  readonly minSamples: number;
  readonly fallbackMs: number;
  /** Always warm for this long after use. */
  readonly minKeepAliveMs: number;
  /** Warm runs are widened by this many bins on each side. */
  readonly marginBins: number;
  /** ... and by this fraction of their start/end. */
  readonly marginFraction: number;
  readonly decay: number;
  readonly union: boolean;
}

export const DEFAULT_HAZARD_OPTIONS: HazardOptions = Object.freeze({
  rangeMs: 240 * MINUTE_MS,
  binMs: MINUTE_MS,
  coldStartCostMs: 30 * MINUTE_MS,
  relativeColdStartCost: 0,
  minSamples: 1,
  fallbackMs: 120 * MINUTE_MS,
  minKeepAliveMs: 0,
  marginBins: 1,
  marginFraction: 0.1,
  decay: 1,
  union: false,
});

class HazardKeepAlive extends IdleTracker {
  readonly #o: HazardOptions;
  readonly #bins: Float64Array;
  #outOfRange = 0;
  #total = 0;
  #samples = 0;
  #idleSumMs = 0;
  /** Window offsets from the start of an idle period. */
  #offsets: WarmWindow[];
  readonly #density: Float64Array;

  constructor(o: HazardOptions) {
    super();
    this.#o = o;
    this.#bins = new Float64Array(Math.round(o.rangeMs / o.binMs));
    this.#density = new Float64Array(this.#bins.length);
    this.#offsets = [{ fromMs: 0, untilMs: o.fallbackMs }];
  }

  protected learn(idleMs: number): void {
    const o = this.#o;
    const bins = this.#bins;
    const n = bins.length;
    if (o.decay < 1) {
      for (let b = 0; b < n; b++) bins[b] = (bins[b] ?? 0) * o.decay;
      this.#outOfRange *= o.decay;
      this.#total *= o.decay;
      this.#idleSumMs *= o.decay;
    }
    const bin = Math.floor(idleMs / o.binMs);
    if (bin < n) bins[bin] = (bins[bin] ?? 0) + 1;
    else this.#outOfRange++;
    this.#total++;
    this.#samples++;
    this.#idleSumMs += Math.min(idleMs, o.rangeMs);
    if (this.#samples < o.minSamples && !o.union) return;
    const runs: WarmWindow[] = [];
    if (this.#samples < o.minSamples) runs.push({ fromMs: 0, untilMs: o.fallbackMs });
    const add = (fromMs: number, untilMs: number) => {
      const last = runs.at(-1);
      if (last && fromMs <= last.untilMs)
        runs[runs.length - 1] = { fromMs: last.fromMs, untilMs: Math.max(last.untilMs, untilMs) };
      else runs.push({ fromMs, untilMs });
    };
    if (o.minKeepAliveMs > 0) add(0, o.minKeepAliveMs);
    const density = this.#density;
    density.fill(0);
    // Adaptive box kernel: each occupied bin spreads over ± the distance to its nearest occupied
    // neighbour, at least marginBins, at most marginFraction of its idle time.
    let prev = -1;
    for (let b = 0; b < n; b++) {
      const count = bins[b] ?? 0;
      if (count < 1e-6) continue;
      let next = b + 1;
      while (next < n && (bins[next] ?? 0) < 1e-6) next++;
      const nearest = Math.min(prev < 0 ? Infinity : b - prev, next < n ? next - b : Infinity);
      const cap = Math.max(o.marginBins, Math.ceil(o.marginFraction * (b + 0.5)));
      const w = Math.max(o.marginBins, Math.min(nearest, cap));
      const lo = Math.max(0, b - w);
      const hi = Math.min(n - 1, b + w);
      const share = count / (hi - lo + 1);
      for (let j = lo; j <= hi; j++) density[j] = (density[j] ?? 0) + share;
      prev = b;
    }
    let survivors = this.#total;
    const cost = Math.max(o.coldStartCostMs, (o.relativeColdStartCost * this.#idleSumMs) / this.#total);
    const threshold = o.binMs / cost;
    for (let b = 0; b < n && survivors > 1e-9; b++) {
      const d = density[b] ?? 0;
      if (d > 0 && d >= threshold * survivors) add(b * o.binMs, (b + 1) * o.binMs);
      survivors -= d;
    }
    this.#offsets = runs;
  }

  warmWindows(idleSince: number): readonly WarmWindow[] {
    return this.#offsets.map((w) => ({ fromMs: idleSince + w.fromMs, untilMs: idleSince + w.untilMs }));
  }
}

export function hazardKeepAlive(options: Partial<HazardOptions> = {}): KeepAlivePolicyFactory {
  const o = Object.freeze({ ...DEFAULT_HAZARD_OPTIONS, ...options });
  return () => new HazardKeepAlive(o);
}
