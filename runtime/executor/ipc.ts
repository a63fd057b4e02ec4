import type { MetricObjectWithValues, MetricValue } from "prom-client";
import type { ErrorCode, FunctionRecord } from "../../protocol/index.ts";

/**
 * Supervisor → executor commands over the child-process IPC channel. The worker owns the function
 * records (it watches the store); an executor is sent the record of each function it hosts, and
 * nothing about the others, so a compromised executor holds only its own functions' env.
 */
export type ExecutorCommand =
  /** Load a function (or resize it when loaded); `maxIsolates` caps its pool. */
  | { readonly type: "load"; readonly record: FunctionRecord; readonly maxIsolates?: number }
  /** A new version of a function this executor hosts (or is loading): swap its pool to it. */
  | { readonly type: "update"; readonly record: FunctionRecord }
  /** A hosted function was removed from the store: unload it and do not finish a load under way. */
  | { readonly type: "remove"; readonly name: string }
  | { readonly type: "unload"; readonly name: string; readonly reason?: string };

export type ExecutorRequest = ExecutorCommand & { readonly requestId: number };

/** Supervisor → executor, no reply: fetch this bundle into the cache (a deploy; its first call is near). */
export interface PrefetchNotice {
  readonly type: "prefetch";
  readonly digest: string;
}

/** Supervisor → executor: the answer to a {@link RecordQuery}; null when none (removed, or not hosted here). */
export interface RecordAnswer {
  readonly type: "record";
  readonly requestId: number;
  readonly record: FunctionRecord | null;
}

/** Supervisor → executor: send your metrics (the worker is being scraped). Answered by a {@link MetricsAnswer}. */
export interface MetricsQuery {
  readonly type: "metrics-query";
  readonly requestId: number;
}

/** Executor → supervisor: its registry as prom-client's `getMetricsAsJSON()` gives it, for aggregation. */
export interface MetricsAnswer {
  readonly type: "metrics";
  readonly requestId: number;
  readonly metrics: MetricObjectWithValues<MetricValue<string>>[];
}

/** Everything the supervisor sends an executor. */
export type SupervisorMessage = ExecutorRequest | PrefetchNotice | RecordAnswer | MetricsQuery;

/**
 * Executor → supervisor: a request named a version of a hosted function this executor does not have
 * (the gateway saw a deploy first). The supervisor answers with the current record.
 */
export interface RecordQuery {
  readonly type: "record-query";
  readonly requestId: number;
  readonly name: string;
  readonly version: string;
}

/**
 * Executor → supervisor: replace me. An isolate's thread is stuck in code V8 cannot interrupt, or the
 * process is over its memory bound; only ending the process frees either. The supervisor starts a
 * replacement and moves this executor's functions to it before stopping this one.
 */
export interface RetireRequest {
  readonly type: "retire";
  readonly reason: string;
}

/** Executor → supervisor messages: a reply to one request, a record query, a retirement, or the one-time ready signal. */
export type ExecutorMessage =
  | { readonly type: "ready"; readonly id: string }
  | RetireRequest
  | MetricsAnswer
  | { readonly type: "unloaded"; readonly name: string }
  | RecordQuery
  | { readonly type: "reply"; readonly requestId: number; readonly ok: true }
  | {
      readonly type: "reply";
      readonly requestId: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
    };
