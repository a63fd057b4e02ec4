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

/**
 * What a worker runs for one version of a function: code, plain variables, limits and the revisions
 * of the secrets it is given. `version` is a hash of all of it, so two equal deploys share it.
 */
export interface Runnable {
  /** sha256 (hex) of the classic-script bundle in the bundles object store. */
  readonly digest: string;
  readonly bundleBytes: number;
  /**
   * A hash of everything else here: the gateway sends it with each invocation so a worker holding
   * another version loads this one before serving.
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
  /**
   * Secret name → the KV revision of its sealed value (protocol/secret-store.ts). The values are
   * not here: a worker unseals them when it loads the version. A changed secret is a new version.
   */
  readonly secrets?: Readonly<Record<string, number>>;
  /**
   * sha256 (hex) of the version's source map in the bundles object store, when the deploy sent one:
   * executors read it only to map a stack (never on a cold start), so stacks name `src/x.ts:line:col`.
   */
  readonly sourceMapDigest?: string;
}

/** One immutable version of a function, kept in the versions bucket under `<fn>.<id>`. */
export interface VersionRecord extends Runnable {
  readonly fn: string;
  /** 1, 2, 3, ... per function: what `hearth rollback --to` and the version headers name. */
  readonly id: number;
  readonly createdAt: string;
  /** Why it was made: the deployer's message, or what made it ("secret API_KEY changed"). */
  readonly message?: string;
}

/** The second version of a canary deployment, served to `percent` of the requests. */
export interface CanaryVersion extends Runnable {
  readonly id: number;
  /** 1–99; the function's own version serves the rest. */
  readonly percent: number;
}

/**
 * What the control plane stores per function, as JSON in the functions KV bucket: its settings and
 * its deployment, the version it serves (the Runnable fields here) and, during a canary, a second.
 */
export interface FunctionRecord extends FunctionSettings, Runnable {
  readonly name: string;
  /** The VersionRecord id of the version served (to every request, or to 100 − canary.percent). */
  readonly versionId: number;
  readonly canary?: CanaryVersion;
  /** The version that served every request before this deployment began: where `rollback` returns. */
  readonly previousVersionId?: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A function as the control API shows it: its record and the URL to call it at. */
export interface FunctionInfo extends FunctionRecord {
  readonly url: string;
}
