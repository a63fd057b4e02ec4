import { prepareBundle } from "../../control/index.ts";
import { type FunctionRecord, FunctionStore, LIMITS, type Runnable } from "../../protocol/index.ts";

/**
 * Puts a function straight into the store (bundle and record), as the deployer would, for tests that
 * drive executors without a gateway: version 1, default limits unless `runnable` overrides them.
 */
export async function storeFunction(
  store: FunctionStore,
  name: string,
  source: string,
  runnable: Partial<Omit<Runnable, "digest" | "bundleBytes" | "version">> = {},
): Promise<FunctionRecord> {
  const script = new TextEncoder().encode(await prepareBundle(source, `${name}.js`));
  const fields = {
    digest: FunctionStore.digestOf(script),
    bundleBytes: script.byteLength,
    env: {},
    memoryMb: LIMITS.defaultMemoryMb,
    timeoutMs: 2_000,
    cpuMs: 50,
    concurrency: LIMITS.defaultConcurrency,
    maxBodyBytes: LIMITS.defaultMaxBodyBytes,
    ...runnable,
  };
  const now = new Date().toISOString();
  const record: FunctionRecord = {
    name,
    ...fields,
    version: FunctionStore.versionOf(fields),
    versionId: 1,
    createdAt: now,
    updatedAt: now,
  };
  await store.put(record, script);
  return record;
}
