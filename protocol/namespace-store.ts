import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type RecordChange, watchRecords } from "./kv-watch.ts";
import { isValidName } from "./names.ts";
import type { NamespaceRecord } from "./namespace-record.ts";
import { BUCKETS } from "./subjects.ts";

/** Namespaces as records in a KV bucket: name → NamespaceRecord (its quotas). */
export class NamespaceStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(nc: NatsConnection): Promise<NamespaceStore> {
    return new NamespaceStore(await new Kvm(nc).create(BUCKETS.namespaces, { history: 1 }));
  }

  async put(record: NamespaceRecord): Promise<void> {
    await this.#kv.put(record.name, JSON.stringify(record));
  }

  /**
   * Creates it unless a record exists (KV create: atomic, so two concurrent creates cannot both
   * succeed); false when it existed.
   */
  async create(record: NamespaceRecord): Promise<boolean> {
    try {
      await this.#kv.create(record.name, JSON.stringify(record));
      return true;
    } catch (err) {
      if ((await this.get(record.name)) !== null) return false;
      throw err;
    }
  }

  async get(name: string): Promise<NamespaceRecord | null> {
    if (!isValidName(name)) return null;
    const entry = await this.#kv.get(name);
    return entry?.operation === "PUT" ? entry.json<NamespaceRecord>() : null;
  }

  async list(): Promise<NamespaceRecord[]> {
    const names: string[] = [];
    for await (const key of await this.#kv.keys()) names.push(key);
    const records = await Promise.all(names.sort().map((name) => this.get(name)));
    return records.filter((r): r is NamespaceRecord => r !== null);
  }

  async delete(name: string): Promise<void> {
    await this.#kv.delete(name);
  }

  /** Calls `onChange` for every current namespace, then for every later change (see watchRecords). */
  watch(
    onChange: (change: RecordChange<NamespaceRecord>) => void,
    onError: (err: unknown) => void = () => {},
  ): Promise<{ stop(): void }> {
    return watchRecords<NamespaceRecord>(this.#kv, onChange, onError);
  }
}
