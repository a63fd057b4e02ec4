/**
 * NATS subjects, queue groups and JetStream buckets: the whole wire map of Hearth in one place.
 * docs/architecture.md explains who publishes and who subscribes.
 */
export const SUBJECTS = {
  /** Sync invocation of one function; workers holding a warm pool subscribe in a queue group. */
  invoke: (fn: string) => `hearth.invoke.${fn}`,
  /** Gateway → scheduler: "no warm capacity for this function, place it". Request/reply. */
  activate: "hearth.activate",
  /** Scheduler → one worker node: load a function pool. Request/reply. */
  workerLoad: (workerId: string) => `hearth.worker.${workerId}.load`,
  /** Worker → scheduler: periodic node report. */
  heartbeat: "hearth.heartbeat",
  /** Scheduler → all workers on start: "report now" so a fresh scheduler needs no full interval. */
  schedulerHello: "hearth.scheduler.hello",
} as const;

export const QUEUE_GROUPS = {
  invoke: "workers",
  scheduler: "scheduler",
} as const;

export const BUCKETS = {
  /** KV: function name → FunctionRecord JSON. */
  functions: "hearth_functions",
  /** Object store: bundle sha256 (hex) → classic-script JS bundle. */
  bundles: "hearth_bundles",
} as const;

/** NATS header names on invocation requests and replies. Bodies are the raw payload. */
export const HEADERS = {
  invocationId: "hearth-id",
  /** FunctionRecord.version the gateway expects, so a worker with a stale one reloads first. */
  version: "hearth-version",
  /** JSON `{ method, url, headers }` of the HTTP request, parsed only inside the isolate. */
  request: "hearth-request",
  /** JSON `{ status, headers }` of the function's response. */
  response: "hearth-response",
  /** Error code on a failed invocation; the payload is then JSON `{ message, errorId }`. */
  error: "hearth-error",
} as const;
