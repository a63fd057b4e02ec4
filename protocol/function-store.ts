import { createHash } from "node:crypto";
import { type KV, Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FunctionRecord, Runnable } from "./function-record.ts";
import { isKeyConflict } from "./jetstream-mux.ts";
import { watchRecords } from "./kv-watch.ts";
import { BUCKETS } from "./subjects.ts";

/** A change seen by {@link FunctionStore.watch}: a new or updated record, or a removal. */
export type FunctionChange =
  | { readonly kind: "put"; readonly record: FunctionRecord; readonly revision: number }
  | { readonly kind: "delete"; readonly name: string; readonly revision: number };

/**
 * Control-plane state in JetStream: records in a KV bucket, bundles in an object store keyed by
 * their sha256, so a bundle deployed twice (or by two functions) is stored once.
 *
 * @example
 * const store = await FunctionStore.open(nc);
 * await store.put(record, bundle);
 */
export class FunctionStore {
  readonly #kv: KV;
  readonly #bundles: ObjectStore;

  private constructor(kv: KV, bundles: ObjectStore) {
    this.#kv = kv;
    this.#bundles = bundles;
  }

  /** Opens the buckets, creating them on first use (create is idempotent in JetStream). */
  static async open(nc: NatsConnection): Promise<FunctionStore> {
    const [kv, bundles] = await Promise.all([
      new Kvm(nc).create(BUCKETS.functions, { history: 5 }),
      new Objm(nc).create(BUCKETS.bundles),
    ]);
    return new FunctionStore(kv, bundles);
  }

  /** sha256 hex of a bundle: its name in the object store. */
  static digestOf(bundle: Uint8Array): string {
    return createHash("sha256").update(bundle).digest("hex");
  }

  /** The version of what a worker runs: a hash of all of it, so equal deploys share it. */
  static versionOf(runnable: Omit<Runnable, "version">): string {
    const {
      digest,
      env,
      memoryMb,
      timeoutMs,
      cpuMs,
      concurrency,
      maxBodyBytes,
      secrets = {},
      sourceMapDigest,
    } = runnable;
    const limits = [memoryMb, timeoutMs, cpuMs, concurrency, maxBodyBytes];
    const parts: unknown[] = [digest, Object.entries(env).sort(), limits];
    // Left out when empty, so versions made before secrets existed keep their hash.
    if (Object.keys(secrets).length > 0) parts.push(Object.entries(secrets).sort());
    // Likewise for versions deployed without a source map; another map is another version.
    if (sourceMapDigest !== undefined) parts.push({ sourceMapDigest });
    return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 16);
  }

  /** Stores the bundle (unless already present), then the record; returns the record's KV revision. */
  async put(record: FunctionRecord, bundle: Uint8Array): Promise<number> {
    await this.putBundle(record.digest, bundle);
    return this.#kv.put(record.name, JSON.stringify(record));
  }

  /** Stores a bundle under its digest unless it is already there. */
  async putBundle(digest: string, bundle: Uint8Array): Promise<void> {
    if ((await this.#bundles.info(digest)) === null) await this.#bundles.putBlob({ name: digest }, bundle);
  }

  /**
   * Writes the record only if the stored one is still at `expectedRevision` (0: there is none), so
   * two deploys of one function cannot lose each other's changes. Returns the new revision, or null
   * when someone else wrote first (read again and retry).
   */
  async putIf(record: FunctionRecord, expectedRevision: number): Promise<number | null> {
    try {
      return expectedRevision === 0
        ? await this.#kv.create(record.name, JSON.stringify(record))
        : await this.#kv.update(record.name, JSON.stringify(record), expectedRevision);
    } catch (err) {
      if (isKeyConflict(err)) return null;
      throw err;
    }
  }

  async deleteBundle(digest: string): Promise<void> {
    await this.#bundles.delete(digest);
  }

  async get(name: string): Promise<FunctionRecord | null> {
    return (await this.getEntry(name))?.record ?? null;
  }

  /** The record with its KV revision, which orders changes without trusting anyone's clock. */
  async getEntry(name: string): Promise<{ record: FunctionRecord; revision: number } | null> {
    const entry = await this.#kv.get(name);
    return entry && entry.operation === "PUT"
      ? { record: entry.json<FunctionRecord>(), revision: entry.revision }
      : null;
  }

  async list(): Promise<FunctionRecord[]> {
    const names: string[] = [];
    for await (const key of await this.#kv.keys()) names.push(key);
    const records = await Promise.all(names.sort().map((name) => this.get(name)));
    return records.filter((r): r is FunctionRecord => r !== null);
  }

  /** Removes the record; returns the removal's KV revision, or null if there was no such function. */
  async delete(name: string): Promise<number | null> {
    if ((await this.get(name)) === null) return null;
    await this.#kv.delete(name);
    // The KV client does not return the delete marker's revision; read it back.
    return (await this.#kv.get(name))?.revision ?? 0;
  }

  async getBundle(digest: string): Promise<Uint8Array | null> {
    return this.#bundles.getBlob(digest);
  }

  /**
   * Calls `onChange` for every current record, then for every later change, until the returned
   * `stop` is called. Watchers keep caches (gateway routes, loaded pools) in step with deploys.
   */
  async watch(
    onChange: (change: FunctionChange) => void,
    onError: (err: unknown) => void = () => {},
  ): Promise<{ stop(): void }> {
    return watchRecords<FunctionRecord>(
      this.#kv,
      (change) =>
        onChange(
          change.kind === "put"
            ? { kind: "put", record: change.record, revision: change.revision }
            : { kind: "delete", name: change.key, revision: change.revision },
        ),
      onError,
    );
  }
}
