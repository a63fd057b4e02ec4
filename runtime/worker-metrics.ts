import { AggregatorRegistry, Counter, type MetricObjectWithValues, type MetricValue, type Registry } from "prom-client";
import { createRegistry } from "../metrics/index.ts";
import type { Logger } from "../protocol/index.ts";

/** Why an executor was replaced: it died, or it asked to be (stuck isolate, memory over its bound). */
export type ExecutorRestartReason = "died" | "retired";

/** Something that answers with an executor's registry as JSON, or null (see ExecutorProcess.collectMetrics). */
export interface ExecutorMetricsSource {
  collectMetrics(timeoutMs?: number): Promise<MetricObjectWithValues<MetricValue<string>>[] | null>;
}

/** How long a scrape waits for each executor: Prometheus' own scrape timeout defaults to 10 s. */
const EXECUTOR_SCRAPE_TIMEOUT_MS = 2_000;

/**
 * A worker node's /metrics: its own registry (process metrics, executor restarts) merged with its
 * executors' registries, fetched over IPC at scrape time and summed by prom-client's
 * AggregatorRegistry.aggregate, so `faas_invocations_total{function="f"}` is the node's total whatever
 * executor ran each invocation. Executors' process metrics come prefixed `hearth_executor_` (summed:
 * CPU and memory of all of them). An executor that does not answer in time is left out of that scrape;
 * a dead one's counts are gone, which Prometheus reads as a counter reset.
 */
export class WorkerMetrics {
  readonly registry: Registry;
  readonly #restarts: Counter<"reason">;
  readonly #log: Logger | undefined;

  constructor(options: { registry?: Registry; log?: Logger } = {}) {
    this.registry = options.registry ?? createRegistry();
    this.#log = options.log;
    this.#restarts = new Counter({
      name: "hearth_executor_restarts_total",
      help: "Executor processes replaced: reason died (it exited) or retired (it asked to be replaced).",
      labelNames: ["reason"],
      registers: [this.registry],
    });
  }

  executorRestarted(reason: ExecutorRestartReason): void {
    this.#restarts.inc({ reason });
  }

  /** The exposition text: this process's series, then the sum of its executors'. */
  async text(executors: readonly ExecutorMetricsSource[]): Promise<string> {
    const answers = await Promise.all(executors.map((e) => e.collectMetrics(EXECUTOR_SCRAPE_TIMEOUT_MS)));
    const own = await this.registry.metrics();
    const collected = answers.filter((a): a is MetricObjectWithValues<MetricValue<string>>[] => a !== null);
    if (collected.length === 0) return own;
    let aggregated: Registry;
    try {
      aggregated = AggregatorRegistry.aggregate(collected);
    } catch (err) {
      // An executor runs untrusted code: a malformed answer costs its node's function series, not the scrape.
      this.#log?.error({ err }, "aggregating executor metrics failed");
      return own;
    }
    return `${own}\n${await aggregated.metrics()}`;
  }
}
