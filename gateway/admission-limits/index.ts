/** Cluster-wide rate limits and namespace invocation quotas, decided in memory at each gateway. */

export type { AdmissionLimitsOptions } from "./admission-limits.ts";
export { AdmissionLimits, DEFAULT_SYNC_INTERVAL_MS, LimitError, type Release } from "./admission-limits.ts";
export type { RuntimeQuotas } from "./namespace-quotas.ts";
