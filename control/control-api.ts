import type { NatsConnection } from "@nats-io/transport-node";
import type { HttpRequest, HttpResponse } from "../gateway/http-types.ts";
import type { Endpoint } from "../gateway/routing/endpoint.ts";
import type { AsyncStore, FunctionRecord, FunctionStore, TriggerStore } from "../protocol/index.ts";
import { handleClusterApi } from "./cluster-api.ts";
import { handleDeadLetterApi } from "./dead-letter-api.ts";
import { handleFunctionsApi } from "./functions-api.ts";
import { handleTriggersApi } from "./triggers-api.ts";

export interface ControlApiDeps {
  readonly nc: NatsConnection;
  readonly store: FunctionStore;
  readonly triggers: TriggerStore;
  readonly asyncStore: AsyncStore;
  /** False while the NATS connection is down: store-backed routes answer 503 then. */
  readonly natsConnected: () => boolean;
  /** The hosting gateway's routing table, shown by `GET /v1/status` beside the leader's view. */
  readonly routes: () => Record<string, Endpoint[]>;
  /** Called after a deploy or removal so the hosting gateway's route cache is current at once. */
  readonly onFunctionChange: (name: string, record: FunctionRecord | null, revision: number) => void;
}

/** Answers a control request, or null when no control route matches its path. */
export type ControlApi = (req: HttpRequest, path: string) => Promise<HttpResponse | null>;

/**
 * The control plane's HTTP routes under /v1/: functions (deploy, list, remove), triggers, dead
 * letters, cluster status and drain. The caller has checked the token. Kept apart from the gateway's
 * invocation path so that versions, secrets and the rest can grow without touching the hot path.
 */
export function createControlApi(deps: ControlApiDeps): ControlApi {
  const triggers = { functions: deps.store, triggers: deps.triggers, jsm: deps.asyncStore.jsm };
  const functions = { store: deps.store, onChange: deps.onFunctionChange };
  return async (req, path) =>
    (await handleClusterApi(req, path, { nc: deps.nc, routes: deps.routes })) ??
    (await handleDeadLetterApi(req, path, deps)) ??
    (await handleTriggersApi(req, path, triggers)) ??
    (path === "/v1/functions" || path.startsWith("/v1/functions/") ? handleFunctionsApi(req, path, functions) : null);
}
