import {
  type HttpRequest,
  type HttpResponse,
  jsonResponse,
  originOf,
  parseJsonBody,
  safeDecode,
} from "../gateway/http-types.ts";
import {
  type FunctionInfo,
  type FunctionRecord,
  FunctionStore,
  HearthError,
  validateFunctionName,
} from "../protocol/index.ts";
import { parseDeployRequest } from "./deploy-request.ts";
import { prepareBundle } from "./prepare-bundle.ts";

export interface FunctionsApiDeps {
  readonly store: FunctionStore;
  /** Called after a successful deploy or removal so the local route cache is current at once. */
  readonly onChange: (name: string, record: FunctionRecord | null, revision: number) => void;
  readonly now?: () => Date;
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
    const records = await deps.store.list();
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
      const script = new TextEncoder().encode(await prepareBundle(deploy.code, deploy.filename));
      const previous = await deps.store.get(name);
      const now = (deps.now?.() ?? new Date()).toISOString();
      const runnable = {
        digest: FunctionStore.digestOf(script),
        bundleBytes: script.byteLength,
        env: deploy.env,
        memoryMb: deploy.memoryMb,
        timeoutMs: deploy.timeoutMs,
        cpuMs: deploy.cpuMs,
        concurrency: deploy.concurrency,
        maxBodyBytes: deploy.maxBodyBytes,
      };
      const record: FunctionRecord = {
        name,
        ...runnable,
        // Scaling bounds and the async policy are not part of the version: changing them must not
        // reload any isolate.
        ...deploy.settings,
        version: FunctionStore.versionOf(runnable),
        versionId: 1,
        createdAt: previous?.createdAt ?? now,
        updatedAt: now,
      };
      deps.onChange(name, record, await deps.store.put(record, script));
      return jsonResponse(previous ? 200 : 201, { function: summarize(record, req) });
    }
    case "DELETE": {
      const revision = await deps.store.delete(name);
      if (revision === null) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
      deps.onChange(name, null, revision);
      return jsonResponse(200, { deleted: name });
    }
    default:
      throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  }
}
