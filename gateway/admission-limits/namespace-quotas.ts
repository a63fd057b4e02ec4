import type { KV } from "@nats-io/kv";
import { type NamespaceQuotas, type NamespaceRecord, watchRecords } from "../../protocol/index.ts";

/** The quotas an invocation meets at the gateway; the others (functions, bundle bytes) are the deployer's. */
export interface RuntimeQuotas {
  readonly invocationsPerMinute?: number;
  readonly concurrentInvocations?: number;
}

/**
 * The runtime quotas of every namespace that has one, kept current by a watch on the namespaces
 * bucket. A namespace without runtime quotas is not held at all, so the hot path's lookup for it
 * misses a small map (or is skipped while the map is empty).
 */
export class NamespaceQuotaTable {
  readonly #quotas = new Map<string, RuntimeQuotas>();
  #watch: { stop(): void } | null = null;

  /** Resolves once the current records are held (so the first request meets them), then follows changes. */
  async follow(kv: KV, onError: (err: unknown) => void): Promise<void> {
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (entry?.operation === "PUT") this.set(key, entry.json<NamespaceRecord>().quotas);
    }
    this.#watch = await watchRecords<NamespaceRecord>(
      kv,
      (change) => this.set(change.key, change.kind === "put" ? change.record.quotas : undefined),
      onError,
    );
  }

  /** Sets (or with undefined removes) a namespace's quotas; only the runtime ones are kept. */
  set(namespace: string, quotas: NamespaceQuotas | undefined): void {
    const perMinute = validLimit(quotas?.invocationsPerMinute);
    const concurrent = validLimit(quotas?.concurrentInvocations);
    if (perMinute === undefined && concurrent === undefined) this.#quotas.delete(namespace);
    else
      this.#quotas.set(namespace, {
        ...(perMinute !== undefined ? { invocationsPerMinute: perMinute } : {}),
        ...(concurrent !== undefined ? { concurrentInvocations: concurrent } : {}),
      });
  }

  get(namespace: string): RuntimeQuotas | undefined {
    return this.#quotas.get(namespace);
  }

  get size(): number {
    return this.#quotas.size;
  }

  stop(): void {
    this.#watch?.stop();
  }
}

/** A record written by another version or by hand may hold anything: only non-negative integers limit (0 refuses every invocation). */
function validLimit(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : undefined;
}
