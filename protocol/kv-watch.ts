import type { KV } from "@nats-io/kv";

/** A change to one key of a bucket of JSON records. */
export type RecordChange<T> =
  | { readonly kind: "put"; readonly key: string; readonly record: T; readonly revision: number }
  | { readonly kind: "delete"; readonly key: string; readonly revision: number };

/**
 * Calls `onChange` for every current record of a KV bucket, then for every later change, until the
 * returned `stop` is called. Watchers keep caches in step with the store (routes, pools, triggers).
 */
export async function watchRecords<T>(
  kv: KV,
  onChange: (change: RecordChange<T>) => void,
  onError: (err: unknown) => void = () => {},
): Promise<{ stop(): void }> {
  const iter = await kv.watch();
  (async () => {
    for await (const entry of iter) {
      onChange(
        entry.operation === "PUT"
          ? { kind: "put", key: entry.key, record: entry.json<T>(), revision: entry.revision }
          : { kind: "delete", key: entry.key, revision: entry.revision },
      );
    }
  })().catch(onError);
  return { stop: () => iter.stop() };
}
