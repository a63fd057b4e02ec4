import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { DeployOptions, TriggerOptions } from "./client.ts";
import { parseRateLimit } from "./rate-limit-spec.ts";

/** The project file `hearth deploy` reads when it is given no entry file. */
export const PROJECT_FILE = "hearth.toml";

/** One function declared in hearth.toml, resolved: its entry is an absolute path. */
export interface ProjectFunction {
  readonly name: string;
  readonly entry: string;
  /** Everything the deploy API takes besides the code, as the file says it. */
  readonly settings: Omit<DeployOptions, "code" | "filename" | "percent" | "message">;
  readonly triggers: readonly TriggerOptions[];
}

export interface Project {
  /** The hearth.toml this came from. */
  readonly file: string;
  readonly functions: readonly ProjectFunction[];
}

/** A project file that cannot be used, worded for a person: which file, which key, what is wrong. */
export class ProjectFileError extends Error {
  readonly code = "ERR_PROJECT_FILE";
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ProjectFileError";
  }
}

/** The nearest hearth.toml from `dir` upwards (as git and wrangler look), or null. */
export function findProjectFile(dir: string = process.cwd()): string | null {
  for (let at = resolve(dir); ; at = dirname(at)) {
    const candidate = join(at, PROJECT_FILE);
    if (existsSync(candidate)) return candidate;
    if (dirname(at) === at) return null;
  }
}

type Kind = "string" | "int" | "bool" | "table" | "array";
const KIND_OF = (v: unknown): Kind | "other" =>
  typeof v === "string"
    ? "string"
    : Number.isInteger(v)
      ? "int"
      : typeof v === "boolean"
        ? "bool"
        : Array.isArray(v)
          ? "array"
          : typeof v === "object" && v !== null && !(v instanceof Date)
            ? "table"
            : "other";

/** Every key a function table may hold, with its kind; anything else is refused with a suggestion. */
const FUNCTION_KEYS: Readonly<Record<string, Kind>> = {
  name: "string",
  entry: "string",
  namespace: "string",
  private: "bool",
  rate_limit: "string",
  compatibility_date: "string",
  compatibility_flags: "array",
  env: "table",
  limits: "table",
  scaling: "table",
  async: "table",
  triggers: "array",
};
const LIMIT_KEYS = {
  memory_mb: "memoryMb",
  timeout_ms: "timeoutMs",
  cpu_ms: "cpuMs",
  concurrency: "concurrency",
  max_body_bytes: "maxBodyBytes",
} as const;
const SCALING_KEYS = { min_instances: "minInstances", max_instances: "maxInstances" } as const;
const ASYNC_KEYS = { retries: "retries", max_event_age_s: "maxEventAgeS" } as const;
const TRIGGER_KEYS = {
  source: "source",
  cron: "cron",
  batch_size: "batchSize",
  batch_wait_ms: "batchWaitMs",
  max_concurrency: "maxConcurrency",
  retries: "retries",
} as const;

/**
 * Reads and checks a hearth.toml. Values are checked for their kind here; their bounds are the
 * gateway's to check (its message names the field), as for flags.
 *
 * @example
 * [[functions]]
 * name = "hello"
 * entry = "src/hello.ts"
 * [functions.limits]
 * memory_mb = 64
 */
export function loadProject(file: string): Project {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ProjectFileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ProjectFileError(file, `is not valid TOML: ${(err as Error).message}`);
  }
  const fail = (message: string): never => {
    throw new ProjectFileError(file, message);
  };
  for (const key of Object.keys(doc)) if (key !== "functions") fail(unknownKey(key, ["functions"], ""));
  const tables = doc.functions;
  if (!Array.isArray(tables) || tables.length === 0)
    fail('declares no function: add a [[functions]] table with name = "…" and entry = "…"');
  const seen = new Set<string>();
  const functions = (tables as unknown[]).map((table, i) => {
    const fn = readFunction(table, `functions[${i}]`, dirname(file), fail);
    if (seen.has(fn.name)) fail(`declares the function "${fn.name}" twice`);
    seen.add(fn.name);
    return fn;
  });
  return { file, functions };
}

function readFunction(table: unknown, at: string, root: string, fail: (message: string) => never): ProjectFunction {
  if (KIND_OF(table) !== "table") fail(`${at} must be a table ([[functions]])`);
  const t = table as Record<string, unknown>;
  for (const [key, value] of Object.entries(t)) {
    const kind = FUNCTION_KEYS[key];
    if (!kind) fail(unknownKey(key, Object.keys(FUNCTION_KEYS), `${at}.`));
    if (KIND_OF(value) !== kind) fail(`${at}.${key} must be ${article(kind)}`);
  }
  if (typeof t.name !== "string") fail(`${at} needs name = "…"`);
  if (typeof t.entry !== "string") fail(`${at} (${t.name}) needs entry = "path/to/index.ts"`);
  if (t.compatibility_date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(t.compatibility_date as string))
    fail(`${at}.compatibility_date must look like 2026-11-01`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries((t.env as Record<string, unknown>) ?? {})) {
    if (typeof v !== "string") fail(`${at}.env.${k} must be a string (quote numbers: ${k} = "${String(v)}")`);
    env[k] = v as string;
  }
  const settings: Record<string, unknown> = {
    ...renamed(t.limits, LIMIT_KEYS, `${at}.limits`, fail),
    ...renamed(t.scaling, SCALING_KEYS, `${at}.scaling`, fail),
    ...(t.env !== undefined ? { env } : {}),
    ...(t.async !== undefined ? { async: renamed(t.async, ASYNC_KEYS, `${at}.async`, fail) } : {}),
    ...(t.namespace !== undefined ? { namespace: t.namespace } : {}),
    ...(t.private !== undefined ? { access: t.private ? "private" : "public" } : {}),
    ...(t.rate_limit !== undefined ? { rateLimit: rateLimitOf(t.rate_limit as string, `${at}.rate_limit`, fail) } : {}),
  };
  const triggers = ((t.triggers as unknown[]) ?? []).map((trigger, j) => {
    const where = `${at}.triggers[${j}]`;
    const options = renamed(trigger, TRIGGER_KEYS, where, fail) as TriggerOptions;
    if ((options.source === undefined) === (options.cron === undefined))
      fail(`${where} needs exactly one of source = "nats://…" and cron = "…"`);
    return options;
  });
  return {
    name: t.name as string,
    entry: resolve(root, t.entry as string),
    settings: settings as ProjectFunction["settings"],
    triggers,
  };
}

/** A sub-table's snake_case keys under their API names; each value a string or an integer as declared. */
function renamed(
  table: unknown,
  names: Readonly<Record<string, string>>,
  at: string,
  fail: (message: string) => never,
): Record<string, unknown> {
  if (table === undefined) return {};
  if (KIND_OF(table) !== "table") fail(`${at} must be a table`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(table as Record<string, unknown>)) {
    const name = names[key];
    if (!name) fail(unknownKey(key, Object.keys(names), `${at}.`));
    const expected = key === "source" || key === "cron" ? "string" : "int";
    if (KIND_OF(value) !== expected) fail(`${at}.${key} must be ${article(expected)}`);
    out[name as string] = value;
  }
  return out;
}

function rateLimitOf(value: string, at: string, fail: (message: string) => never) {
  try {
    return parseRateLimit(value, at);
  } catch (err) {
    return fail((err as Error).message);
  }
}

function article(kind: Kind): string {
  return { string: "a string", int: "an integer", bool: "true or false", table: "a table", array: "an array" }[kind];
}

/** "… is not a setting; did you mean memory_mb?" when one is close. */
function unknownKey(key: string, known: readonly string[], prefix: string): string {
  const near = known.find((k) => editDistance(k, key) <= 2);
  return `${prefix}${key} is not a setting${near ? `; did you mean ${near}?` : ` (known: ${known.join(", ")})`}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length] as number;
}
