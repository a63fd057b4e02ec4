import {
  ASYNC_POLICY_BOUNDS,
  type AsyncPolicy,
  type FunctionSettings,
  HearthError,
  LIMITS,
} from "../protocol/index.ts";

/** The body of `PUT /v1/functions/:name`. */
export interface DeployRequest {
  /** A single-file ES module with a default export (the CLI bundles it). */
  readonly code: string;
  /** Used in error messages, e.g. `hello.ts:3:7: ...`. */
  readonly filename: string;
  readonly env: Readonly<Record<string, string>>;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly cpuMs: number;
  readonly concurrency: number;
  readonly maxBodyBytes: number;
  /** Settings the request names; a setting it leaves out keeps its current value. */
  readonly settings: FunctionSettings;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}

function intInRange(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalInt(value: unknown, field: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : intInRange(value, field, min, max, min);
}

/** `{ retries?, maxEventAgeS? }` within ASYNC_POLICY_BOUNDS; undefined when absent or empty. */
function parseAsyncPolicy(value: unknown): Partial<AsyncPolicy> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad("async must be an object like { retries: 2, maxEventAgeS: 3600 }");
  }
  const fields = Object.keys(ASYNC_POLICY_BOUNDS) as (keyof AsyncPolicy)[];
  const unknown = Object.keys(value).filter((key) => !(fields as string[]).includes(key));
  // A typo such as `retry` would otherwise deploy silently with the default.
  if (unknown.length > 0) throw bad(`async may only hold ${fields.join(" and ")}, got ${unknown.join(", ")}`);
  const policy: { -readonly [K in keyof AsyncPolicy]?: number } = {};
  for (const field of fields) {
    const [min, max] = ASYNC_POLICY_BOUNDS[field];
    const n = optionalInt((value as Record<string, unknown>)[field], `async.${field}`, min, max);
    if (n !== undefined) policy[field] = n;
  }
  return Object.keys(policy).length > 0 ? policy : undefined;
}

/** The settings a deploy body names (FunctionSettings); absent fields stay absent. */
function parseSettings(input: Record<string, unknown>): FunctionSettings {
  const minInstances = optionalInt(input.minInstances, "minInstances", 0, LIMITS.maxInstances);
  const maxInstances = optionalInt(input.maxInstances, "maxInstances", 1, LIMITS.maxInstances);
  if (minInstances !== undefined && maxInstances !== undefined && minInstances > maxInstances) {
    throw bad(`minInstances (${minInstances}) must not be over maxInstances (${maxInstances})`);
  }
  const asyncPolicy = parseAsyncPolicy(input.async);
  return {
    ...(minInstances !== undefined ? { minInstances } : {}),
    ...(maxInstances !== undefined ? { maxInstances } : {}),
    ...(asyncPolicy !== undefined ? { async: asyncPolicy } : {}),
  };
}

/** Validates a deploy body; throws ERR_BAD_REQUEST naming the bad field. */
export function parseDeployRequest(body: unknown): DeployRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("Body must be a JSON object");
  const input = body as Record<string, unknown>;
  const { code, filename = "index.js", env = {} } = input;
  if (typeof code !== "string" || code.length === 0) throw bad("code must be a non-empty string");
  if (Buffer.byteLength(code) > LIMITS.maxBundleBytes) {
    throw new HearthError("ERR_PAYLOAD_TOO_LARGE", `code is over the ${LIMITS.maxBundleBytes} byte limit`);
  }
  if (typeof filename !== "string" || filename.length > 255)
    throw bad("filename must be a string of at most 255 characters");
  if (typeof env !== "object" || env === null || Array.isArray(env)) throw bad("env must be an object of strings");
  const entries = Object.entries(env);
  if (entries.length > LIMITS.maxEnvVars) throw bad(`env may hold at most ${LIMITS.maxEnvVars} variables`);
  for (const [key, value] of entries) {
    if (!ENV_NAME.test(key)) throw bad(`env name ${JSON.stringify(key)} must match ${ENV_NAME}`);
    if (typeof value !== "string") throw bad(`env ${key} must be a string`);
    if (Buffer.byteLength(value) > LIMITS.maxEnvValueBytes)
      throw bad(`env ${key} is over ${LIMITS.maxEnvValueBytes} bytes`);
  }
  return {
    settings: parseSettings(input),
    code,
    filename,
    env: Object.fromEntries(entries) as Record<string, string>,
    memoryMb: intInRange(input.memoryMb, "memoryMb", LIMITS.minMemoryMb, LIMITS.maxMemoryMb, LIMITS.defaultMemoryMb),
    timeoutMs: intInRange(
      input.timeoutMs,
      "timeoutMs",
      LIMITS.minTimeoutMs,
      LIMITS.maxTimeoutMs,
      LIMITS.defaultTimeoutMs,
    ),
    cpuMs: intInRange(input.cpuMs, "cpuMs", LIMITS.minCpuMs, LIMITS.maxCpuMs, LIMITS.defaultCpuMs),
    concurrency: intInRange(
      input.concurrency,
      "concurrency",
      LIMITS.minConcurrency,
      LIMITS.maxConcurrency,
      LIMITS.defaultConcurrency,
    ),
    maxBodyBytes: intInRange(
      input.maxBodyBytes,
      "maxBodyBytes",
      LIMITS.minBodyBytes,
      LIMITS.defaultMaxBodyBytes,
      LIMITS.defaultMaxBodyBytes,
    ),
  };
}
