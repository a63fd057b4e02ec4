import type { Registry } from "prom-client";
import { CounterFamily, type CounterSeries, createRegistry, FaasMetrics, limitOfCode } from "../../metrics/index.ts";
import type { ErrorCode } from "../../protocol/index.ts";

/**
 * One executor's metrics: the FaaS series of the invocations it runs, the limit kills of its isolates
 * and its process metrics (prefixed `hearth_executor_`). Kept in the executor, in memory: its worker
 * collects them over IPC when it is scraped (no message per invocation), and they die with it.
 */
export class ExecutorMetrics {
  readonly registry: Registry;
  readonly faas: FaasMetrics;
  readonly #limitKills: CounterFamily;
  /** function → limit → series. */
  readonly #kills = new Map<string, Map<string, CounterSeries>>();

  constructor(registry: Registry = createRegistry({ prefix: "hearth_executor_" })) {
    this.registry = registry;
    this.faas = new FaasMetrics(registry);
    this.#limitKills = new CounterFamily(registry, {
      name: "hearth_limit_kills_total",
      help: "Isolates disposed because an invocation (or work after its response) hit a limit.",
      labelNames: ["function", "limit"],
    });
  }

  /** Counts a limit event of `fn` when its code is one that disposes the isolate. */
  limitEvent(fn: string, code: ErrorCode): void {
    const limit = limitOfCode(code);
    if (limit === null) return;
    let byLimit = this.#kills.get(fn);
    if (!byLimit) {
      byLimit = new Map();
      this.#kills.set(fn, byLimit);
    }
    let series = byLimit.get(limit);
    if (!series) {
      series = this.#limitKills.series(fn, limit);
      byLimit.set(limit, series);
    }
    series.value++;
  }
}
