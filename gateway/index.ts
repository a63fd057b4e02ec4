/** The HTTP gateway: invocation routes, control API, health. */

export type { GatewayOptions } from "./gateway.ts";
export { Gateway } from "./gateway.ts";
export type { HttpRequest, HttpResponse } from "./http-types.ts";
export { main } from "./main.ts";
export { prepareBundle } from "./prepare-bundle.ts";
