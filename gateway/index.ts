/** The HTTP gateway: invocation routes, invocation statuses, health; it mounts the control API (control/). */

export type { InvocationView, ResponseView } from "./async-api.ts";
export type { AsyncAccepted } from "./async-invoke.ts";
export type { GatewayOptions } from "./gateway.ts";
export { Gateway } from "./gateway.ts";
export { GatewayMetrics } from "./gateway-metrics.ts";
export type { HttpLimits } from "./http-limits.ts";
export { DEFAULT_HTTP_LIMITS, HTTP_LIMIT_ENV, httpLimitsFromEnv, parseHttpLimits } from "./http-limits.ts";
export type { HttpRequest, HttpResponse } from "./http-types.ts";
export { main } from "./main.ts";
