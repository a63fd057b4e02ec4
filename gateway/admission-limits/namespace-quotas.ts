import type { NamespaceQuotas, NamespaceStore } from "../../protocol/index.ts";

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
  async follow(namespaces: NamespaceStore, onError: (err: unknown) => void): Promise<void> {
    for (const record of await namespaces.list()) this.set(record.name, record.quotas);
    this.#watch = await namespaces.watch(
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
