import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * A process's own registry with prom-client's default process metrics (CPU, memory, event loop lag,
 * GC, handles) in it. Never the global default registry: tests run a gateway, a scheduler and a worker
 * in one process, and each must report only its own series.
 *
 * `prefix` renames the defaults: executors use `hearth_executor_`, so that their worker can aggregate
 * them (summed over its executors) next to its own `process_*` series without a clash.
 */
export function createRegistry(options: { prefix?: string; defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: options.prefix ?? "" });
  return registry;
}
