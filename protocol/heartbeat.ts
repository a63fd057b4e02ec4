/** One executor process of a worker node, as the node reports it. */
export interface ExecutorInfo {
  readonly id: string;
  readonly pid: number;
  /** Functions with a warm pool on this executor. */
  readonly functions: readonly string[];
}

/** What a worker node reports on SUBJECTS.heartbeat. Read by the scheduler and the gateway. */
export interface WorkerHeartbeat {
  readonly id: string;
  /** The supervisor's process id (for operators). */
  readonly pid: number;
  /** `draining`: the node takes no new pools; the scheduler moves its pools away. */
  readonly state: "ready" | "draining";
  /** Memory the node offers to isolates (sum of their memory limits), in MB. */
  readonly memoryMb: number;
  /** Functions with a warm pool on this node (the union over its executors). */
  readonly functions: readonly string[];
  readonly executors: readonly ExecutorInfo[];
  /** The node's reporting interval; it counts as gone after a few missed beats. */
  readonly intervalMs: number;
}

const isStrings = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((f) => typeof f === "string");

/** Reads a heartbeat; null for anything that is not one (the subject is open to any NATS client). */
export function parseHeartbeat(data: Uint8Array): WorkerHeartbeat | null {
  try {
    const beat = JSON.parse(new TextDecoder().decode(data)) as Partial<WorkerHeartbeat>;
    const valid =
      typeof beat.id === "string" &&
      (beat.state === "ready" || beat.state === "draining") &&
      typeof beat.memoryMb === "number" &&
      isStrings(beat.functions) &&
      Array.isArray(beat.executors) &&
      beat.executors.every((e) => typeof e?.id === "string" && isStrings(e.functions)) &&
      typeof beat.intervalMs === "number" &&
      beat.intervalMs > 0;
    return valid ? (beat as WorkerHeartbeat) : null;
  } catch {
    return null;
  }
}
