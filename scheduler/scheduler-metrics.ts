import { Gauge, type Registry } from "prom-client";
import type { ClusterStatus } from "../protocol/index.ts";

/** What the scheduler's gauges read, at scrape time only. */
export interface SchedulerMetricsSource {
  isLeader(): boolean;
  status(): ClusterStatus;
  /** Messages waiting per function, from the leader's last queue-depth read (null before the first). */
  queueDepth(): ReadonlyMap<string, number> | null;
}

/**
 * The scheduler's gauges, computed from its state when scraped (nothing on its decision path):
 * `hearth_isolates{function}` (warm isolates, as executors report them: every scheduler sees that),
 * and, from the leader only (a standby decides nothing), `hearth_isolates_desired{function}` and
 * `hearth_queue_depth{function}`. `hearth_scheduler_leader` says which one leads.
 */
export function registerSchedulerMetrics(registry: Registry, source: SchedulerMetricsSource): void {
  // One status per scrape, however many gauges read it.
  let cached: { at: number; status: ClusterStatus } | null = null;
  const status = () => {
    const now = performance.now();
    if (!cached || now - cached.at > 100) cached = { at: now, status: source.status() };
    return cached.status;
  };
  new Gauge({
    name: "hearth_scheduler_leader",
    help: "1 while this scheduler holds the leader lease, else 0.",
    registers: [registry],
    collect() {
      this.set(source.isLeader() ? 1 : 0);
    },
  });
  new Gauge({
    name: "hearth_isolates",
    help: "Warm isolates per function over the cluster, as executors report them.",
    labelNames: ["function"],
    registers: [registry],
    collect() {
      this.reset();
      for (const fn of status().functions) this.set({ function: fn.name }, fn.warm);
    },
  });
  new Gauge({
    name: "hearth_isolates_desired",
    help: "Isolates the autoscaler wants per function (leader only).",
    labelNames: ["function"],
    registers: [registry],
    collect() {
      this.reset();
      if (!source.isLeader()) return;
      for (const fn of status().functions) this.set({ function: fn.name }, fn.desired);
    },
  });
  new Gauge({
    name: "hearth_queue_depth",
    help: "Async invocations and trigger messages stored and not yet finished, per function (leader only).",
    labelNames: ["function"],
    registers: [registry],
    collect() {
      this.reset();
      if (!source.isLeader()) return;
      // A drained queue reads 0, not a vanished series: every function the leader knows is listed.
      const depth = source.queueDepth() ?? new Map<string, number>();
      for (const fn of status().functions) this.set({ function: fn.name }, depth.get(fn.name) ?? 0);
      for (const [name, count] of depth) this.set({ function: name }, count);
    },
  });
}
