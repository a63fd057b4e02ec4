/** The control plane: deploys, triggers, dead letters and cluster operations, mounted by the gateway under /v1/. */

export { type ControlApi, type ControlApiDeps, createControlApi } from "./control-api.ts";
export type { DeadLetterPage, DeadLetterView } from "./dead-letter-api.ts";
export { prepareBundle } from "./prepare-bundle.ts";
export { createTrigger, describeTrigger } from "./triggers-api.ts";
