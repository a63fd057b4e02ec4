import type { TraceMap } from "@jridgewell/trace-mapping";
import {
  ASYNC_POLICY_BOUNDS,
  type AsyncPolicy,
  type FunctionAccess,
  type FunctionSettings,
  HearthError,
  LIMITS,
  parseRateLimit,
  type Runnable,
  validateNamespaceName,
} from "../protocol/index.ts";
import { validateSourceMap } from "./source-map.ts";

/** The limits a version runs under. */
export type RunLimits = Pick<Runnable, "memoryMb" | "timeoutMs" | "cpuMs" | "concurrency" | "maxBodyBytes">;

/** Each limit's bounds and its value for a function deployed without it. */
export const LIMIT_BOUNDS: { readonly [K in keyof RunLimits]: readonly [min: number, max: number, fallback: number] } =
  {
    memoryMb: [LIMITS.minMemoryMb, LIMITS.maxMemoryMb, LIMITS.defaultMemoryMb],
    timeoutMs: [LIMITS.minTimeoutMs, LIMITS.maxTimeoutMs, LIMITS.defaultTimeoutMs],
    cpuMs: [LIMITS.minCpuMs, LIMITS.maxCpuMs, LIMITS.defaultCpuMs],
    concurrency: [LIMITS.minConcurrency, LIMITS.maxConcurrency, LIMITS.defaultConcurrency],
    maxBodyBytes: [LIMITS.minBodyBytes, LIMITS.defaultMaxBodyBytes, LIMITS.defaultMaxBodyBytes],
  };

/**
 * The body of `PUT /v1/functions/:name`. Only the code is required: whatever else the request leaves
 * out keeps the function's current value (or the default, for a new function).
 */
export interface DeployRequest {
  /** A single-file ES module with a default export (the CLI bundles it). */
  readonly code: string;
  /** Used in error messages, e.g. `hello.ts:3:7: ...`. */
  readonly filename: string;
  /**
   * The source map of `code` (a version 3 map as JSON text, optional), checked against it: stored
   * with the version, it maps function stacks to the original `src/x.ts:line:col`.
   */
  readonly sourceMap?: TraceMap;
  /** The plain variables, all of them: when given, they replace the current ones. */
  readonly env?: Readonly<Record<string, string>>;
  readonly limits: Partial<RunLimits>;
  /** Settings the request names; a setting it leaves out keeps its current value. */
  readonly settings: FunctionSettings;
  /** Why this version was made, kept with it (`hearth versions ls`). */
  readonly message?: string;
  /** Serve the new version to this share of requests (1–100, default 100); the current one serves the rest. */
  readonly percent?: number;
}

/** What a variable's name (plain or secret) must match: a shell identifier. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}

/** The integer `value` when it lies in [min, max], undefined when absent; otherwise a 400 naming the field. */
function optionalInt(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
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
  const namespace = input.namespace === undefined ? undefined : validateNamespaceName(input.namespace);
  if (input.access !== undefined && input.access !== "public" && input.access !== "private") {
    throw bad(`access must be "public" or "private", got ${JSON.stringify(input.access)}`);
  }
  const access = input.access as FunctionAccess | undefined;
  const rateLimit = parseRateLimit(input.rateLimit);
  return {
    // null removes the limit: an own `rateLimit: undefined` overrides the current one when merged.
    ...(rateLimit !== undefined ? { rateLimit: rateLimit ?? undefined } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(access !== undefined ? { access } : {}),
    ...(minInstances !== undefined ? { minInstances } : {}),
    ...(maxInstances !== undefined ? { maxInstances } : {}),
    ...(asyncPolicy !== undefined ? { async: asyncPolicy } : {}),
  };
}

/** Validates a deploy body; throws ERR_BAD_REQUEST naming the bad field. */
export function parseDeployRequest(body: unknown): DeployRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("Body must be a JSON object");
  const input = body as Record<string, unknown>;
  const { code, filename = "index.js", env, message, sourceMap } = input;
  if (typeof code !== "string" || code.length === 0) throw bad("code must be a non-empty string");
  if (Buffer.byteLength(code) > LIMITS.maxBundleBytes) {
    throw new HearthError("ERR_PAYLOAD_TOO_LARGE", `code is over the ${LIMITS.maxBundleBytes} byte limit`);
  }
  if (typeof filename !== "string" || filename.length > 255)
    throw bad("filename must be a string of at most 255 characters");
  if (message !== undefined && (typeof message !== "string" || message.length > MAX_MESSAGE_CHARS)) {
    throw bad(`message must be a string of at most ${MAX_MESSAGE_CHARS} characters`);
  }
  const limits: { -readonly [K in keyof RunLimits]?: number } = {};
  for (const [field, [min, max]] of Object.entries(LIMIT_BOUNDS) as [keyof RunLimits, readonly number[]][]) {
    const value = optionalInt(input[field], field, min as number, max as number);
    if (value !== undefined) limits[field] = value;
  }
  const percent = optionalInt(input.percent, "percent", 1, 100);
  if (sourceMap !== undefined && typeof sourceMap !== "string") {
    throw new HearthError("ERR_INVALID_SOURCE_MAP", "sourceMap must be the map's JSON text, as a string");
  }
  return {
    code,
    filename,
    ...(sourceMap !== undefined ? { sourceMap: validateSourceMap(sourceMap, code) } : {}),
    ...(env !== undefined ? { env: parseEnv(env) } : {}),
    limits,
    settings: parseSettings(input),
    ...(message ? { message } : {}),
    ...(percent !== undefined ? { percent } : {}),
  };
}

const MAX_MESSAGE_CHARS = 500;

function parseEnv(env: unknown): Record<string, string> {
  if (typeof env !== "object" || env === null || Array.isArray(env)) throw bad("env must be an object of strings");
  const entries = Object.entries(env);
  if (entries.length > LIMITS.maxEnvVars) throw bad(`env may hold at most ${LIMITS.maxEnvVars} variables`);
  for (const [key, value] of entries) {
    if (!ENV_NAME.test(key)) throw bad(`env name ${JSON.stringify(key)} must match ${ENV_NAME}`);
    if (typeof value !== "string") throw bad(`env ${key} must be a string`);
    if (Buffer.byteLength(value) > LIMITS.maxEnvValueBytes)
      throw bad(`env ${key} is over ${LIMITS.maxEnvValueBytes} bytes`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}
