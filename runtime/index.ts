/** The worker node: executor processes hosting function isolates. */

export type { ExecutorOptions } from "./executor/executor.ts";
export { Executor } from "./executor/executor.ts";
export { buildExecutorEnv } from "./executor-process.ts";
export type { Bootstrap } from "./isolate/bootstrap-source.ts";
export { loadBootstrap } from "./isolate/bootstrap-source.ts";
export { CodeCache } from "./isolate/code-cache.ts";
export { CpuWatchdog } from "./isolate/cpu-watchdog.ts";
export type {
  EventError,
  QueueDecision,
  QueueMessageInput,
  QueueResult,
  ScheduledResult,
} from "./isolate/events.ts";
export {
  decodeQueueOutcome,
  decodeScheduledOutcome,
  encodeQueueEvent,
  encodeScheduledEvent,
} from "./isolate/events.ts";
export type { FunctionCode, InvokeOutcome, IsolateDeps, IsolateEvents } from "./isolate/function-isolate.ts";
export { FunctionIsolate, POST_RESPONSE_MS, STARTUP_TIMEOUT_MS, scriptNameOf } from "./isolate/function-isolate.ts";
export { mapStack, parseSourceMap, withoutHostFrames } from "./isolate/map-stack.ts";
export { StemCells } from "./isolate/stem-cells.ts";
export { main } from "./main.ts";
export type { EgressPolicy } from "./outbound/egress-policy.ts";
export { createEgressPolicy } from "./outbound/egress-policy.ts";
export { OutboundFetch } from "./outbound/outbound-fetch.ts";
export type { WorkerOptions } from "./worker.ts";
export { Worker } from "./worker.ts";
export type { ExecutorRestartReason } from "./worker-metrics.ts";
export { WorkerMetrics } from "./worker-metrics.ts";
