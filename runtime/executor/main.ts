/**
 * Entry point of an executor child process (spawned by the worker supervisor with
 * --no-node-snapshot, which isolated-vm needs on Node ≥ 20). Commands arrive over IPC.
 */
import { codeOf, connectNats, createLogger, FunctionStore, intFromEnv, LIMITS } from "../../protocol/index.ts";
import { loadBootstrap } from "../isolate/bootstrap-source.ts";
import { DEFAULT_IDLE_MS, DEFAULT_STEM_CELLS, Executor } from "./executor.ts";
import type { ExecutorMessage, ExecutorRequest } from "./ipc.ts";

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
const nc = await connectNats(natsUrl, `hearth-executor-${process.pid}`);
const executor = new Executor({
  nc,
  id,
  node,
  store: await FunctionStore.open(nc),
  bootstrap: await loadBootstrap({
    snapshot: process.env.HEARTH_SNAPSHOT !== "0",
    onFallback: (err) => log.warn({ err }, "V8 snapshot of the bootstrap failed; compiling it per isolate instead"),
  }),
  log,
  maxBodyBytes: intFromEnv(process.env, "HEARTH_MAX_BODY_BYTES", LIMITS.defaultMaxBodyBytes),
  egressAllow: process.env.HEARTH_EGRESS_ALLOW,
  idleMs: intFromEnv(process.env, "HEARTH_IDLE_MS", DEFAULT_IDLE_MS),
  stemCells: intFromEnv(process.env, "HEARTH_STEM_CELLS", DEFAULT_STEM_CELLS),
  onUnload: (name) => send({ type: "unloaded", name }),
});
await executor.start();

process.on("message", (request: ExecutorRequest) => {
  const done =
    request.type === "load"
      ? executor.load(request.name, request.maxIsolates)
      : executor.unload(request.name, request.reason);
  done.then(
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
