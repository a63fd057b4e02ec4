/** Prometheus metrics: the FaaS series, fast counters and histograms, the /metrics server. */

export type { InvocationMetrics, InvocationStatus, LimitKind, Trigger } from "./faas.ts";
export {
  COLD_START_LABELS,
  coldStartFamily,
  FaasMetrics,
  INVOCATION_LABELS,
  INVOKE_DURATION_BUCKETS,
  limitOfCode,
  statusOfCode,
  TRIGGERS,
} from "./faas.ts";
export type { MetricsAnnouncement, MetricsListen, MetricsServer, MetricsServerOptions } from "./metrics-server.ts";
export {
  ANY_PORT,
  announceMetrics,
  DEFAULT_METRICS_HOST,
  isMetricsAnnouncement,
  metricsListenFromEnv,
  startMetricsServer,
} from "./metrics-server.ts";
export { createRegistry } from "./registry.ts";
export type { CounterSeries, HistogramSeries } from "./series.ts";
export { CounterFamily, HistogramFamily } from "./series.ts";
