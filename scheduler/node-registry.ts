import type { WorkerHeartbeat } from "../protocol/index.ts";

/** A node counts as gone after this many missed heartbeats. */
const MISSED_BEATS_ALLOWED = 3;

/**
 * What the scheduler knows of worker nodes, from their heartbeats. Time is an argument, so tests
 * run in virtual time.
 */
export class NodeRegistry {
  readonly #nodes = new Map<string, { beat: WorkerHeartbeat; seenAt: number }>();
  readonly #waiters = new Set<() => void>();

  observe(beat: WorkerHeartbeat, now: number): void {
    this.#nodes.set(beat.id, { beat, seenAt: now });
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /** Nodes heard from recently; forgets the others. */
  live(now: number): WorkerHeartbeat[] {
    const live: WorkerHeartbeat[] = [];
    for (const [id, { beat, seenAt }] of this.#nodes) {
      if (now - seenAt <= beat.intervalMs * MISSED_BEATS_ALLOWED) live.push(beat);
      else this.#nodes.delete(id);
    }
    return live;
  }

  /** Records a placement at once, so the next decision need not wait for the node's next beat. */
  markLoaded(nodeId: string, fn: string): void {
    const node = this.#nodes.get(nodeId);
    if (node && !node.beat.functions.includes(fn)) {
      node.beat = { ...node.beat, functions: [...node.beat.functions, fn] };
    }
  }

  /** Resolves on the next heartbeat from any node, or after `timeoutMs`. */
  nextBeat(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.#waiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }
}
