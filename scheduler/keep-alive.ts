/**
 * Keep-alive policies: how long a function's isolate pool stays warm after it goes idle, and when to
 * warm it again before a predicted arrival. Pure: no timers; time (ms) is always an argument.
 *
 * Figures in the comments were measured on the Azure Functions 2019 sample (250 functions × 8 h):
 * means of `node bench/keepalive-replay.ts --seeds=1,2,3,4,5`.
 */

/** An interval [fromMs, untilMs) of absolute time during which the pool should be warm. */
export interface WarmWindow {
  readonly fromMs: number;
  readonly untilMs: number;
}

/**
 * A keep-alive policy for one function. `observe*` feed it; the queries answer for the idle period
 * that began at `idleSince` and stay the same until the next observation.
 *
 * @example
 * const policy = hazardHistogram()();
 * policy.observeArrival(0);
 * policy.observeIdle(120);
 * policy.shouldBeWarm(60_000, 120); // unload the pool when false
 */
export interface KeepAlivePolicy {
  /** An invocation arrived at `now`. The first arrival after `observeIdle` ends that idle period. */
  observeArrival(now: number): void;
  /** The function became idle (no invocation in flight) at `now`. */
  observeIdle(now: number): void;
  /** When the pool should be warm in the idle period since `idleSince`: ordered, disjoint; empty = unload. */
  warmWindows(idleSince: number): readonly WarmWindow[];
  /** Whether a pool should be warm at `now`: keep-alive after use or pre-warm before an arrival. */
  shouldBeWarm(now: number, idleSince: number): boolean;
  /** Predicted ms from `now` until the next arrival, for eviction order; Infinity when unknown. */
  predictedNextArrivalMs(now: number, idleSince: number): number;
}

/** Makes one policy per function. */
export type KeepAlivePolicyFactory = () => KeepAlivePolicy;

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * Idle-time histogram with fixed-width bins over [0, rangeMs); longer idle times are counted apart
 * (out of range). The coefficient of variation of the bin counts is kept exact in O(1) per sample.
 */
class IdleHistogram {
  readonly binMs: number;
  readonly bins: Uint32Array;
  inRange = 0;
  outOfRange = 0;
  /** The most recent out-of-range idle time, NaN before the first. */
  lastOutOfRangeMs = Number.NaN;
  /** Sum of idle times, each capped at the range. */
  sumMs = 0;
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
    this.sumMs += Math.min(idleMs, this.bins.length * this.binMs);
    if (count === undefined) {
      this.outOfRange++;
      this.lastOutOfRangeMs = idleMs;
      return;
    }
    this.bins[bin] = count + 1;
    this.inRange++;
    this.#sumSquares += 2 * count + 1;
  }

  /** Sample standard deviation of the bin counts over their mean; 0 when empty. */
  binCountCv(): number {
    const n = this.bins.length;
    if (this.inRange === 0) return 0;
    const mean = this.inRange / n;
    return Math.sqrt(Math.max(0, (this.#sumSquares - n * mean * mean) / (n - 1))) / mean;
  }

  /** The first bin at which the cumulative in-range share reaches `p` (0..1). */
  percentileBin(p: number): number {
    let cumulative = 0;
    for (let i = 0; i < this.bins.length; i++) {
      cumulative += this.bins[i] ?? 0;
      if (cumulative >= p * this.inRange) return i;
    }
    return this.bins.length - 1;
  }

  /** Median time left until the next arrival after `elapsedMs` of idleness; Infinity if beyond the range. */
  medianResidualMs(elapsedMs: number): number {
    const first = Math.floor(elapsedMs / this.binMs);
    let left = this.outOfRange;
    for (let b = first; b < this.bins.length; b++) left += this.bins[b] ?? 0;
    let cumulative = 0;
    for (let b = first; b < this.bins.length; b++) {
      cumulative += this.bins[b] ?? 0;
      if (left > 0 && cumulative >= left / 2) return Math.max(0, (b + 0.5) * this.binMs - elapsedMs);
    }
    return Number.POSITIVE_INFINITY;
  }
}

/** Tracks idle periods for the policies below and answers the point queries from `warmWindows`. */
abstract class IdlePolicy implements KeepAlivePolicy {
  #idleSince: number | null = null;
  /** Warm windows as offsets from the start of an idle period, set by `learn`. */
  protected offsets: readonly WarmWindow[] = [];

  observeArrival(now: number): void {
    if (this.#idleSince === null) return;
    this.learn(Math.max(0, now - this.#idleSince));
    this.#idleSince = null;
  }

  observeIdle(now: number): void {
    this.#idleSince = now;
  }

  warmWindows(idleSince: number): readonly WarmWindow[] {
    return this.offsets.map((w) => ({ fromMs: idleSince + w.fromMs, untilMs: idleSince + w.untilMs }));
  }

  shouldBeWarm(now: number, idleSince: number): boolean {
    return this.offsets.some((w) => idleSince + w.fromMs <= now && now < idleSince + w.untilMs);
  }

  predictedNextArrivalMs(_now: number, _idleSince: number): number {
    return Number.POSITIVE_INFINITY;
  }

  /** One completed idle time: arrival minus the end of the previous busy period. */
  protected abstract learn(idleMs: number): void;
}

class FixedKeepAlive extends IdlePolicy {
  constructor(ms: number) {
    super();
    this.offsets = [{ fromMs: 0, untilMs: ms }];
  }
  protected learn(): void {}
}

/**
 * Keep the pool warm for `ms` after every busy period and never pre-warm: AWS's 10 min, Azure's
 * 20 min and Hearth's `HEARTH_IDLE_MS` (5 min) are of this kind. Fixed 10 min on the trace: 1,348
 * cold starts, 1,038 idle pool-hours; 5 min: 3,399 and 906.
 */
export function fixedKeepAlive(ms: number): KeepAlivePolicyFactory {
  if (!(ms >= 0)) throw new RangeError(`fixedKeepAlive: ms must be a number >= 0, got ${ms}`);
  return () => new FixedKeepAlive(ms);
}

/** Options of {@link hybridHistogram}. */
export interface HybridOptions {
  /** Histogram range; longer idle times are out of range. Default 4 h (the paper). */
  readonly rangeMs: number;
  /** Bin width. Default 1 min. */
  readonly binMs: number;
  /** Below this CV of the bin counts the histogram is not representative. Default 2. */
  readonly cvThreshold: number;
  /** Idle times seen before the histogram is trusted. Default 1 (dslab sets no minimum). */
  readonly minSamples: number;
  /** Out-of-range share from which the last out-of-range idle time is the forecast. Default 0.5. */
  readonly outOfRangeThreshold: number;
  /** Pre-warm at the 5th percentile × (1 − m), keep warm to the 99th × (1 + m). Default 0.1. */
  readonly histogramMargin: number;
  /** Warm in [x × (1 − m), x × (1 + m)] around an out-of-range forecast x. Default 0.15. */
  readonly forecastMargin: number;
  /** Keep-alive while the histogram is not trusted. Default: the range. */
  readonly fallbackMs: number;
}

const HEAD_PERCENTILE = 0.05;
const TAIL_PERCENTILE = 0.99;

class HybridHistogram extends IdlePolicy {
  readonly #o: HybridOptions;
  readonly #h: IdleHistogram;

  constructor(o: HybridOptions) {
    super();
    this.#o = o;
    this.#h = new IdleHistogram(o.rangeMs, o.binMs);
    this.offsets = [{ fromMs: 0, untilMs: o.fallbackMs }];
  }

  protected learn(idleMs: number): void {
    const o = this.#o;
    const h = this.#h;
    h.add(idleMs);
    let fromMs = 0;
    let untilMs = o.fallbackMs;
    if (h.total >= o.minSamples && h.outOfRange / h.total >= o.outOfRangeThreshold) {
      // The paper fits ARIMA to the out-of-range idle times; the last one is the forecast here.
      fromMs = h.lastOutOfRangeMs * (1 - o.forecastMargin);
      untilMs = h.lastOutOfRangeMs * (1 + o.forecastMargin);
    } else if (h.total >= o.minSamples && h.binCountCv() >= o.cvThreshold) {
      fromMs = h.percentileBin(HEAD_PERCENTILE) * o.binMs * (1 - o.histogramMargin);
      untilMs = (h.percentileBin(TAIL_PERCENTILE) + 1) * o.binMs * (1 + o.histogramMargin);
    }
    this.offsets = [{ fromMs, untilMs }];
  }

  override predictedNextArrivalMs(now: number, idleSince: number): number {
    return this.#h.medianResidualMs(now - idleSince);
  }
}

/**
 * The hybrid histogram policy of "Serverless in the Wild" (Shahrad et al., USENIX ATC'20) with the
 * parameters of osukhoroslov/dslab `hybrid_histogram.rs`: per-function idle-time histogram, pre-warm
 * at its 5th percentile, keep warm until its 99th; the whole range while the histogram is not
 * representative; ARIMA replaced by the last out-of-range idle time. 2 h range on the trace: 604
 * cold starts, 925 idle pool-hours; 4 h: 592 and 995.
 *
 * @example hybridHistogram({ rangeMs: 2 * 3_600_000 })
 */
export function hybridHistogram(options: Partial<HybridOptions> = {}): KeepAlivePolicyFactory {
  const rangeMs = options.rangeMs ?? 4 * HOUR_MS;
  const defaults: HybridOptions = {
    rangeMs,
    binMs: MINUTE_MS,
    cvThreshold: 2,
    minSamples: 1,
    outOfRangeThreshold: 0.5,
    histogramMargin: 0.1,
    forecastMargin: 0.15,
    fallbackMs: rangeMs,
  };
  const o = parseOptions("hybridHistogram", defaults, options);
  if (!(o.binMs > 0)) throw new RangeError(`hybridHistogram: option binMs must be > 0, got ${o.binMs}`);
  return () => new HybridHistogram(o);
}

/**
 * Options of {@link hazardHistogram}. Each says what changing it alone did on the trace, against the
 * defaults (475 cold starts, per-function p75 33 %, 899 idle pool-hours).
 */
export interface HazardOptions {
  /** Histogram range; no pool is warm beyond it in one idle period. Default 2 h; 4 h: −5 cold starts, +23 h. */
  readonly rangeMs: number;
  /**
   * Bin width, also the narrowest margin around a learnt idle time. Default 1 min (the trace's
   * resolution); 30 s: +84 cold starts, p75 37 %, −63 h; 2 min: −44 cold starts, +109 h.
   */
  readonly binMs: number;
  /**
   * What one cold start is worth in idle pool time: a bin is warm when P(next call in the bin) × cost
   * ≥ P(still idle at the bin) × bin width. Default 90 min; 30 min: +18 cold starts, −9 h; 180 min:
   * −4 cold starts, +10 h (flat because the relative cost below dominates for rare functions).
   */
  readonly coldStartCostMs: number;
  /**
   * The cost grows with the function's mean idle time: max(coldStartCostMs, this × mean). A cold
   * start weighs more for a rarely invoked function: it is a larger share of its calls, which is what
   * per-function cold-start percentiles measure. Default 16; 0: +38 cold starts, p75 41 %, −38 h;
   * 8: +6 cold starts, −4 h.
   */
  readonly relativeColdStartCost: number;
  /**
   * Each learnt idle time is smeared over ± the distance to its nearest other sample (at least one
   * bin, at most this fraction of the idle time): tight for regular (timer) functions, wide where few
   * scattered samples must be interpolated. Default 1; 0 (one bin): +169 cold starts, p75 52 %,
   * −135 h; 0.5: +53 cold starts, p75 46 %, −42 h; 2: −3 cold starts, +2 h.
   */
  readonly spreadFraction: number;
  /**
   * Keep-alive while nothing is learnt yet (the first idle period). Default 20 min; 0: +165 cold
   * starts, p75 43 %, −39 h; 10 min: +20 cold starts, −16 h; 60 min: −27 cold starts, +47 h.
   */
  readonly fallbackMs: number;
  /**
   * Idle times learnt before the histogram decides; until then keep warm for `fallbackMs`. Default 1;
   * 2: +11 cold starts, p75 37.5 %, −14 h. With a 90 min fallback, 3 gives 407 / 23.7 % / 1,017 h.
   */
  readonly minSamples: number;
}

/** Hearth's default keep-alive: {@link hazardHistogram} with these options. */
export const DEFAULT_HAZARD_OPTIONS: HazardOptions = Object.freeze({
  rangeMs: 2 * HOUR_MS,
  binMs: MINUTE_MS,
  coldStartCostMs: 90 * MINUTE_MS,
  relativeColdStartCost: 16,
  spreadFraction: 1,
  fallbackMs: 20 * MINUTE_MS,
  minSamples: 1,
});

class HazardHistogram extends IdlePolicy {
  readonly #o: HazardOptions;
  readonly #h: IdleHistogram;
  readonly #density: Float64Array;

  constructor(o: HazardOptions) {
    super();
    this.#o = o;
    this.#h = new IdleHistogram(o.rangeMs, o.binMs);
    this.#density = new Float64Array(this.#h.bins.length);
    this.offsets = o.fallbackMs > 0 ? [{ fromMs: 0, untilMs: o.fallbackMs }] : [];
  }

  protected learn(idleMs: number): void {
    const h = this.#h;
    h.add(idleMs);
    const o = this.#o;
    if (h.total < o.minSamples) return;
    this.#smear();
    const costMs = Math.max(o.coldStartCostMs, (o.relativeColdStartCost * h.sumMs) / h.total);
    // Decisions per bin are independent: warming bin b costs its width only if no arrival came
    // before it, and saves a cold start only for arrivals inside it.
    const windows: WarmWindow[] = [];
    let stillIdle = h.total;
    for (let b = 0; b < this.#density.length && stillIdle > 1e-9; b++) {
      const arriving = this.#density[b] ?? 0;
      if (arriving > 0 && arriving * costMs >= stillIdle * o.binMs) {
        const last = windows.at(-1);
        if (last?.untilMs === b * o.binMs) windows[windows.length - 1] = { ...last, untilMs: (b + 1) * o.binMs };
        else windows.push({ fromMs: b * o.binMs, untilMs: (b + 1) * o.binMs });
      }
      stillIdle -= arriving;
    }
    this.offsets = windows;
  }

  /** Density of arrivals per bin: each occupied bin spread over ± the distance to its nearest neighbour. */
  #smear(): void {
    const bins = this.#h.bins;
    const density = this.#density;
    const n = bins.length;
    density.fill(0);
    let previous = Number.NEGATIVE_INFINITY;
    for (let b = 0; b < n; b++) {
      const count = bins[b] ?? 0;
      if (count === 0) continue;
      let next = b + 1;
      while (next < n && bins[next] === 0) next++;
      // Distance from these samples to the nearest other one, in bins: 0 when the bin holds several.
      const nearest = count > 1 ? 0 : Math.min(b - previous, next < n ? next - b : Number.POSITIVE_INFINITY);
      const spread = Math.max(1, Math.min(nearest, Math.ceil(this.#o.spreadFraction * (b + 0.5))));
      const lo = Math.max(0, b - spread);
      const hi = Math.min(n - 1, b + spread);
      for (let j = lo; j <= hi; j++) density[j] = (density[j] ?? 0) + count / (hi - lo + 1);
      previous = b;
    }
  }

  override predictedNextArrivalMs(now: number, idleSince: number): number {
    return this.#h.medianResidualMs(now - idleSince);
  }
}

/**
 * Hearth's keep-alive: a per-function idle-time histogram, like the hybrid policy, but read as a
 * cost–benefit per minute of the idle period instead of one [5th, 99th] percentile window. A minute
 * is warm when the chance that the next call lands in it, times what a cold start costs, outweighs
 * the chance the pool sits there unused, i.e. while the hazard rate P(call in this minute | idle so
 * far) ≥ 1 min / cost. Minutes are independent (warming one costs only if the pool is still idle
 * then, and pays only for calls inside it), so this per-minute rule minimises the expected cost. Bursty functions stay warm for a minute or two after use;
 * a 10-minute timer is unloaded after use and warmed 8–12 min later; scattered, rare functions get a
 * wide window. Defaults (DEFAULT_HAZARD_OPTIONS) against the hybrid policy (2 h) on the trace: 475
 * cold starts instead of 604, per-function p75 33 % instead of 48 %, 899 idle pool-hours instead of 925.
 *
 * @example hazardHistogram({ coldStartCostMs: 2 * 3_600_000 }) // warmer, fewer cold starts
 */
export function hazardHistogram(options: Partial<HazardOptions> = {}): KeepAlivePolicyFactory {
  const o = parseOptions("hazardHistogram", DEFAULT_HAZARD_OPTIONS, options);
  if (!(o.rangeMs >= o.binMs && o.binMs > 0)) {
    throw new RangeError(`hazardHistogram: need 0 < binMs <= rangeMs, got ${o.binMs} and ${o.rangeMs}`);
  }
  return () => new HazardHistogram(o);
}

/** Defaults overlaid with the given options (undefined ones skipped), checked and frozen. */
function parseOptions<T extends object>(name: string, defaults: T, options: Partial<T>): Readonly<T> {
  const merged: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!(key in defaults)) throw new RangeError(`${name}: unknown option ${key}`);
    if (typeof value !== "number" || !(value >= 0)) {
      throw new RangeError(`${name}: option ${key} must be a number >= 0, got ${String(value)}`);
    }
    merged[key] = value;
  }
  return Object.freeze(merged) as Readonly<T>;
}
