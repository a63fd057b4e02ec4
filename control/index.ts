/** The control plane: deploys, triggers, dead letters and cluster operations, mounted by the gateway under /v1/. */

export { RESTORE_PART_BYTES } from "./backup-api.ts";
export { type ControlApi, type ControlApiDeps, createControlApi } from "./control-api.ts";
export type { DeadLetterPage, DeadLetterView } from "./dead-letter-api.ts";
export type { Change, Split } from "./deployer.ts";
export type { ModuleCheck } from "./module-check.ts";
export { ModuleCheckProcess } from "./module-check-process.ts";
export type { NamespaceView } from "./namespaces-api.ts";
export {
  allows,
  BOOTSTRAP_PRINCIPAL,
  type Principal,
  principalOf,
  type Right,
  requireRight,
} from "./permissions.ts";
export { prepareBundle, prepareBundleWithMap } from "./prepare-bundle.ts";
export { checkDeployQuota, type DeployUse } from "./quotas.ts";
export type { RestoreReport } from "./restore.ts";
export { validateSourceMap } from "./source-map.ts";
export type { CreatedToken } from "./tokens-api.ts";
export { createTrigger, describeTrigger } from "./triggers-api.ts";
export type { DeploymentView, VersionView } from "./versions-api.ts";
