import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const DEFAULT_URL = "http://127.0.0.1:8080";

/** Where `hearth dev` keeps its data and the generated admin token: HEARTH_HOME, else ~/.hearth. */
export function hearthHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HEARTH_HOME || join(homedir(), ".hearth");
}

export function tokenPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(hearthHome(env), "token");
}

/** Where `hearth dev` keeps the key it seals secrets with (base64), unless HEARTH_SECRETS_KEY is set. */
export function secretsKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(hearthHome(env), "secrets-key");
}

/** How the CLI finds the cluster: HEARTH_URL and HEARTH_TOKEN, else the token `hearth dev` saved. */
export function resolveClientConfig(env: NodeJS.ProcessEnv = process.env): { url: string; token: string | undefined } {
  let token = env.HEARTH_TOKEN || undefined;
  if (!token) {
    try {
      token = readFileSync(tokenPath(env), "utf8").trim() || undefined;
    } catch {
      token = undefined;
    }
  }
  return { url: (env.HEARTH_URL || DEFAULT_URL).replace(/\/+$/, ""), token };
}
