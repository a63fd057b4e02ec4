/** What a worker node reports on SUBJECTS.heartbeat. Read by the scheduler and the gateway. */
export interface WorkerHeartbeat {
  readonly id: string;
  /** Functions with a warm pool on this node. */
  readonly functions: readonly string[];
  readonly executors: number;
  /** The node's reporting interval; it counts as gone after a few missed beats. */
  readonly intervalMs: number;
}

/** Reads a heartbeat; null for anything that is not one (the subject is open to any NATS client). */
export function parseHeartbeat(data: Uint8Array): WorkerHeartbeat | null {
  try {
    const beat = JSON.parse(new TextDecoder().decode(data)) as Partial<WorkerHeartbeat>;
    const valid =
      typeof beat.id === "string" &&
      Array.isArray(beat.functions) &&
      beat.functions.every((f) => typeof f === "string") &&
      typeof beat.intervalMs === "number" &&
      beat.intervalMs > 0;
    return valid ? (beat as WorkerHeartbeat) : null;
  } catch {
    return null;
  }
}
