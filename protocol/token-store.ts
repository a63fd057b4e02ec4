import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type RecordChange, watchRecords } from "./kv-watch.ts";
import { BUCKETS } from "./subjects.ts";
import { isTokenId, type TokenRecord } from "./token-record.ts";

/** API tokens as records in a KV bucket: token id → TokenRecord (its SHA-256, never the token). */
export class TokenStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  /** Opens the bucket, creating it on first use. History 1: a revoked token's record is gone for good. */
  static async open(nc: NatsConnection): Promise<TokenStore> {
    return new TokenStore(await new Kvm(nc).create(BUCKETS.tokens, { history: 1 }));
  }

  async put(record: TokenRecord): Promise<void> {
    await this.#kv.put(record.id, JSON.stringify(record));
  }

  async get(id: string): Promise<TokenRecord | null> {
    if (!isTokenId(id)) return null;
    const entry = await this.#kv.get(id);
    return entry?.operation === "PUT" ? entry.json<TokenRecord>() : null;
  }

  async list(): Promise<TokenRecord[]> {
    const ids: string[] = [];
    for await (const key of await this.#kv.keys()) ids.push(key);
    const records = await Promise.all(ids.sort().map((id) => this.get(id)));
    return records.filter((r): r is TokenRecord => r !== null);
  }

  /** Removes it; false when there was none. */
  async delete(id: string): Promise<boolean> {
    if ((await this.get(id)) === null) return false;
    await this.#kv.delete(id);
    return true;
  }

  /** Every current record, then every change (a revoke arrives as a delete). */
  watch(
    onChange: (change: RecordChange<TokenRecord>) => void,
    onError?: (err: unknown) => void,
  ): Promise<{ stop(): void }> {
    return watchRecords(this.#kv, onChange, onError);
  }
}
