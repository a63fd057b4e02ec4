import type { WorkerHeartbeat } from "../protocol/index.ts";

/**
 * Where to place a function's pool, best choice first: nodes already holding it (loading there is a
 * no-op), then nodes by fewest functions held. A stand-in for the memory/CPU best-fit placer of
 * the autoscaling work; it already spreads load and never re-places a warm function.
 */
export function rankNodesFor(fn: string, nodes: readonly WorkerHeartbeat[]): WorkerHeartbeat[] {
  return [...nodes].sort((a, b) => {
    const holdsA = a.functions.includes(fn) ? 0 : 1;
    const holdsB = b.functions.includes(fn) ? 0 : 1;
    return holdsA - holdsB || a.functions.length - b.functions.length || a.id.localeCompare(b.id);
  });
}
