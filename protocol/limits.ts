/** Defaults and bounds for per-function settings; the gateway validates deploys against them. */
export const LIMITS = {
  defaultMemoryMb: 128,
  minMemoryMb: 16,
  maxMemoryMb: 1024,
  /** CPU time per invocation (Workers' free plan allows 10 ms, its paid default is 30 s). */
  defaultCpuMs: 50,
  minCpuMs: 1,
  maxCpuMs: 30_000,
  /** Requests in flight per isolate before the pool adds an isolate. */
  defaultConcurrency: 32,
  minConcurrency: 1,
  maxConcurrency: 1_000,
  /** Isolates per function over the cluster: at most this many (`--max-instances`), kept warm at least (`--min-instances`). */
  maxInstances: 1_000,
  defaultTimeoutMs: 30_000,
  minTimeoutMs: 10,
  maxTimeoutMs: 15 * 60_000,
  /** Request and response bodies (Lambda's sync limit, also Workers' free plan order of size). */
  defaultMaxBodyBytes: 6 * 1024 * 1024,
  /** A function may lower its own body limit (never raise it past the platform's). */
  minBodyBytes: 1024,
  /** A bundled function's source; Workers allows 3–10 MB. */
  maxBundleBytes: 10 * 1024 * 1024,
  /**
   * A bundle's source map (JSON, sourcesContent included). Maps with sources run to 2–4× their
   * bundle; 16 MiB covers a large bundle's map, and bounds what one deploy holds in the gateway.
   */
  maxSourceMapBytes: 16 * 1024 * 1024,
  maxEnvVars: 128,
  maxEnvValueBytes: 5 * 1024,
  /** Room for NATS headers (the request metadata JSON) inside one NATS message. */
  natsHeaderHeadroomBytes: 256 * 1024,
} as const;
