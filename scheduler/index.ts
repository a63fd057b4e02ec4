/** The scheduler: cluster view, autoscaling, placement, the cold path (activator), leader election. */

export type { ClusterStatus } from "../protocol/index.ts";
export type { ScaleSpec } from "./autoscaler.ts";
export { DEFAULT_SCALE_SPEC, decideScale, scaleSpecOf } from "./autoscaler.ts";
export { ClusterView } from "./cluster-view.ts";
export type {
  HazardOptions,
  HybridOptions,
  KeepAlivePolicy,
  KeepAlivePolicyFactory,
  WarmWindow,
} from "./keep-alive.ts";
export { DEFAULT_HAZARD_OPTIONS, fixedKeepAlive, hazardHistogram, hybridHistogram } from "./keep-alive.ts";
export { LeaderLease } from "./leader-lease.ts";
export { main } from "./main.ts";
export type { Assignment, Demand, NodeView } from "./placer.ts";
export { place } from "./placer.ts";
export type { SchedulerOptions } from "./scheduler.ts";
export { Scheduler } from "./scheduler.ts";
