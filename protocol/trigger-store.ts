import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ASYNC_BUCKETS, type TriggerRecord } from "./async.ts";
import { type RecordChange, watchRecords } from "./kv-watch.ts";

/** Trigger ids: lowercase letters and digits, so they fit subjects, consumer names and KV keys. */
const TRIGGER_ID = /^t[a-z0-9]{4,31}$/;

export function isTriggerId(id: string): boolean {
  return TRIGGER_ID.test(id);
}

/** Event triggers, as control-plane records in a KV bucket (trigger id → TriggerRecord). */
export class TriggerStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(nc: NatsConnection): Promise<TriggerStore> {
    return new TriggerStore(await new Kvm(nc).create(ASYNC_BUCKETS.triggers, { history: 1 }));
  }

  /** A fresh id: `t` and 12 base-36 characters. */
  static newId(): string {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    const n = bytes.reduce((acc, b) => acc * 256n + BigInt(b), 0n);
    return `t${n.toString(36).padStart(13, "0").slice(0, 12)}`;
  }

  async put(record: TriggerRecord): Promise<void> {
    await this.#kv.put(record.id, JSON.stringify(record));
  }

  async get(id: string): Promise<TriggerRecord | null> {
    if (!isTriggerId(id)) return null;
    const entry = await this.#kv.get(id);
    return entry?.operation === "PUT" ? entry.json<TriggerRecord>() : null;
  }

  async list(): Promise<TriggerRecord[]> {
    const ids: string[] = [];
    for await (const key of await this.#kv.keys()) ids.push(key);
    const records = await Promise.all(ids.sort().map((id) => this.get(id)));
    return records.filter((r): r is TriggerRecord => r !== null);
  }

  /** Removes it; false when there was none. */
  async delete(id: string): Promise<boolean> {
    if ((await this.get(id)) === null) return false;
    await this.#kv.delete(id);
    return true;
  }

  watch(
    onChange: (change: RecordChange<TriggerRecord>) => void,
    onError?: (err: unknown) => void,
  ): Promise<{ stop(): void }> {
    return watchRecords(this.#kv, onChange, onError);
  }
}
