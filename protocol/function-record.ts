import type { AsyncPolicy } from "./async.ts";

/**
 * How a function is run beyond the code it runs: none of it is part of `version`, so changing a
 * setting never reloads an isolate. Every field is optional (absent: the default), and a redeploy
 * that does not name a setting keeps it.
 */
export interface FunctionSettings {
  /** Isolates kept warm even when idle (default 0: scale to zero). */
  readonly minInstances?: number;
  /** Most isolates over the cluster (default: the scheduler's, 100). */
  readonly maxInstances?: number;
  /** Retries and max event age of async invocations (DEFAULT_ASYNC_POLICY when absent). */
  readonly async?: Partial<AsyncPolicy>;
  /** The namespace that owns the function (DEFAULT_NAMESPACE when absent): its tokens and quotas apply. */
  readonly namespace?: string;
  /** "public" (default): anyone may invoke it; "private": invocations need a token with invoke rights. */
  readonly access?: FunctionAccess;
  /** Invocations admitted per period over all gateways; over it the gateway answers 429. Absent: no limit. */
  readonly rateLimit?: RateLimit;
}

export type FunctionAccess = "public" | "private";

export interface RateLimit {
  readonly requests: number;
  readonly periodSeconds: number;
}

/** What the control plane stores per function, as JSON in the functions KV bucket. */
export interface FunctionRecord extends FunctionSettings {
  readonly name: string;
  /** sha256 (hex) of the classic-script bundle in the bundles object store. */
  readonly digest: string;
  readonly bundleBytes: number;
  /**
   * Changes whenever anything a worker runs changes (code, env, limits): the gateway sends it with
   * each invocation so a worker holding an older version reloads before serving.
   */
  readonly version: string;
  readonly env: Readonly<Record<string, string>>;
  readonly memoryMb: number;
  /** Wall-clock limit per invocation. */
  readonly timeoutMs: number;
  /** CPU-time limit per invocation. */
  readonly cpuMs: number;
  /** Requests in flight per isolate before the worker adds another isolate. */
  readonly concurrency: number;
  /** Request and response body limit for this function (at most the platform's). */
  readonly maxBodyBytes: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A function as the control API shows it: its record and the URL to call it at. */
export interface FunctionInfo extends FunctionRecord {
  readonly url: string;
}
