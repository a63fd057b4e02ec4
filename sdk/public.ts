/**
 * The public API of the `hearth-sdk` package, for projects that deploy functions: a typed client of the
 * control API, the esbuild bundler the CLI uses, and handler types for function authors. Nothing here
 * loads server code (isolated-vm, NATS): that is `hearth-server`'s (server.ts).
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
export type { Project, ProjectFunction } from "./project.ts";
export { findProjectFile, loadProject, PROJECT_FILE, ProjectFileError } from "./project.ts";
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
