import type { NatsConnection } from "@nats-io/transport-node";
import type { FunctionRecord, Runnable, SecretKeyring } from "../protocol/index.ts";
import { SecretStore } from "../protocol/index.ts";

export interface SecretEnvOptions {
  readonly nc: NatsConnection;
  /** The worker's keys (HEARTH_SECRETS_KEY); null: a function with secrets fails to load here. */
  readonly keyring: SecretKeyring | null;
}

/**
 * The one place a worker opens secrets: it turns a function's record into the record its executor
 * gets, each version's sealed secrets opened and merged into its `env` (so the function reads them
 * as `env.NAME`). The result goes over IPC to the executor hosting the function and nowhere else: it
 * is never stored, logged or cached here. A record without secrets is returned as it is, at once.
 *
 * Values are read as stored now, whatever revision the record names: the bucket keeps one revision
 * per key, and re-encryption gives a value a new revision without a new version.
 */
export class SecretEnv {
  readonly #nc: NatsConnection;
  readonly #keyring: SecretKeyring | null;
  #store: Promise<SecretStore> | null = null;

  constructor(options: SecretEnvOptions) {
    this.#nc = options.nc;
    this.#keyring = options.keyring;
  }

  /**
   * The record with its secrets in `env` (and its canary's in the canary's). Rejects with
   * ERR_SECRETS_NOT_CONFIGURED, ERR_SECRET_KEY_UNKNOWN or ERR_SECRET_CORRUPT, whose messages name
   * the function, the secret and the key id, never a value.
   */
  withSecrets(record: FunctionRecord): FunctionRecord | Promise<FunctionRecord> {
    if (!hasSecrets(record) && !(record.canary && hasSecrets(record.canary))) return record;
    return (async () => {
      const canary = record.canary;
      return {
        ...record,
        env: await this.#envOf(record.name, record),
        ...(canary ? { canary: { ...canary, env: await this.#envOf(record.name, canary) } } : {}),
      };
    })();
  }

  async #envOf(fn: string, runnable: Runnable): Promise<Record<string, string>> {
    const names = Object.keys(runnable.secrets ?? {});
    if (names.length === 0) return { ...runnable.env };
    const values = await (await this.#open()).values(fn, names);
    return { ...runnable.env, ...values };
  }

  #open(): Promise<SecretStore> {
    // Bound lazily: the bucket exists once a secret was put, and a worker may not create it.
    this.#store ??= SecretStore.open(this.#nc, this.#keyring, { create: false }).catch((err: unknown) => {
      this.#store = null;
      throw err;
    });
    return this.#store;
  }
}

function hasSecrets(runnable: Runnable): boolean {
  return Object.keys(runnable.secrets ?? {}).length > 0;
}
