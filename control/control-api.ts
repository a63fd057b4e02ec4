import type { NatsConnection } from "@nats-io/transport-node";
import { handleInvocationApi } from "../gateway/async-api.ts";
import type { HttpRequest, HttpResponse } from "../gateway/http-types.ts";
import type { Endpoint } from "../gateway/routing/endpoint.ts";
import {
  type AsyncStore,
  DEFAULT_NAMESPACE,
  type FunctionRecord,
  type FunctionStore,
  type HeaderPairs,
  type Logger,
  type NamespaceStore,
  type SecretKeyring,
  type TokenStore,
  type TriggerStore,
  type VersionStore,
} from "../protocol/index.ts";
import { authorize } from "./authorize.ts";
import { createBackupApi } from "./backup-api.ts";
import { handleClusterApi } from "./cluster-api.ts";
import { handleDeadLetterApi } from "./dead-letter-api.ts";
import { Deployer } from "./deployer.ts";
import { handleFunctionsApi } from "./functions-api.ts";
import { handleLogsApi } from "./logs-api.ts";
import type { ModuleCheck } from "./module-check.ts";
import { handleNamespacesApi } from "./namespaces-api.ts";
import { allows, type Principal } from "./permissions.ts";
import { createSecretsApi } from "./secrets-api.ts";
import { handleTokensApi } from "./tokens-api.ts";
import { handleTriggersApi } from "./triggers-api.ts";
import { handleVersionsApi } from "./versions-api.ts";

export interface ControlApiDeps {
  readonly nc: NatsConnection;
  readonly store: FunctionStore;
  readonly versions: VersionStore;
  readonly triggers: TriggerStore;
  /** API tokens and namespaces (admin routes; namespaces also decide deploys). */
  readonly tokens: TokenStore;
  readonly namespaces: NamespaceStore;
  /** Who a request acts as, from its token (gateway/auth.ts); throws ERR_UNAUTHORIZED. */
  readonly principalOf: (req: { readonly headers: HeaderPairs }) => Principal;
  readonly asyncStore: AsyncStore;
  /** False while the NATS connection is down: store-backed routes answer 503 then. */
  readonly natsConnected: () => boolean;
  /** The hosting gateway's routing table, shown by `GET /v1/status` beside the leader's view. */
  readonly routes: () => Record<string, Endpoint[]>;
  /** Called after a deploy or removal so the hosting gateway's route cache is current at once. */
  readonly onFunctionChange: (name: string, record: FunctionRecord | null, revision: number) => void;
  readonly log: Logger;
  /** Seals and opens secrets (HEARTH_SECRETS_KEY); without it secrets can be listed and removed, not set. */
  readonly secretsKeyring?: SecretKeyring | null;
  /** Evaluates each deploy's module before it is stored (the gateway's ModuleCheckProcess). */
  readonly moduleCheck: ModuleCheck;
}

/** Answers a control request, or null when no control route matches its path. */
export type ControlApi = (req: HttpRequest, path: string) => Promise<HttpResponse | null>;

/**
 * The control plane's HTTP routes under /v1/: functions (deploy, list, remove), their versions and
 * deployments (rollout, rollback), triggers, dead
 * letters, invocation statuses, tokens, namespaces, cluster status and drain. Every request is
 * authorized here, by its token's scopes (control/authorize.ts). Kept apart from the gateway's
 * invocation path so that versions, secrets and the rest can grow without touching the hot path.
 */
export function createControlApi(deps: ControlApiDeps): ControlApi {
  const triggers = { functions: deps.store, triggers: deps.triggers, jsm: deps.asyncStore.jsm };
  const deployer = new Deployer({
    store: deps.store,
    versions: deps.versions,
    onChange: deps.onFunctionChange,
    onRemoved: (fn) => secrets.removeAll(fn),
    log: deps.log,
  });
  const functions = {
    store: deps.store,
    versions: deps.versions,
    deployer,
    quotas: deps,
    moduleCheck: deps.moduleCheck,
  };
  const secrets = createSecretsApi({
    ...deps,
    applySecrets: (fn, revisions, message) => deployer.applySecrets(fn, revisions, message),
  });
  const backup = createBackupApi(deps);
  const route = async (req: HttpRequest, path: string, principal: Principal): Promise<HttpResponse | null> =>
    (await handleTokensApi(req, path, deps)) ??
    (await backup(req, path)) ??
    (await handleNamespacesApi(req, path, deps)) ??
    (await handleInvocationApi(req, path, deps)) ??
    (await handleClusterApi(req, path, { nc: deps.nc, routes: deps.routes })) ??
    (await handleDeadLetterApi(req, path, deps)) ??
    (await handleTriggersApi(req, path, triggers)) ??
    (await secrets.handle(req, path)) ??
    (await handleLogsApi(req, path, { ...deps, js: deps.asyncStore.js })) ??
    (await handleVersionsApi(req, path, functions)) ??
    (path === "/v1/functions" || path.startsWith("/v1/functions/")
      ? handleFunctionsApi(req, path, { ...functions, visible: (r) => allows(principal, "read", namespaceOf(r)) })
      : null);
  // Who the request acts as (401 without a valid token), then whether it may (403): control/authorize.ts.
  return async (req, path) => {
    const principal = deps.principalOf(req);
    return route(await authorize(principal, req, path, deps), path, principal);
  };
}

const namespaceOf = (record: FunctionRecord) => record.namespace ?? DEFAULT_NAMESPACE;
