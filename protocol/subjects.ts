/**
 * NATS subjects, queue groups and JetStream buckets: the whole wire map of Hearth in one place.
 * docs/architecture.md explains who publishes and who subscribes.
 */
export const SUBJECTS = {
  /**
   * Sync invocation of one function on one executor. The executor subscribes while it holds a warm
   * pool (no queue group): the gateway chooses who serves, and a stale choice gets "no responders"
   * at once instead of a wait.
   *
   * An executor id is `<node>-<pid>`; its subjects are `hearth.x.<node>.<pid>.<fn>`, the node a token
   * of its own so that NATS permissions can confine a node's executors to `hearth.x.<node>.>`
   * ({@link SUBJECTS.invokeNode}). An id of another form (tests) gives `hearth.x.<id>.<fn>`.
   */
  invoke: (executorId: string, fn: string) => {
    const dash = executorId.lastIndexOf("-");
    const pid = executorId.slice(dash + 1);
    return dash > 0 && /^\d+$/.test(pid)
      ? `hearth.x.${executorId.slice(0, dash)}.${pid}.${fn}`
      : `hearth.x.${executorId}.${fn}`;
  },
  /** Every invocation subject of the executors of one node: what that node's executor identity may receive. */
  invokeNode: (node: string) => `hearth.x.${node}.>`,
  /**
   * Gateway → the executor holding a streamed response body: pulls of its chunks
   * (protocol/body-stream.ts). Beside the invocation subject, within the same permissions, but apart
   * from it: a pool being unloaded drains its invocation subscription and must still finish its
   * bodies. `fn` may be `*` (the executor takes every function's pulls with one subscription).
   */
  bodyPull: (executorId: string, fn: string) => `${SUBJECTS.invoke(executorId, fn)}.pull`,
  /** Executor → gateways, scheduler: per-function load, on change (≤ 10/s) and every report interval. */
  load: "hearth.load",
  /** Gateway → scheduler: requests outstanding per function, on change (≤ 10/s) and every 500 ms. */
  gatewayLoad: "hearth.gateway.load",
  /** Gateway → gateways: invocations admitted per rate-limited key in its current window, every 50 ms while any changed. */
  admissionCounts: "hearth.gateway.admission",
  /** Worker → gateways, scheduler: "this executor is gone"; its in-flight requests fail at once. */
  executorLost: "hearth.executor.lost",
  /** Gateway → scheduler: "no warm capacity for this function, place it". Request/reply. */
  activate: "hearth.activate",
  /** Scheduler leader → one worker node: a WorkerCommand (assign a pool, drain). Request/reply. */
  workerCommand: (workerId: string) => `hearth.worker.${workerId}.cmd`,
  /** Worker → scheduler: periodic node report. */
  heartbeat: "hearth.heartbeat",
  /** Scheduler leader → everyone, every tick: `{ id, epoch }`. Gateways are ready only while they hear it. */
  leader: "hearth.scheduler.leader",
  /** Gateway → scheduler leader: the cluster's status (`hearth status`). Request/reply. */
  status: "hearth.scheduler.status",
  /** Gateway → scheduler leader: drain a node `{ node }`. Request/reply. */
  drain: "hearth.scheduler.drain",
  /** Scheduler → all workers on start: "report now" so a fresh scheduler needs no full interval. */
  schedulerHello: "hearth.scheduler.hello",
} as const;

export const QUEUE_GROUPS = {
  scheduler: "scheduler",
} as const;

export const BUCKETS = {
  /** KV: function name → FunctionRecord JSON. */
  functions: "hearth_functions",
  /** Object store: bundle sha256 (hex) → classic-script JS bundle. */
  bundles: "hearth_bundles",
  /** KV: `<fn>.<versionNumber>` → VersionRecord JSON, immutable; the last 100 per function are kept. */
  versions: "hearth_versions",
  /** KV, history 1: `<fn>.<NAME>` → an AES-256-GCM sealed secret (protocol/secret-box.ts). */
  secrets: "hearth_secrets",
  /** KV: token id → TokenRecord (its SHA-256, never the token). */
  tokens: "hearth_tokens",
  /** KV: namespace name → NamespaceRecord (its quotas). */
  namespaces: "hearth_namespaces",
  /** KV, max_age = lease TTL, history 1: role → leader lease `{ id, epoch, since }` (scheduler/leader-lease.ts). */
  leader: "hearth_leader",
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
  /** How the invocation came (async, queue, cron); absent for HTTP. Only a metrics label. */
  trigger: "hearth-trigger",
  /** On a request to SUBJECTS.bodyPull: `<token>.<seq>`, a pull of the next chunk; `<token>.cancel` stops the body. */
  pull: "hearth-pull",
  /** On a pull's reply: the body has ended (empty payload). */
  end: "hearth-end",
} as const;
