/**
 * Entry point of an executor child process (spawned by the worker supervisor with
 * --no-node-snapshot, which isolated-vm needs on Node ≥ 20). Commands arrive over IPC.
 */
import {
  codeOf,
  connectNats,
  createLogger,
  type FunctionRecord,
  HearthError,
  intFromEnv,
  LIMITS,
  natsOptionsFromEnv,
} from "../../protocol/index.ts";
import { loadBootstrap } from "../isolate/bootstrap-source.ts";
import { openBundleStore } from "./bundle-cache.ts";
import { DEFAULT_IDLE_MS, DEFAULT_STEM_CELLS, Executor } from "./executor.ts";
import { ExecutorMetrics } from "./executor-metrics.ts";
import type { ExecutorMessage, ExecutorRequest, SupervisorMessage } from "./ipc.ts";
import { DEFAULT_LOG_RATE } from "./log-publisher.ts";

/** A record query the supervisor does not answer in this time fails the request that needed it. */
const RECORD_QUERY_TIMEOUT_MS = 5_000;

const log = createLogger("executor");
const natsUrl = process.env.NATS_URL;
const node = process.env.HEARTH_NODE_ID;
if (!natsUrl || !node || !process.send) {
  log.fatal("executor must be spawned by a worker with NATS_URL, HEARTH_NODE_ID and an IPC channel");
  process.exit(2);
}
/** Unique on its node by pid, and across nodes by the node id. */
const id = `${node}-${process.pid}`;

// After the supervisor is gone, sending would raise an unhandled 'error' event.
const send = (message: ExecutorMessage) => {
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
};
// The executor's own NATS identity (the worker maps HEARTH_EXECUTOR_NATS_* to NATS_*), never the worker's.
const nc = await connectNats(natsOptionsFromEnv(process.env), `hearth-executor-${process.pid}`, log);

/** Record queries to the supervisor awaiting its answer, by request id. */
const queries = new Map<number, (record: FunctionRecord | null) => void>();
let nextQueryId = 1;
function queryRecord(name: string, version: string): Promise<FunctionRecord | null> {
  const requestId = nextQueryId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      queries.delete(requestId);
      reject(new HearthError("ERR_INTERNAL", `The worker did not send the record of ${name} in time`));
    }, RECORD_QUERY_TIMEOUT_MS);
    queries.set(requestId, (record) => {
      clearTimeout(timer);
      resolve(record);
    });
    send({ type: "record-query", requestId, name, version });
  });
}

// Kept here, collected by the worker over IPC when it is scraped: nothing is sent per invocation.
const metrics = new ExecutorMetrics();
const executor = new Executor({
  metrics,
  nc,
  id,
  node,
  // Bundles only: records (and their env) come from the worker, for the functions hosted here.
  bundles: await openBundleStore(nc),
  fetchRecord: queryRecord,
  bootstrap: await loadBootstrap({
    snapshot: process.env.HEARTH_SNAPSHOT !== "0",
    onFallback: (err) => log.warn({ err }, "V8 snapshot of the bootstrap failed; compiling it per isolate instead"),
  }),
  log,
  maxBodyBytes: intFromEnv(process.env, "HEARTH_MAX_BODY_BYTES", LIMITS.defaultMaxBodyBytes),
  egressAllow: process.env.HEARTH_EGRESS_ALLOW,
  idleMs: intFromEnv(process.env, "HEARTH_IDLE_MS", DEFAULT_IDLE_MS),
  stemCells: intFromEnv(process.env, "HEARTH_STEM_CELLS", DEFAULT_STEM_CELLS),
  logRate: {
    linesPerSecond: intFromEnv(process.env, "HEARTH_LOG_LINES_PER_SECOND", DEFAULT_LOG_RATE.linesPerSecond),
    burst: intFromEnv(process.env, "HEARTH_LOG_BURST", DEFAULT_LOG_RATE.burst),
  },
  onUnload: (name) => send({ type: "unloaded", name }),
  onRetire: (reason) => send({ type: "retire", reason }),
});
await executor.start();

function carryOut(request: ExecutorRequest): Promise<void> {
  switch (request.type) {
    case "load":
      return executor.load(request.record, request.maxIsolates);
    case "update":
      return executor.update(request.record);
    case "remove":
      return executor.remove(request.name);
    case "unload":
      return executor.unload(request.name, request.reason);
  }
}

process.on("message", (message: SupervisorMessage) => {
  if (message.type === "prefetch") {
    executor.prefetch(message.digest);
    return;
  }
  if (message.type === "record") {
    queries.get(message.requestId)?.(message.record);
    queries.delete(message.requestId);
    return;
  }
  if (message.type === "metrics-query") {
    const { requestId } = message;
    metrics.registry.getMetricsAsJSON().then(
      (json) => send({ type: "metrics", requestId, metrics: json }),
      (err: unknown) => {
        log.error({ err }, "collecting metrics failed");
        send({ type: "metrics", requestId, metrics: [] });
      },
    );
    return;
  }
  const request = message;
  carryOut(request).then(
    () => send({ type: "reply", requestId: request.requestId, ok: true }),
    (err: unknown) =>
      send({
        type: "reply",
        requestId: request.requestId,
        ok: false,
        code: codeOf(err),
        message: err instanceof Error ? err.message : String(err),
      }),
  );
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await executor.close().catch((err: unknown) => log.error({ err }, "executor close failed"));
  await nc.drain().catch(() => {});
  process.exit(0);
}
// The supervisor going away (IPC closed) or asking us to stop both end this executor.
process.on("disconnect", () => void stop());
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => {}); // Ctrl-C reaches the whole process group; the supervisor decides.

send({ type: "ready", id });
