import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { HearthError } from "./errors.ts";
import { SecretKeyring } from "./secret-box.ts";
import { BUCKETS } from "./subjects.ts";

/** A secret as listings show it: never its value. */
export interface SecretInfo {
  readonly name: string;
  /** The KV revision of its sealed value: what a function record's `secrets` names. */
  readonly revision: number;
  readonly updatedAt: string;
}

/** What a re-encryption pass did. */
export interface ReencryptReport {
  /** Values resealed with the current key. */
  readonly resealed: number;
  /** Values already sealed with the current key. */
  readonly current: number;
  /** Values that could not be opened (`<fn>.<NAME>: <why>`): left as they are. */
  readonly failed: readonly string[];
}

/**
 * Secrets of functions, sealed (protocol/secret-box.ts) in the secrets KV bucket under `<fn>.<NAME>`.
 * The bucket keeps one revision per key, so a replaced or removed value leaves no old ciphertext.
 * Only the control plane writes; workers open values when they load a function.
 *
 * @example
 * const secrets = await SecretStore.open(nc, SecretKeyring.fromEnv(process.env));
 * const revision = await secrets.put("api", "DB_PASSWORD", "hunter2");
 */
export class SecretStore {
  readonly #kv: KV;
  readonly #keyring: SecretKeyring | null;

  private constructor(kv: KV, keyring: SecretKeyring | null) {
    this.#kv = kv;
    this.#keyring = keyring;
  }

  /**
   * Opens the bucket; `create` (the control plane's default) creates it on first use, while a worker
   * only binds to it (its NATS identity may not create streams). Without a keyring, only names and
   * revisions can be read.
   */
  static async open(
    nc: NatsConnection,
    keyring: SecretKeyring | null,
    options: { readonly create?: boolean } = {},
  ): Promise<SecretStore> {
    const kvm = new Kvm(nc);
    const kv =
      options.create === false ? await kvm.open(BUCKETS.secrets) : await kvm.create(BUCKETS.secrets, { history: 1 });
    return new SecretStore(kv, keyring);
  }

  /** Seals and stores a value; returns its KV revision. */
  async put(fn: string, name: string, value: string): Promise<number> {
    return this.#kv.put(keyOf(fn, name), this.#requireKeyring().seal(fn, name, value));
  }

  /** The secrets of `fn`, by name. */
  async list(fn: string): Promise<SecretInfo[]> {
    const names: string[] = [];
    for await (const key of await this.#kv.keys(`${fn}.*`)) names.push(key.slice(fn.length + 1));
    const infos = await Promise.all(
      names.sort().map(async (name) => {
        const entry = await this.#kv.get(keyOf(fn, name));
        return entry?.operation === "PUT"
          ? { name, revision: entry.revision, updatedAt: entry.created.toISOString() }
          : null;
      }),
    );
    return infos.filter((info): info is SecretInfo => info !== null);
  }

  /** Removes a secret (purged: no ciphertext is left); returns the removal's revision, or null when there was none. */
  async delete(fn: string, name: string): Promise<number | null> {
    const key = keyOf(fn, name);
    if ((await this.#kv.get(key))?.operation !== "PUT") return null;
    await this.#kv.purge(key);
    return (await this.#kv.get(key))?.revision ?? 0;
  }

  /** Removes every secret of `fn` (it was removed); returns how many there were. */
  async deleteAll(fn: string): Promise<number> {
    const secrets = await this.list(fn);
    await Promise.all(secrets.map((secret) => this.#kv.purge(keyOf(fn, secret.name))));
    return secrets.length;
  }

  /**
   * The opened values of the named secrets of `fn`. A name with no stored value fails: the version
   * that lists it expects it. ERR_SECRETS_NOT_CONFIGURED without a keyring.
   */
  async values(fn: string, names: readonly string[]): Promise<Record<string, string>> {
    const keyring = this.#requireKeyring(fn);
    const opened = await Promise.all(
      names.map(async (name) => {
        const entry = await this.#kv.get(keyOf(fn, name));
        if (entry?.operation !== "PUT")
          throw new HearthError("ERR_SECRET_CORRUPT", `Secret ${name} of ${fn} is not stored (removed?)`);
        return [name, keyring.open(fn, name, entry.string())] as const;
      }),
    );
    return Object.fromEntries(opened);
  }

  /**
   * Reseals every value not sealed with the current key. Each write is conditional on the revision
   * read, so a value put meanwhile (sealed with the current key already) is not overwritten.
   * Afterwards no value needs the previous key. The plaintext is unchanged, so no function reloads.
   */
  async reencrypt(): Promise<ReencryptReport> {
    const keyring = this.#requireKeyring();
    const keys: string[] = [];
    for await (const key of await this.#kv.keys()) keys.push(key);
    let resealed = 0;
    let current = 0;
    const failed: string[] = [];
    for (const key of keys.sort()) {
      const entry = await this.#kv.get(key);
      if (entry?.operation !== "PUT") continue;
      const sealed = entry.string();
      if (SecretKeyring.keyIdOfSealed(sealed) === keyring.current.id) {
        current++;
        continue;
      }
      const dot = key.indexOf(".");
      const [fn, name] = [key.slice(0, dot), key.slice(dot + 1)];
      try {
        await this.#kv.update(key, keyring.seal(fn, name, keyring.open(fn, name, sealed)), entry.revision);
        resealed++;
      } catch (err) {
        // A concurrent put wins: it sealed with the current key.
        if ((await this.#kv.get(key))?.revision !== entry.revision) current++;
        else failed.push(`${key}: ${(err as Error).message}`);
      }
    }
    return { resealed, current, failed };
  }

  #requireKeyring(fn?: string): SecretKeyring {
    if (this.#keyring) return this.#keyring;
    const whose = fn ? `Function ${fn} has secrets, but this process` : "This process";
    throw new HearthError(
      "ERR_SECRETS_NOT_CONFIGURED",
      `${whose} has no HEARTH_SECRETS_KEY (32 random bytes in base64) to seal or open secrets with`,
    );
  }
}

function keyOf(fn: string, name: string): string {
  return `${fn}.${name}`;
}
