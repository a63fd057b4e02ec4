import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { SecretKeyring } from "../../protocol/index.ts";
import { secretsKeyPath } from "../config.ts";

/**
 * The key `hearth dev` seals secrets with: HEARTH_SECRETS_KEY, else the one it saved, else 32 new
 * random bytes saved (base64, mode 0600) beside the admin token, so secrets survive restarts. A
 * malformed key (in the environment or the file) fails here, naming its source, not in a component.
 */
export function resolveSecretsKey(env: NodeJS.ProcessEnv): { key: string; savedAt: string | null } {
  if (env.HEARTH_SECRETS_KEY) {
    SecretKeyring.fromEnv(env);
    return { key: env.HEARTH_SECRETS_KEY, savedAt: null };
  }
  const path = secretsKeyPath(env);
  let saved = "";
  try {
    saved = readFileSync(path, "utf8").trim();
  } catch {}
  if (saved) {
    try {
      SecretKeyring.fromEnv({ ...env, HEARTH_SECRETS_KEY: saved });
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message.replace("HEARTH_SECRETS_KEY", "the saved key")}`);
    }
    return { key: saved, savedAt: path };
  }
  const key = randomBytes(32).toString("base64");
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  return { key, savedAt: path };
}
