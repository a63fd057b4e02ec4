import {
  type FunctionRecord,
  type FunctionStore,
  HearthError,
  type Logger,
  validateFunctionName,
} from "../protocol/index.ts";
import { type ClusterApiDeps, handleClusterApi } from "./cluster-api.ts";
import { handleControlApi } from "./control-api.ts";
import { thrownResponse } from "./error-response.ts";
import { type HttpRequest, type HttpResponse, jsonResponse, safeDecode } from "./http-types.ts";
import { invokeFunction } from "./invoke-route.ts";
import type { Invoker } from "./invoker.ts";
import type { RouteTable } from "./route-table.ts";

export interface HandlerDeps {
  readonly store: FunctionStore;
  readonly routes: RouteTable;
  readonly invoker: Invoker;
  readonly checkToken: (req: HttpRequest) => void;
  readonly readiness: () => { ready: boolean; reasons: string[] };
  readonly cluster: ClusterApiDeps;
  readonly log: Logger;
}

/** `/fn/<name>` then the rest of the path (always starting with `/`), then the query. */
const INVOKE_PATH = /^\/fn\/([^/?]*)([^?]*)(\?.*)?$/;

/**
 * The gateway's whole HTTP behaviour as one async function, callable without a socket:
 * health, readiness, the control API under /v1/ and invocations under /fn/.
 */
export function createHandler(deps: HandlerDeps): (req: HttpRequest) => Promise<HttpResponse> {
  return async (req) => {
    try {
      const invoke = INVOKE_PATH.exec(req.target);
      if (invoke) {
        const name = validateFunctionName(safeDecode(invoke[1] ?? ""));
        const record = await lookup(deps, name);
        const rest = (invoke[2] || "/") + (invoke[3] ?? "");
        return await invokeFunction(deps.invoker, record, req, rest);
      }
      const path = req.target.split("?", 1)[0] ?? "/";
      if (path === "/healthz") return jsonResponse(200, { ok: true });
      if (path === "/readyz") {
        const readiness = deps.readiness();
        return jsonResponse(readiness.ready ? 200 : 503, readiness);
      }
      if (path === "/v1" || path.startsWith("/v1/")) {
        deps.checkToken(req);
        const clusterResponse = await handleClusterApi(req, path, deps.cluster);
        if (clusterResponse) return clusterResponse;
        return await handleControlApi(req, path, {
          store: deps.store,
          onChange: (fn, record, revision) => deps.routes.set(fn, record, revision),
        });
      }
      throw new HearthError("ERR_NOT_FOUND", `No route ${path}; functions are under /fn/<name>`);
    } catch (err) {
      return thrownResponse(err, deps.log);
    }
  };
}

/** The route cache answers; a miss asks the store once, since a deploy on another gateway may be in flight. */
async function lookup(deps: HandlerDeps, name: string): Promise<FunctionRecord> {
  const cached = deps.routes.get(name);
  if (cached) return cached;
  const entry = await deps.store.getEntry(name);
  if (!entry) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
  deps.routes.set(name, entry.record, entry.revision);
  return entry.record;
}
