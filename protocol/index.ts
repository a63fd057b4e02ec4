/**
 * The wire protocol shared by every Hearth process: subjects, buckets, headers, codecs, error codes.
 * Depends on nothing but the NATS client.
 */

export type {
  AsyncPolicy,
  IdempotencyClaim,
  InvocationState,
  InvocationStatus,
  StoredResponse,
  TriggerRecord,
  TriggerSource,
} from "./async.ts";
export {
  ASYNC_BUCKETS,
  ASYNC_HEADERS,
  ASYNC_POLICY_BOUNDS,
  ASYNC_SUBJECTS,
  CONSUMERS,
  DEFAULT_ASYNC_POLICY,
  IDEMPOTENCY_TTL_MS,
  INLINE_RESULT_BYTES,
  RESULT_RETENTION_MS,
  retryDelayMs,
  STREAMS,
  TRIGGER_DEFAULTS,
} from "./async.ts";
export type { AsyncSubmission, ClaimResult } from "./async-store.ts";
export { AsyncStore, fingerprintOf } from "./async-store.ts";
export { DUPLICATE_WINDOW_MS, ensureAsyncStreams } from "./async-streams.ts";
export { formatBuildErrors } from "./build-errors.ts";
export type { ClusterStatus, ClusterStatusWithRoutes, ScaleDecisionRecord } from "./cluster-status.ts";
export type { NatsAuthKind, NatsSettings } from "./connect.ts";
export { connectNats, inboxPrefixOf, natsOptionsFromEnv } from "./connect.ts";
export { intFromEnv, onShutdownSignal, requireEnv } from "./env.ts";
export { EpochFence } from "./epoch-fence.ts";
export type { ErrorCode } from "./errors.ts";
export { codeOf, ERROR_CODES, HearthError, isErrorCode, statusOfCode } from "./errors.ts";
export type {
  CanaryVersion,
  FunctionAccess,
  FunctionInfo,
  FunctionRecord,
  FunctionSettings,
  RateLimit,
  Runnable,
  VersionRecord,
} from "./function-record.ts";
export type { FunctionChange } from "./function-store.ts";
export { FunctionStore } from "./function-store.ts";
export type { ExecutorInfo, WorkerHeartbeat } from "./heartbeat.ts";
export { parseHeartbeat } from "./heartbeat.ts";
export type { HeaderPairs, InvocationMessage, InvocationReply, RequestHead, ResponseHead } from "./invocation.ts";
export {
  decodeInvocation,
  decodeReply,
  encodeErrorReply,
  encodeInvocation,
  encodeResponseHeaders,
} from "./invocation.ts";
export type { RecordChange } from "./kv-watch.ts";
export { watchRecords } from "./kv-watch.ts";
export { LIMITS } from "./limits.ts";
export type { ExecutorLost, FunctionLoad, GatewayLoadReport, LoadReport } from "./load-report.ts";
export {
  isExecutorId,
  LOAD_REPORT_INTERVAL_MS,
  LOAD_REPORT_MIN_GAP_MS,
  LOAD_REPORT_STALE_MS,
  parseExecutorLost,
  parseGatewayLoadReport,
  parseLoadReport,
} from "./load-report.ts";
export type { Logger } from "./logger.ts";
export { createLogger, silentLogger } from "./logger.ts";
export { validateFunctionName } from "./names.ts";
export { DEFAULT_NAMESPACE, type NamespaceQuotas, type NamespaceRecord } from "./namespace-record.ts";
export type { ReporterOptions } from "./reporter.ts";
export { Reporter } from "./reporter.ts";
export type { NoReplyReason } from "./request-mux.ts";
export { NoReplyError, noReplyFailure, RequestMux } from "./request-mux.ts";
export type { ActivateReply, DrainReply } from "./scheduler-replies.ts";
export { SingleFlight } from "./single-flight.ts";
export { BUCKETS, HEADERS, QUEUE_GROUPS, SUBJECTS } from "./subjects.ts";
export { terminate } from "./terminate.ts";
export { isTriggerId, TriggerStore } from "./trigger-store.ts";
export type { WorkerCommand, WorkerCommandReply } from "./worker-command.ts";
export { parseWorkerCommand } from "./worker-command.ts";
export { WriteCoalescer } from "./write-coalescer.ts";
