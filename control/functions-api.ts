import {
  type HttpRequest,
  type HttpResponse,
  jsonResponse,
  originOf,
  parseJsonBody,
  safeDecode,
} from "../gateway/http-types.ts";
import {
  DEFAULT_NAMESPACE,
  type FunctionInfo,
  type FunctionRecord,
  type FunctionStore,
  HearthError,
  validateFunctionName,
} from "../protocol/index.ts";
import { LIMIT_BOUNDS, parseDeployRequest } from "./deploy-request.ts";
import type { Deployer } from "./deployer.ts";
import type { ModuleCheck } from "./module-check.ts";
import { prepareBundleWithMap } from "./prepare-bundle.ts";
import { checkDeployQuota, type QuotaDeps } from "./quotas.ts";

export interface FunctionsApiDeps {
  readonly store: FunctionStore;
  readonly deployer: Deployer;
  /** The function and namespace stores a deploy's quota check reads (control/quotas.ts). */
  readonly quotas: QuotaDeps;
  /** Which records the caller may read (control/authorize.ts); the listing shows only those. */
  readonly visible?: (record: FunctionRecord) => boolean;
  /** Evaluates a deploy's module before anything is stored (control/module-check.ts). */
  readonly moduleCheck: ModuleCheck;
}

const FUNCTION_PATH = /^\/v1\/functions\/([^/]+)$/;

function summarize(record: FunctionRecord, req: HttpRequest): FunctionInfo {
  return { ...record, url: `${originOf(req)}/fn/${record.name}` };
}

/** Routes `/v1/functions[...]`. Auth is checked by the caller. */
export async function handleFunctionsApi(
  req: HttpRequest,
  path: string,
  deps: FunctionsApiDeps,
): Promise<HttpResponse> {
  if (path === "/v1/functions") {
    if (req.method !== "GET") throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
    const records = (await deps.store.list()).filter((r) => deps.visible?.(r) ?? true);
    return jsonResponse(200, { functions: records.map((r) => summarize(r, req)) });
  }
  const match = FUNCTION_PATH.exec(path);
  if (!match?.[1]) throw new HearthError("ERR_NOT_FOUND", `No route ${path}`);
  const name = validateFunctionName(safeDecode(match[1]));

  switch (req.method) {
    case "GET": {
      const record = await deps.store.get(name);
      if (!record) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
      return jsonResponse(200, { function: summarize(record, req) });
    }
    case "PUT": {
      const deploy = parseDeployRequest(parseJsonBody(req.body));
      const prepared = await prepareBundleWithMap(deploy.code, deploy.filename, deploy.sourceMap);
      const script = new TextEncoder().encode(prepared.script);
      const namespace = deploy.settings.namespace ?? DEFAULT_NAMESPACE;
      await checkDeployQuota(deps.quotas, { fn: name, namespace, bundleBytes: script.byteLength });
      const memoryMb = deploy.limits.memoryMb ?? (await deps.store.get(name))?.memoryMb ?? LIMIT_BOUNDS.memoryMb[2];
      await deps.moduleCheck.check({
        name,
        script: prepared.script,
        memoryMb,
        ...(prepared.sourceMap ? { sourceMap: prepared.sourceMap } : {}),
      });
      const sourceMap = prepared.sourceMap === undefined ? undefined : new TextEncoder().encode(prepared.sourceMap);
      const { record, created, version, changes } = await deps.deployer.deploy(name, deploy, script, sourceMap);
      return jsonResponse(created ? 201 : 200, {
        function: summarize(record, req),
        version: version?.id ?? null,
        changes,
      });
    }
    case "DELETE": {
      const revision = await deps.deployer.remove(name);
      if (revision === null) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
      return jsonResponse(200, { deleted: name });
    }
    default:
      throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  }
}
