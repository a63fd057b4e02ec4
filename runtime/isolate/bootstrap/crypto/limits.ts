/**
 * Caps on crypto.subtle work, shared by the bootstrap (which refuses early, with a clear error) and
 * the host (which enforces them, since a function can tamper with its own bootstrap).
 */
export const CRYPTO_LIMITS = Object.freeze({
  /** Bytes one operation may carry to the host (data, signature, key, parameters): 8 MiB. */
  maxBytesPerOp: 8 * 1024 * 1024,
  /**
   * Host operations one isolate has in flight; more wait in the isolate. Node runs Web Crypto jobs
   * on libuv's thread pool (4 threads by default, UV_THREADPOOL_SIZE), which DNS lookups for fetch()
   * and file reads share: one isolate may take half of it, never all.
   */
  maxInFlight: 2,
  /**
   * Cloudflare's workerd refuses more ("NotSupportedError: Pbkdf2 failed: iteration counts above
   * 100000 are not supported"), so code written for Workers already fits, and one call stays bounded.
   */
  maxPbkdf2Iterations: 100_000,
  /** RSA generation is the costliest host operation (≈ 0.1–1 s at 4096 bits); bigger keys are refused. */
  maxRsaGenerateBits: 4096,
  /** Imported RSA keys may be larger (JWKS in the wild), but not without bound. */
  maxRsaImportBits: 8192,
});
