import type { FunctionLoad, GatewayLoadReport, LoadReport, WorkerHeartbeat } from "../protocol/index.ts";
import type { NodeView } from "./placer.ts";

export interface ClusterViewOptions {
  /** A node silent for this long is lost (target: detected within 3 s). */
  readonly nodeLostAfterMs?: number;
  /** An executor whose load reports stop for this long is treated as gone (paused, partitioned). */
  readonly executorStaleMs?: number;
}

/** One function's load summed over the cluster, from the latest report of each live executor. */
export interface FunctionObservation {
  /** Requests in flight: the larger of what executors run and what gateways have outstanding. */
  readonly inFlight: number;
  /** Isolates warm now. */
  readonly isolates: number;
  /** Invocations started, summed over executors' counters: a growing total means arrivals. */
  readonly invocations: number;
  /** Executor id → isolates assigned there (the pool's ceiling). */
  readonly replicas: ReadonlyMap<string, number>;
}

/** A node as the scheduler knows it, with its latest heartbeat. */
export interface KnownNode {
  readonly beat: WorkerHeartbeat;
  readonly state: NodeView["state"];
  readonly seenAt: number;
}

interface ExecutorReport {
  readonly report: LoadReport;
  readonly seenAt: number;
}

const DEFAULT_NODE_LOST_AFTER_MS = 2_500;
const DEFAULT_EXECUTOR_STALE_MS = 2_000;

/**
 * Collect: the scheduler's picture of the cluster, rebuilt entirely from what workers and executors
 * report (heartbeats, load reports, executor-lost notices). Nothing here is persisted: a new leader
 * has the same picture within one report interval (Dirigent's rule: no persistent state on the
 * critical path, locations rebuilt after failure). Time is an argument, so tests use virtual time.
 */
export class ClusterView {
  readonly #nodes = new Map<string, { beat: WorkerHeartbeat; seenAt: number }>();
  readonly #executors = new Map<string, ExecutorReport>();
  readonly #gateways = new Map<string, { report: GatewayLoadReport; seenAt: number }>();
  readonly #nodeLostAfterMs: number;
  readonly #executorStaleMs: number;

  constructor(options: ClusterViewOptions = {}) {
    this.#nodeLostAfterMs = options.nodeLostAfterMs ?? DEFAULT_NODE_LOST_AFTER_MS;
    this.#executorStaleMs = options.executorStaleMs ?? DEFAULT_EXECUTOR_STALE_MS;
  }

  observeHeartbeat(beat: WorkerHeartbeat, now: number): void {
    this.#nodes.set(beat.id, { beat, seenAt: now });
  }

  observeReport(report: LoadReport, now: number): void {
    const known = this.#executors.get(report.executor);
    if (known && known.report.seq >= report.seq) return;
    // An empty report is an idle executor, not a gone one: it stays live while it reports.
    this.#executors.set(report.executor, { report, seenAt: now });
  }

  observeGatewayLoad(report: GatewayLoadReport, now: number): void {
    const known = this.#gateways.get(report.gateway);
    if (!known || known.report.seq < report.seq) this.#gateways.set(report.gateway, { report, seenAt: now });
  }

  observeExecutorLost(executor: string): void {
    this.#executors.delete(executor);
  }

  /** Every node heard from, with its state now; nodes silent for long are forgotten. */
  nodes(now: number): KnownNode[] {
    const nodes: KnownNode[] = [];
    for (const [id, { beat, seenAt }] of this.#nodes) {
      const silentMs = now - seenAt;
      if (silentMs > this.#nodeLostAfterMs * 10) this.#nodes.delete(id);
      else nodes.push({ beat, seenAt, state: silentMs > this.#nodeLostAfterMs ? "lost" : beat.state });
    }
    return nodes;
  }

  /** Nodes as the placer needs them: live executors only, bundles from the functions they hold. */
  nodeViews(now: number, digestOf: (fn: string) => string | undefined): NodeView[] {
    return this.nodes(now).map(({ beat, state }) => {
      const executors = beat.executors.filter((e) => this.#isLive(e.id, now));
      const bundles = new Set<string>();
      for (const fn of beat.functions) {
        const digest = digestOf(fn);
        if (digest) bundles.add(digest);
      }
      return { id: beat.id, state, memoryMb: beat.memoryMb, executors: executors.map((e) => ({ id: e.id })), bundles };
    });
  }

  /** Per function, its load over live executors. */
  functions(now: number): Map<string, FunctionObservation> {
    const result = new Map<
      string,
      { inFlight: number; isolates: number; invocations: number; replicas: Map<string, number> }
    >();
    for (const [executor, { report }] of this.#executors) {
      if (!this.#isLive(executor, now)) continue;
      for (const load of report.functions) {
        let fn = result.get(load.name);
        if (!fn) {
          fn = { inFlight: 0, isolates: 0, invocations: 0, replicas: new Map() };
          result.set(load.name, fn);
        }
        add(fn, load, executor);
      }
    }
    // Requests in transit (HTTP, NATS, queues) are demand too: a gateway sees them, executors do not.
    const outstanding = new Map<string, number>();
    for (const [gateway, { report, seenAt }] of this.#gateways) {
      if (now - seenAt > this.#executorStaleMs) {
        this.#gateways.delete(gateway);
        continue;
      }
      for (const f of report.functions) outstanding.set(f.name, (outstanding.get(f.name) ?? 0) + f.outstanding);
    }
    for (const [name, count] of outstanding) {
      const fn = result.get(name);
      if (fn) fn.inFlight = Math.max(fn.inFlight, count);
      else result.set(name, { inFlight: count, isolates: 0, invocations: 0, replicas: new Map() });
    }
    return result;
  }

  /** Where executor `id` lives, if it is live. */
  nodeOfExecutor(id: string, now: number): string | undefined {
    if (!this.#isLive(id, now)) return undefined;
    const reported = this.#executors.get(id)?.report.node;
    if (reported) return reported;
    for (const { beat } of this.#nodes.values()) if (beat.executors.some((e) => e.id === id)) return beat.id;
    return undefined;
  }

  /**
   * An executor is live while its node is known and not lost, and it reports (or, before its first
   * report, its node's heartbeat lists it). A paused executor stops reporting: it is then out of placement.
   */
  #isLive(executor: string, now: number): boolean {
    const reported = this.#executors.get(executor);
    if (reported) {
      // A report from a node that never sent a heartbeat is not a node we can command.
      const node = this.#nodes.get(reported.report.node);
      if (!node || now - node.seenAt > this.#nodeLostAfterMs) return false;
      return now - reported.seenAt <= this.#executorStaleMs;
    }
    for (const { beat, seenAt } of this.#nodes.values()) {
      if (beat.executors.some((e) => e.id === executor)) return now - seenAt <= this.#nodeLostAfterMs;
    }
    return false;
  }
}

function add(
  fn: { inFlight: number; isolates: number; invocations: number; replicas: Map<string, number> },
  load: FunctionLoad,
  executor: string,
): void {
  fn.inFlight += load.inFlight;
  fn.isolates += load.isolates;
  fn.invocations += load.invocations;
  fn.replicas.set(executor, load.maxIsolates);
}
