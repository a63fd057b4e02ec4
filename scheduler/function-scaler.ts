import { LOAD_REPORT_INTERVAL_MS } from "../protocol/index.ts";
import { decideScale, initialScaleState, type ScaleDecision, type ScaleSpec, type ScaleState } from "./autoscaler.ts";
import type { FunctionObservation } from "./cluster-view.ts";
import type { KeepAlivePolicy } from "./keep-alive.ts";

/** How long a function must look quiet before an idle period starts: one executor report interval. */
const IDLE_DEBOUNCE_MS = LOAD_REPORT_INTERVAL_MS;
/** Long enough to never scale to zero on its own: the keep-alive policy decides that instead. */
const FOREVER_MS = Number.MAX_SAFE_INTEGER;

/** One function's decision, with what placement needs to know about it. */
export interface FunctionDecision extends ScaleDecision {
  /** Only the keep-alive policy keeps it warm (no traffic): the placer may evict it, furthest first. */
  readonly evictable?: { readonly predictedNextArrivalMs: number };
}

/**
 * Decide for one function: queue depth → desired isolates (the pure autoscaler), with the keep-alive
 * policy choosing when an idle function goes to zero and when it is warmed ahead of a predicted
 * arrival. It turns the executors' counters into arrivals and idle periods for that policy.
 */
export class FunctionScaler {
  readonly #keepAlive: KeepAlivePolicy;
  #state: ScaleState;
  #invocations = 0;
  /** When the current idle period began; null while busy, or before the first arrival. */
  #idleSince: number | null = null;
  /** When nothing was last seen in flight, while that is too recent to call an idle period. */
  #quietSince: number | null = null;
  #everActive = false;
  #last: FunctionDecision | null = null;

  constructor(keepAlive: KeepAlivePolicy, now: number, options: { startInPanic?: boolean; ready?: number } = {}) {
    this.#keepAlive = keepAlive;
    this.#state = initialScaleState(now, options);
    if ((options.ready ?? 0) > 0) {
      // Found warm without history (a new leader): treat it as just gone idle.
      this.#everActive = true;
      this.#idleSince = now;
      keepAlive.observeIdle(now);
    }
  }

  /**
   * @param observed the function's load over the cluster (undefined: no executor holds it)
   * @param held requests gateways hold for it on the cold path
   * @param ready isolates assigned to it now
   */
  decide(
    spec: ScaleSpec,
    observed: FunctionObservation | undefined,
    held: number,
    ready: number,
    now: number,
  ): FunctionDecision {
    const invocations = observed?.invocations ?? 0;
    const concurrency = (observed?.inFlight ?? 0) + held;
    // Counters only grow on one executor; a smaller sum means an executor went away, not negative arrivals.
    const arrived = invocations > this.#invocations || held > 0;
    this.#invocations = invocations;
    if (arrived) {
      this.#keepAlive.observeArrival(now);
      this.#everActive = true;
      this.#idleSince = null;
      this.#quietSince = null;
    }
    if (concurrency > 0) {
      this.#idleSince = null;
      this.#quietSince = null;
    } else if (this.#everActive && this.#idleSince === null) {
      // Quiet for one report interval before it counts as idle: between a cold request's release
      // from the activator and the executor's report of it, a tick sees nothing in flight, and the
      // policy learnt a ~250 ms idle period that was not one (a first call then kept its pool 2 min
      // instead of 20; found by the live replay).
      this.#quietSince ??= now;
      if (now - this.#quietSince >= IDLE_DEBOUNCE_MS) {
        this.#idleSince = this.#quietSince;
        this.#keepAlive.observeIdle(this.#quietSince);
      }
    }
    const idleSince = this.#idleSince;
    const keepWarm = idleSince === null || this.#keepAlive.shouldBeWarm(now, idleSince);
    // Most deployed functions sit at zero most of the time: nothing to decide, so skip the windows
    // (a tick over 1,000 functions spent 28 % of its time in decideScale for them).
    const last = this.#last;
    const quiet = concurrency === 0 && ready === 0 && spec.minInstances === 0 && (!keepWarm || !this.#everActive);
    if (quiet && last?.desired === 0) return last;
    const decision = decideScale(
      { ...spec, idleGraceMs: keepWarm ? FOREVER_MS : 0 },
      { concurrency, ready },
      this.#state,
      now,
    );
    this.#state = decision.state;
    if (idleSince === null || !keepWarm) return this.#remember(decision);
    // Idle but worth keeping (or pre-warming): one isolate, and the placer may evict it for room.
    const desired = Math.max(decision.desired, Math.min(1, spec.maxInstances));
    const predictedNextArrivalMs = this.#keepAlive.predictedNextArrivalMs(now, idleSince);
    const reason = decision.desired >= desired ? decision.reason : "kept warm for a predicted arrival";
    return this.#remember({ ...decision, desired, reason, evictable: { predictedNextArrivalMs } });
  }

  #remember(decision: FunctionDecision): FunctionDecision {
    this.#last = decision;
    return decision;
  }
}
