/** What a worker node reports on SUBJECTS.heartbeat. Read by the scheduler and the gateway. */
export interface WorkerHeartbeat {
  readonly id: string;
  /** Functions with a warm pool on this node. */
  readonly functions: readonly string[];
  readonly executors: number;
  /** The node's reporting interval; it counts as gone after a few missed beats. */
  readonly intervalMs: number;
}
