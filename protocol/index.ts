/**
 * The wire protocol shared by every Hearth process: subjects, buckets, headers, codecs, error codes.
 * Depends on nothing but the NATS client.
 */

export type { AdmissionCounts } from "./admission-counts.ts";
export { ADMISSION_COUNTS_MAX_ENTRIES, parseAdmissionCounts } from "./admission-counts.ts";
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
export type { BackupEnd, BackupItem, BackupManifest, BucketCount } from "./backup-format.ts";
export { BACKUP_FORMAT, BACKUP_VERSION, backupLine, OBJECT_CHUNK_BYTES, readBackup } from "./backup-format.ts";
export type { BodyPull } from "./body-stream.ts";
export { decodeChunk, decodePull, encodeCancel, encodeEnd, encodePull } from "./body-stream.ts";
export { formatBuildErrors } from "./build-errors.ts";
export type { ClusterStatus, ClusterStatusWithRoutes, ScaleDecisionRecord } from "./cluster-status.ts";
export type { NatsAuthKind, NatsSettings } from "./connect.ts";
export { connectNats, inboxPrefixOf, natsOptionsFromEnv } from "./connect.ts";
export type { ControlStore } from "./control-state.ts";
export { CONTROL_STATE, RUNTIME_STATE } from "./control-state.ts";
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
export type {
  HeaderPairs,
  InvocationMessage,
  InvocationReply,
  InvocationTrigger,
  RequestHead,
  ResponseHead,
} from "./invocation.ts";
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
export type { LogEntry, LogKind, LogLevel } from "./logs.ts";
export {
  decodeLogEntry,
  encodeLogEntry,
  ensureLogStream,
  LOG_RETENTION,
  LOG_STREAM,
  LOG_SUBJECTS,
  logStreamConfig,
} from "./logs.ts";
export { modulePath } from "./module-path.ts";
export { isValidName, validateFunctionName, validateNamespaceName } from "./names.ts";
export { DEFAULT_NAMESPACE, type NamespaceQuotas, type NamespaceRecord } from "./namespace-record.ts";
export { NamespaceStore } from "./namespace-store.ts";
export { parseRateLimit, RATE_LIMIT_BOUNDS } from "./rate-limit.ts";
export type { ReporterOptions } from "./reporter.ts";
export { Reporter } from "./reporter.ts";
export type { NoReplyReason } from "./request-mux.ts";
export { NoReplyError, noReplyFailure, RequestMux } from "./request-mux.ts";
export type { ActivateReply, DrainReply } from "./scheduler-replies.ts";
export { parseSecretKey, type SecretKey, SecretKeyring } from "./secret-box.ts";
export { type ReencryptReport, type SecretInfo, SecretStore } from "./secret-store.ts";
export { SingleFlight } from "./single-flight.ts";
export { BUCKETS, HEADERS, QUEUE_GROUPS, SUBJECTS } from "./subjects.ts";
export { terminate } from "./terminate.ts";
export type { Scope, TokenRecord, TokenView } from "./token-record.ts";
export {
  generateToken,
  hashToken,
  isTokenId,
  MAX_SCOPES,
  parseScope,
  parseScopes,
  parseTokenName,
  TOKEN_PREFIX,
} from "./token-record.ts";
export { TokenStore } from "./token-store.ts";
export type { TraceContext, TraceParent } from "./trace-context.ts";
export {
  continueTrace,
  formatTraceparent,
  parseTraceparent,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  traceIdOfHeaders,
  traceIdOfRequestJson,
  traceOfHeaders,
  withTraceHeaders,
} from "./trace-context.ts";
export { isTriggerId, TriggerStore } from "./trigger-store.ts";
export { KEPT_VERSIONS, VersionStore } from "./version-store.ts";
export type { WorkerCommand, WorkerCommandReply } from "./worker-command.ts";
export { parseWorkerCommand } from "./worker-command.ts";
export { WriteCoalescer } from "./write-coalescer.ts";
