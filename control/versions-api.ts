import { type HttpRequest, type HttpResponse, jsonResponse, parseJsonBody, safeDecode } from "../gateway/http-types.ts";
import {
  type FunctionRecord,
  type FunctionStore,
  HearthError,
  type VersionRecord,
  type VersionStore,
  validateFunctionName,
} from "../protocol/index.ts";
import { type Deployer, type Split, splitsOf } from "./deployer.ts";

export interface VersionsApiDeps {
  readonly store: FunctionStore;
  readonly versions: VersionStore;
  readonly deployer: Deployer;
}

/** A version as the API lists it, with the share of requests it serves now (0 when it is not deployed). */
export type VersionView = VersionRecord & { readonly percent: number };

/** What a function serves: one version at 100 %, or two with percentages. */
export interface DeploymentView {
  readonly versions: readonly Split[];
  /** Where `rollback` without a version returns. */
  readonly previousVersionId: number | null;
}

const ROUTE = /^\/v1\/functions\/([^/]+)\/(versions|deployment|rollback)(?:\/([^/]+))?$/;

/**
 * `GET /v1/functions/<fn>/versions[/<id>]`, `GET|PUT /v1/functions/<fn>/deployment` and
 * `POST /v1/functions/<fn>/rollback`. Returns null for other paths. Auth is checked by the caller.
 */
export async function handleVersionsApi(
  req: HttpRequest,
  path: string,
  deps: VersionsApiDeps,
): Promise<HttpResponse | null> {
  const match = ROUTE.exec(path);
  if (!match) return null;
  const name = validateFunctionName(safeDecode(match[1] ?? ""));
  const [resource, id] = [match[2], match[3]];
  const allow = (method: string) => {
    if (req.method !== method)
      throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  };
  if (resource === "versions") {
    allow("GET");
    const record = await current(deps.store, name);
    if (id === undefined) {
      const versions = await deps.versions.list(name);
      return jsonResponse(200, { versions: versions.map((v) => ({ ...v, percent: percentOf(record, v.id) })) });
    }
    const version = await deps.versions.get(name, versionIdOf(id));
    if (!version) throw new HearthError("ERR_VERSION_NOT_FOUND", `${name} has no version ${id}`);
    return jsonResponse(200, { version: { ...version, percent: percentOf(record, version.id) } });
  }
  if (id !== undefined) throw new HearthError("ERR_NOT_FOUND", `No route ${path}`);
  if (resource === "deployment") {
    if (req.method === "GET") return jsonResponse(200, { deployment: deploymentOf(await current(deps.store, name)) });
    allow("PUT");
    const body = objectBody(req);
    const record = await deps.deployer.setDeployment(name, body.versions as Split[]);
    return jsonResponse(200, { deployment: deploymentOf(record) });
  }
  allow("POST");
  const body = req.body.byteLength > 0 ? objectBody(req) : {};
  if (body.to !== undefined && (!Number.isInteger(body.to) || (body.to as number) < 1)) {
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `to must be a version id (an integer of at least 1), got ${JSON.stringify(body.to)}`,
    );
  }
  const outcome = await deps.deployer.rollback(name, body.to as number | undefined);
  return jsonResponse(200, {
    deployment: deploymentOf(outcome.record),
    from: outcome.from,
    to: outcome.to,
    secretsChanged: outcome.secretsChanged,
  });
}

export function deploymentOf(record: FunctionRecord): DeploymentView {
  return { versions: splitsOf(record), previousVersionId: record.previousVersionId ?? null };
}

function percentOf(record: FunctionRecord, id: number): number {
  if (record.canary?.id === id) return record.canary.percent;
  return record.versionId === id ? 100 - (record.canary?.percent ?? 0) : 0;
}

async function current(store: FunctionStore, name: string): Promise<FunctionRecord> {
  const record = await store.get(name);
  if (!record) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
  return record;
}

function versionIdOf(text: string): number {
  const id = Number(text);
  if (!Number.isInteger(id) || id < 1)
    throw new HearthError("ERR_BAD_REQUEST", `A version id is an integer of at least 1, got ${JSON.stringify(text)}`);
  return id;
}

function objectBody(req: HttpRequest): Record<string, unknown> {
  const body = parseJsonBody(req.body);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HearthError("ERR_BAD_REQUEST", "Body must be a JSON object");
  }
  return body as Record<string, unknown>;
}
