import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Environment variables, as `process.env` has them; not NodeJS.ProcessEnv, so the `hearth-sdk` package's
 * declarations need no @types/node.
 */
export type Environment = Readonly<Record<string, string | undefined>>;

export const DEFAULT_URL = "http://127.0.0.1:8080";

/** Where `hearth dev` keeps its data and the generated admin token: HEARTH_HOME, else ~/.hearth. */
export function hearthHome(env: Environment = process.env): string {
  return env.HEARTH_HOME || join(homedir(), ".hearth");
}

export function tokenPath(env: Environment = process.env): string {
  return join(hearthHome(env), "token");
}

/** Where `hearth dev` keeps the key it seals secrets with (base64), unless HEARTH_SECRETS_KEY is set. */
export function secretsKeyPath(env: Environment = process.env): string {
  return join(hearthHome(env), "secrets-key");
}

/** Where a running `hearth dev` records its gateway's URL, so another shell's CLI finds it. */
export function clusterUrlPath(env: Environment = process.env): string {
  return join(hearthHome(env), "url");
}

/**
 * How the CLI finds the cluster: HEARTH_URL, else the URL a running `hearth dev` recorded, else
 * 127.0.0.1 on HEARTH_PORT (as `hearth dev` would listen), else the default; HEARTH_TOKEN, else the
 * token `hearth dev` saved.
 */
export function resolveClientConfig(env: Environment = process.env): { url: string; token: string | undefined } {
  const token = env.HEARTH_TOKEN || readSaved(tokenPath(env));
  const url =
    env.HEARTH_URL ||
    readSaved(clusterUrlPath(env)) ||
    (env.HEARTH_PORT ? `http://127.0.0.1:${env.HEARTH_PORT}` : DEFAULT_URL);
  return { url: url.replace(/\/+$/, ""), token };
}

/** A file's trimmed text, or undefined when it is missing or empty. */
function readSaved(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
