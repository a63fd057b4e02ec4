/**
 * The scaling decision for one function: Knative KPA's `Scale(now)` (knative/serving
 * `pkg/autoscaler/scaling/autoscaler.go`) resized for V8 isolates. Pure: time is an argument, the
 * state goes in and comes out, so a ticker feeds it and tests run it in virtual time.
 */

/** How one function scales. Build it with {@link scaleSpecOf}; every field has a default. */
export interface ScaleSpec {
  /** Requests in flight per isolate at target. Default 32: one isolate serves 32 at once today. */
  readonly targetConcurrency: number;
  /** Floor, applied even when idle. Default 0 (scale to zero). */
  readonly minInstances: number;
  /** Ceiling. Default 100: 3,200 requests in flight, 260 MiB of idle isolates at 2.6 MiB each. */
  readonly maxInstances: number;
  /** Averaging window of the stable mode. Default 10 s (KPA: 60 s, sized for pods that start in seconds). */
  readonly stableWindowMs: number;
  /** Averaging window of the panic mode. Default 1 s: four samples at a 250 ms tick (KPA: 6 s). */
  readonly panicWindowMs: number;
  /** Panic when panic-window demand reaches this multiple of ready capacity. Default 2 (KPA's 200 %). */
  readonly panicThreshold: number;
  /** Per decision, desired <= max(ceil(ready × rate), ready + 10). Default 10. */
  readonly maxScaleUpRate: number;
  /** Per decision, desired >= floor(ready / rate). Default 2 (KPA's default). */
  readonly maxScaleDownRate: number;
  /** The output is the max of the un-delayed decisions over this window. Default 30 s. */
  readonly scaleDownDelayMs: number;
  /** No concurrency for this long scales to zero; set per tick from the keep-alive policy. Default 5 min. */
  readonly idleGraceMs: number;
}

/**
 * The defaults. Isolates start in ~1.5 ms and cost ~2.6 MiB idle, so up is eager (10× per decision,
 * 1 s panic window) and down is lazy: holding 7 spare isolates for the 30 s delay costs 18 MiB.
 */
export const DEFAULT_SCALE_SPEC: ScaleSpec = Object.freeze({
  targetConcurrency: 32,
  minInstances: 0,
  maxInstances: 100,
  stableWindowMs: 10_000,
  panicWindowMs: 1_000,
  panicThreshold: 2,
  maxScaleUpRate: 10,
  maxScaleDownRate: 2,
  scaleDownDelayMs: 30_000,
  idleGraceMs: 300_000,
});

/** Lets a pool of 1 reach 11 in one decision, where a pure rate of 10 would stop at 10. */
const SCALE_UP_ALLOWANCE = 10;
/**
 * Kubernetes HPA's default tolerance (0.1), on the way down only: shed an isolate only when the rest
 * run at <= 90 % of target. KPA has no band: a 10 s average wandering ±4 around 96 (3 × 32) went 4 → 3
 * after 30 s below and back to 4 seven seconds later.
 */
const SCALE_DOWN_TOLERANCE = 0.1;

const over = (min: number) => [(v: number) => v > min, `> ${min}`] as const;
const COUNT = [(v: number) => Number.isInteger(v) && v >= 0, "an integer >= 0"] as const;
// KPA also rejects rates and thresholds <= 1: they would scale the wrong way or panic at rest.
const RULES: { readonly [K in keyof ScaleSpec]: readonly [ok: (v: number) => boolean, must: string] } = {
  targetConcurrency: over(0),
  minInstances: COUNT,
  maxInstances: COUNT,
  stableWindowMs: over(0),
  panicWindowMs: over(0),
  panicThreshold: over(1),
  maxScaleUpRate: over(1),
  maxScaleDownRate: over(1),
  scaleDownDelayMs: [(v) => v >= 0, ">= 0"],
  idleGraceMs: [(v) => v >= 0, ">= 0"],
};

/**
 * Fills defaults, validates and freezes a spec.
 * @throws RangeError naming the bad field, e.g. `scale spec targetConcurrency must be > 0, got 0`.
 * @example scaleSpecOf({ targetConcurrency: 1, maxInstances: 10 })
 */
export function scaleSpecOf(input: Partial<ScaleSpec>): ScaleSpec {
  const unknown = Object.keys(input).find((key) => !Object.hasOwn(RULES, key));
  if (unknown !== undefined) throw new RangeError(`scale spec has no field ${unknown}`);
  const spec: Record<string, number> = {};
  for (const key of Object.keys(RULES) as (keyof ScaleSpec)[]) {
    const value: unknown = input[key] ?? DEFAULT_SCALE_SPEC[key];
    const [ok, must] = RULES[key];
    if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) {
      throw new RangeError(`scale spec ${key} must be ${must}, got ${String(value)}`);
    }
    spec[key] = value;
  }
  const built = spec as unknown as ScaleSpec;
  const { minInstances: min, stableWindowMs: stable } = built;
  if (built.maxInstances < min) throw new RangeError(`scale spec maxInstances must be >= minInstances (${min})`);
  if (built.panicWindowMs > stable)
    throw new RangeError(`scale spec panicWindowMs must be <= stableWindowMs (${stable})`);
  return Object.freeze(built);
}

/** One sample, taken at `now`. */
export interface Observation {
  /** In flight + waiting + held + pending, summed over the cluster. */
  readonly concurrency: number;
  /** Isolates warm now. */
  readonly ready: number;
}

/** What {@link decideScale} remembers between calls. Plain data: store it, log it, compare it. */
export interface ScaleState {
  /** Concurrency samples within the larger window. */
  readonly samples: readonly { readonly atMs: number; readonly value: number }[];
  /**
   * Null unless panicking. Panic ends a full stable window after `lastOverAt`, the last sample over
   * the threshold, and never asks for less than `maxDesired`.
   */
  readonly panic: { readonly since: number; readonly lastOverAt: number; readonly maxDesired: number } | null;
  /** Un-delayed decisions within the scale-down delay. */
  readonly recentDesired: readonly { readonly atMs: number; readonly value: number }[];
  /** The last sample with concurrency > 0 (or when warm isolates were first seen), null if never. */
  readonly lastActiveAt: number | null;
}

/**
 * A fresh state. A new leader passes `startInPanic` with the isolates it found warm: without history
 * it would see zero demand and scale down, so it holds `ready` for one stable window (as KPA does).
 */
export function initialScaleState(now: number, options: { startInPanic?: boolean; ready?: number } = {}): ScaleState {
  const ready = options.ready ?? 0;
  // With nothing warm there is nothing to protect, and a panic flag would only mislead the metrics.
  const panic = options.startInPanic === true && ready > 0;
  return {
    samples: [],
    panic: panic ? { since: now, lastOverAt: now, maxDesired: ready } : null,
    recentDesired: [],
    lastActiveAt: ready > 0 ? now : null,
  };
}

/** The outcome of one decision; `state` goes into the next call. */
export interface ScaleDecision {
  readonly desired: number;
  readonly panic: boolean;
  /** For people: `panic: 412 in flight over 1 s, 4 ready`, `idle 300 s: scale to zero`. */
  readonly reason: string;
  readonly state: ScaleState;
}

const average = (samples: ScaleState["samples"], after: number): number => {
  const inWindow = samples.filter((s) => s.atMs > after);
  return inWindow.reduce((sum, s) => sum + s.value, 0) / Math.max(inWindow.length, 1);
};
/**
 * Samples closer together than this share one slot (the larger value): every cold request pokes a
 * decision, and one sample per call grew a tick over 500 functions from 2.3 ms to 42 ms under pokes
 * every 10 ms. At most 100 samples per 10 s window.
 */
const SAMPLE_SPACING_MS = 100;

/** Appends a sample, merged into the last one when that is recent; drops samples past `horizon`. */
function record(
  samples: ScaleState["samples"],
  horizon: number,
  now: number,
  value: number,
): { readonly atMs: number; readonly value: number }[] {
  const kept = samples.filter((s) => s.atMs > horizon);
  const last = kept.at(-1);
  if (last && now - last.atMs < SAMPLE_SPACING_MS)
    kept[kept.length - 1] = { atMs: last.atMs, value: Math.max(last.value, value) };
  else kept.push({ atMs: now, value });
  return kept;
}

const secs = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;
const round = (n: number): number => Math.round(n * 10) / 10;

function bounded(spec: ScaleSpec, desired: number, reason: string, state: ScaleState): ScaleDecision {
  const clamped = Math.min(Math.max(desired, spec.minInstances), spec.maxInstances);
  const why = clamped > desired ? "; minInstances" : clamped < desired ? "; maxInstances" : "";
  return { desired: clamped, panic: state.panic !== null, reason: why ? `${reason}${why} ${clamped}` : reason, state };
}

/**
 * Records `observed` and decides how many isolates the function should have. Worked example with
 * defaults: 0 ready, 200 in flight → poke: ceil(200 / 32) = 7 at once, and panic (7 ≥ 2 × max(0, 1))
 * holds 7 for 10 s; after the burst the 30 s delay holds 7, then at most halving per decision.
 */
export function decideScale(spec: ScaleSpec, observed: Observation, state: ScaleState, now: number): ScaleDecision {
  const { concurrency, ready } = observed;
  const horizon = now - Math.max(spec.stableWindowMs, spec.panicWindowMs);
  const samples = record(state.samples, horizon, now, concurrency);
  // Isolates found warm without a recorded request get the full grace rather than dying on missing history.
  const lastActiveAt = concurrency > 0 ? now : (state.lastActiveAt ?? (ready > 0 ? now : null));
  const idleMs = lastActiveAt === null ? 0 : now - lastActiveAt;
  if (lastActiveAt !== null && concurrency === 0 && idleMs >= spec.idleGraceMs) {
    // The keep-alive policy owns this moment, so zero is exact; a later request starts afresh.
    const fresh: ScaleState = { samples, panic: null, recentDesired: [], lastActiveAt };
    return bounded(spec, 0, `idle ${secs(idleMs)}: scale to zero`, fresh);
  }

  const stable = average(samples, now - spec.stableWindowMs);
  const burst = average(samples, now - spec.panicWindowMs);
  const target = spec.targetConcurrency;
  const dspc = Math.max(
    Math.ceil(stable / target),
    Math.min(ready, Math.ceil(stable / (target * (1 - SCALE_DOWN_TOLERANCE)))),
  );
  const dppc = Math.ceil(burst / target);
  const lowest = Math.floor(ready / spec.maxScaleDownRate);
  const highest = Math.max(Math.ceil(ready * spec.maxScaleUpRate), ready + SCALE_UP_ALLOWANCE);
  const limit = (n: number): number => Math.min(Math.max(n, lowest), highest);

  let panic = state.panic;
  if ((ready > 0 || concurrency > 0) && dppc / Math.max(ready, 1) >= spec.panicThreshold) {
    panic = { since: panic?.since ?? now, lastOverAt: now, maxDesired: panic?.maxDesired ?? 0 };
  } else if (panic !== null && now - panic.lastOverAt > spec.stableWindowMs) {
    panic = null;
  }
  let want = panic === null ? limit(dspc) : Math.max(limit(dspc), limit(dppc), panic.maxDesired);
  // Up at once to the demand in flight now, not to a window's average of it: an isolate costs ~1.5 ms
  // to start, and averaging a step over the 1 s panic window added one isolate per tick (6 ticks to
  // go from 1 to 7 after a step to 200 clients). Down stays lazy: windows, delay, tolerance.
  const demandNow = Math.ceil(concurrency / target);
  if (demandNow > ready) want = Math.max(want, limit(demandNow));
  const fromZero = ready === 0 && concurrency > 0;
  // KPA's Poke: from zero the rate limit would hold requests for several ticks, so jump at once.
  if (fromZero) want = Math.max(want, Math.ceil(concurrency / target));
  if (panic !== null) panic = { ...panic, maxDesired: Math.max(panic.maxDesired, want) };
  let reason = fromZero
    ? `scale from zero: ${round(concurrency)} in flight`
    : panic !== null
      ? `panic: ${round(burst)} in flight over ${secs(spec.panicWindowMs)}, ${ready} ready`
      : `stable: ${round(stable)} in flight over ${secs(spec.stableWindowMs)}, ${ready} ready`;

  // The delay window also remembers the demand seen, so a sawtooth never scales below its peaks.
  const recentDesired = record(state.recentDesired, now - spec.scaleDownDelayMs, now, Math.max(want, limit(demandNow)));
  let desired = Math.max(...recentDesired.map((s) => s.value));
  if (desired > want) reason += `; scale-down delay holds ${desired} (wants ${want})`;
  if (lastActiveAt !== null && desired < 1) {
    desired = 1;
    reason += `; idle ${secs(idleMs)} of ${secs(spec.idleGraceMs)}: keep 1 warm`;
  }
  return bounded(spec, desired, reason, { samples, panic, recentDesired, lastActiveAt });
}
