import type { ErrorCode, FunctionRecord, HearthError, Logger, ScaleDecisionRecord } from "../protocol/index.ts";
import { type ScaleSpec, scaleSpecOf } from "./autoscaler.ts";
import type { ClusterView } from "./cluster-view.ts";
import { type FunctionDecision, FunctionScaler } from "./function-scaler.ts";
import { IntendedAssignment } from "./intended-assignment.ts";
import type { KeepAlivePolicyFactory } from "./keep-alive.ts";
import type { NodeClient } from "./node-client.ts";
import { type Assignment, type Demand, place } from "./placer.ts";

/**
 * Errors that say the function itself is at fault: placing it elsewhere would not help. A secret that
 * cannot be opened with the right key is the function's (it clears when the secret is put again); a
 * worker without the right key is not, and is fixed without a new record.
 */
const FUNCTION_FAULTS: ReadonlySet<ErrorCode> = new Set([
  "ERR_FUNCTION_INVALID",
  "ERR_FUNCTION_NOT_FOUND",
  "ERR_SECRET_CORRUPT",
]);
/** Recent decisions kept for `hearth status` (only changes of desired are recorded). */
const DECISION_LOG_SIZE = 50;

export interface ScalingLoopOptions {
  readonly view: ClusterView;
  readonly nodes: NodeClient;
  readonly keepAlive: KeepAlivePolicyFactory;
  readonly log: Logger;
  /** Defaults for every function's scaling (per-function fields come from its record). */
  readonly scaleDefaults?: Partial<ScaleSpec>;
  readonly maxIsolatesPerReplica?: number;
  /** The clock commands are stamped with when they complete (injected for tests). */
  readonly now?: () => number;
}

/** A warm pool of a function, for the activator's answer. */
export interface WarmReplica {
  readonly node: string;
  readonly executor: string;
}

/**
 * The leader's pipeline, once per tick and on every poke: collect (the cluster view) → decide (per
 * function, pure) → place (pure) → act (commands with the leader's epoch). Loads go out before
 * unloads (make before break): a function's old replicas are unloaded only once its new ones are up.
 */
export class ScalingLoop {
  readonly intended = new IntendedAssignment();
  readonly #options: ScalingLoopOptions;
  readonly #records = new Map<string, FunctionRecord>();
  readonly #scalers = new Map<string, FunctionScaler>();
  readonly #decisions = new Map<string, FunctionDecision>();
  readonly #held = new Map<string, number>();
  /** `fn executor` → the command under way there. */
  readonly #pending = new Map<string, { isolates: number; done: Promise<string | null> }>();
  /** The last load failure per function that was the function's own fault. */
  readonly #faults = new Map<string, HearthError>();
  readonly #log: ScaleDecisionRecord[] = [];
  readonly #defaults: ScaleSpec;
  #startInPanic = true;

  constructor(options: ScalingLoopOptions) {
    this.#options = options;
    this.#defaults = scaleSpecOf(options.scaleDefaults ?? {});
  }

  setRecord(record: FunctionRecord): void {
    this.#records.set(record.name, record);
    this.#faults.delete(record.name);
  }

  deleteRecord(name: string): void {
    this.#records.delete(name);
    this.#scalers.delete(name);
    this.#decisions.delete(name);
    this.#faults.delete(name);
    this.#held.delete(name);
    this.intended.forget(name); // executors unload removed functions themselves
  }

  record(name: string): FunctionRecord | undefined {
    return this.#records.get(name);
  }

  /** A new leadership: no history, so hold what is warm for a stable window (no scale-down). */
  resetForNewLeader(): void {
    this.#scalers.clear();
    // What we believed when we last led may have changed under another leader: start from the reports.
    this.intended.clear();
    this.#pending.clear();
    this.#faults.clear();
    this.#startInPanic = true;
  }

  /** A gateway holds requests for `fn` (cold path): they count as queue depth until released. */
  hold(fn: string, delta: number): void {
    const held = (this.#held.get(fn) ?? 0) + delta;
    if (held > 0) this.#held.set(fn, held);
    else this.#held.delete(fn);
  }

  /** Requests gateways hold for `fn` on the cold path now. */
  held(fn: string): number {
    return this.#held.get(fn) ?? 0;
  }

  decision(fn: string): FunctionDecision | undefined {
    return this.#decisions.get(fn);
  }

  recentDecisions(): readonly ScaleDecisionRecord[] {
    return this.#log;
  }

  fault(fn: string): HearthError | undefined {
    return this.#faults.get(fn);
  }

  /** One pass of the pipeline at `now` with the leader's `epoch`. */
  tick(now: number, epoch: number): void {
    const { view } = this.#options;
    const observed = view.functions(now);
    const nodeViews = view.nodeViews(now, (fn) => this.#records.get(fn)?.digest);
    this.intended.reconcile(
      observed,
      (e) => view.nodeOfExecutor(e, now),
      (fn, e) => this.#pending.has(`${fn} ${e}`),
      now,
    );
    const demands: Demand[] = [];
    for (const [name, record] of this.#records) {
      const ready = this.intended.isolatesOf(name);
      let scaler = this.#scalers.get(name);
      if (!scaler) {
        scaler = new FunctionScaler(this.#options.keepAlive(), now, { startInPanic: this.#startInPanic, ready });
        this.#scalers.set(name, scaler);
      }
      const decision = scaler.decide(this.#specOf(record), observed.get(name), this.#held.get(name) ?? 0, ready, now);
      const previous = this.#decisions.get(name);
      this.#decisions.set(name, decision);
      if ((previous?.desired ?? 0) !== decision.desired)
        this.#remember({ at: now, fn: name, desired: decision.desired, actual: ready, reason: decision.reason });
      if (decision.desired > 0) {
        demands.push({
          name,
          desired: decision.desired,
          memoryMb: record.memoryMb,
          digest: record.digest,
          ...(decision.evictable ? { evictable: decision.evictable } : {}),
        });
      }
    }
    this.#startInPanic = false;
    const current = this.intended.toAssignment();
    const placement = place(demands, current, nodeViews, {
      maxIsolatesPerReplica: this.#options.maxIsolatesPerReplica ?? 4,
    });
    for (const [fn, missing] of placement.unplaced)
      this.#options.log.warn({ fn, missing }, "no room for wanted isolates");
    this.#act(placement.assignment, current, epoch, now);
  }

  /** A warm (or just loaded) replica of `fn`, waiting for loads under way; null when there is none. */
  async warmReplica(fn: string): Promise<WarmReplica | null> {
    const confirmed = [...(this.intended.get(fn) ?? [])].find(([, r]) => r.confirmedAt !== null);
    if (confirmed) return { executor: confirmed[0], node: confirmed[1].node };
    const loads = [...this.#pending].filter(([key, p]) => key.startsWith(`${fn} `) && p.isolates > 0);
    if (loads.length === 0) return null;
    const executor = await Promise.any(
      loads.map(([, p]) => p.done.then((e) => e ?? Promise.reject(new Error("load failed")))),
    ).catch(() => null);
    const replica = executor ? this.intended.get(fn)?.get(executor) : undefined;
    return executor && replica ? { executor, node: replica.node } : null;
  }

  #specOf(record: FunctionRecord): ScaleSpec {
    return {
      ...this.#defaults,
      targetConcurrency: record.concurrency,
      minInstances: record.minInstances ?? this.#defaults.minInstances,
      maxInstances: record.maxInstances ?? Math.max(this.#defaults.maxInstances, record.minInstances ?? 0),
    };
  }

  #act(target: Assignment, current: Assignment, epoch: number, now: number): void {
    for (const fn of new Set([...target.keys(), ...current.keys()])) {
      const want = target.get(fn) ?? new Map<string, number>();
      const have = current.get(fn) ?? new Map<string, number>();
      let loading = false;
      for (const [executor, isolates] of want) {
        // A load that could not be sent (its node unknown for now) still holds back the unloads.
        if (have.get(executor) !== isolates && !this.#command(fn, executor, isolates, epoch, now)) loading = true;
        if (this.#pending.has(`${fn} ${executor}`)) loading = true;
      }
      if (loading) continue; // make before break
      for (const executor of have.keys()) if (!want.has(executor)) this.#command(fn, executor, 0, epoch, now);
    }
  }

  /** Sends (or finds under way) the command; false when it cannot be sent now (node unknown). */
  #command(fn: string, executor: string, isolates: number, epoch: number, now: number): boolean {
    const key = `${fn} ${executor}`;
    if (this.#pending.get(key)?.isolates === isolates) return true;
    const node = this.#options.view.nodeOfExecutor(executor, now) ?? this.intended.get(fn)?.get(executor)?.node;
    if (!node) return false;
    // Optimistic both ways: a load counts as placed at once (the next decision must not place it
    // twice), an unload as gone at once (a cold request must not be handed a pool on its way out).
    if (isolates > 0) this.intended.set(fn, executor, { node, isolates, confirmedAt: null });
    else this.intended.unloaded(fn, executor, now);
    // A completion applies only while its command is the latest for this pool: a reload sent while an
    // unload was under way must not be undone by the unload's answer.
    const latest = () => this.#pending.get(key) === pending;
    const done = this.#options.nodes.assign(node, fn, executor, isolates, epoch).then(
      () => {
        if (isolates > 0 && latest())
          this.intended.set(fn, executor, { node, isolates, confirmedAt: (this.#options.now ?? Date.now)() });
        return executor;
      },
      (err: HearthError) => {
        this.#options.log.warn({ err, fn, executor, isolates }, "command failed; placing again next tick");
        if (isolates > 0 && latest()) this.intended.delete(fn, executor);
        if (FUNCTION_FAULTS.has(err.code)) this.#faults.set(fn, err);
        return null;
      },
    );
    const pending = { isolates, done };
    this.#pending.set(key, pending);
    void done.finally(() => {
      if (this.#pending.get(key) === pending) this.#pending.delete(key);
    });
    return true;
  }

  #remember(decision: ScaleDecisionRecord): void {
    this.#log.push(decision);
    if (this.#log.length > DECISION_LOG_SIZE) this.#log.shift();
    this.#options.log.info(decision, "scale decision");
  }
}
