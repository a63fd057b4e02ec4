import type { ClusterStatus } from "../protocol/index.ts";
import type { ClusterView } from "./cluster-view.ts";
import type { Leadership } from "./leader-lease.ts";
import type { ScalingLoop } from "./scaling-loop.ts";

/** Builds the status from the leader's view and loop. */
export function statusOf(
  view: ClusterView,
  loop: ScalingLoop,
  leadership: Leadership | null,
  now: number,
): ClusterStatus {
  const observed = view.functions(now);
  const names = new Set([...observed.keys(), ...loop.intended.functions()]);
  return {
    leader: leadership ? { id: leadership.leaderId, epoch: leadership.epoch } : null,
    nodes: view.nodes(now).map(({ beat, state, seenAt }) => ({
      id: beat.id,
      state,
      pid: beat.pid,
      memoryMb: beat.memoryMb,
      lastSeenMsAgo: now - seenAt,
      executors: beat.executors.map((e) => ({ id: e.id, pid: e.pid, functions: e.functions })),
    })),
    functions: [...names].sort().map((name) => {
      const decision = loop.decision(name);
      const load = observed.get(name);
      const replicas = loop.intended.get(name);
      return {
        name,
        desired: decision?.desired ?? 0,
        actual: loop.intended.isolatesOf(name),
        warm: load?.isolates ?? 0,
        nodes: [...new Set([...(replicas?.values() ?? [])].map((r) => r.node))].sort(),
        inFlight: load?.inFlight ?? 0,
        queued: loop.held(name),
        panic: decision?.panic ?? false,
        reason: decision?.reason ?? "",
      };
    }),
    decisions: loop.recentDecisions(),
  };
}
