import type { AsyncPolicy } from "./async.ts";

/** What the control plane stores per function, as JSON in the functions KV bucket. */
export interface FunctionRecord {
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
  /** Isolates kept warm even when idle (default 0: scale to zero). Not part of `version`. */
  readonly minInstances?: number;
  /** Most isolates over the cluster (default: the scheduler's, 100). Not part of `version`. */
  readonly maxInstances?: number;
  /** Retries and max event age of async invocations (DEFAULT_ASYNC_POLICY when absent). Not part of `version`. */
  readonly async?: Partial<AsyncPolicy>;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A function as the control API shows it: its record and the URL to call it at. */
export interface FunctionInfo extends FunctionRecord {
  readonly url: string;
}
