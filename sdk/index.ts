/**
 * The Hearth SDK: a typed client of the control API, the esbuild bundler the CLI uses, handler
 * types for function authors, and the local-cluster launcher behind `hearth dev`.
 */

export type { Bundle } from "./bundle.ts";
export { BundleError, buildBundle } from "./bundle.ts";
export type {
  AsyncInvocation,
  AsyncInvokeOptions,
  AsyncPolicy,
  ClusterStatus,
  DeadLetterListOptions,
  DeadLetterPage,
  DeadLetterView,
  DeployOptions,
  FunctionInfo,
  HearthClientOptions,
  InvocationView,
  InvokeOptions,
  InvokeResponse,
  ResponseView,
  TriggerOptions,
  TriggerView,
} from "./client.ts";
export { HearthApiError, HearthClient } from "./client.ts";
export { DEFAULT_URL, hearthHome, resolveClientConfig, tokenPath } from "./config.ts";
export type { LocalCluster, LocalClusterOptions } from "./dev/cluster.ts";
export { startLocalCluster } from "./dev/cluster.ts";
export type { NatsServer, NatsServerOptions } from "./dev/nats-server.ts";
export { findNatsServer, freePort, NATS_INSTALL_HINT, startNatsServer } from "./dev/nats-server.ts";
export type {
  Env,
  ExecutionContext,
  ExportedHandler,
  FunctionModule,
  Message,
  MessageBatch,
  QueueRetryOptions,
  ScheduledController,
  ScheduledEvent,
} from "./types.ts";
