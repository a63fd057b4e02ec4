import { type HttpRequest, type HttpResponse, jsonResponse, parseJsonBody, safeDecode } from "../gateway/http-types.ts";
import {
  DEFAULT_NAMESPACE,
  type FunctionStore,
  HearthError,
  type NamespaceQuotas,
  type NamespaceRecord,
  type NamespaceStore,
  validateNamespaceName,
} from "../protocol/index.ts";
import { type NamespaceUsage, usageByNamespace } from "./quotas.ts";

export interface NamespacesApiDeps {
  readonly store: FunctionStore;
  readonly namespaces: NamespaceStore;
  readonly now?: () => Date;
}

/** A namespace as the API shows it: its record and what it holds now. */
export interface NamespaceView extends NamespaceRecord {
  readonly usage: NamespaceUsage;
}

const NAMESPACE_ROUTE = /^\/v1\/namespaces\/([^/]+)$/;
const QUOTA_FIELDS = ["concurrentInvocations", "invocationsPerMinute", "functions", "bundleBytes"] as const;
/** Quotas are counts and byte sizes: up to 2^40 (a terabyte of bundles) is room enough. */
const MAX_QUOTA = 2 ** 40;
const NO_USAGE: NamespaceUsage = { functions: 0, bundleBytes: 0 };

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}

/**
 * `{ quotas: { functions?, bundleBytes?, concurrentInvocations?, invocationsPerMinute? } }` onto the
 * quotas held: a named quota is set, `null` removes it, an absent one stays.
 */
export function parseQuotas(body: unknown, held: NamespaceQuotas = {}): NamespaceQuotas {
  const input = body === undefined || (body instanceof Uint8Array && body.byteLength === 0) ? {} : body;
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw bad("Body must be a JSON object");
  const unknownKeys = Object.keys(input).filter((k) => k !== "quotas");
  if (unknownKeys.length > 0) throw bad(`The body may only hold quotas, got ${unknownKeys.join(", ")}`);
  const quotas = (input as { quotas?: unknown }).quotas ?? {};
  if (typeof quotas !== "object" || quotas === null || Array.isArray(quotas)) {
    throw bad('quotas must be an object like {"functions": 20, "bundleBytes": 50000000}');
  }
  const unknown = Object.keys(quotas).filter((k) => !(QUOTA_FIELDS as readonly string[]).includes(k));
  // A typo such as `function` would otherwise set no quota at all.
  if (unknown.length > 0) throw bad(`quotas may only hold ${QUOTA_FIELDS.join(", ")}, got ${unknown.join(", ")}`);
  const result: Record<string, number> = { ...held };
  for (const field of QUOTA_FIELDS) {
    const value = (quotas as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (value === null) delete result[field];
    else if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_QUOTA) {
      throw bad(
        `quotas.${field} must be an integer from 0 to ${MAX_QUOTA} (or null to remove it), got ${JSON.stringify(value)}`,
      );
    } else result[field] = value;
  }
  return result;
}

/**
 * `GET /v1/namespaces[/<ns>]`, `POST /v1/namespaces/<ns>` (create, 409 if it exists), `PUT` (create or
 * change its quotas), `DELETE` (refused while it owns functions). `default` exists without a record;
 * giving it quotas stores one. Null for other paths. Admin only (control/authorize.ts).
 */
export async function handleNamespacesApi(
  req: HttpRequest,
  path: string,
  deps: NamespacesApiDeps,
): Promise<HttpResponse | null> {
  if (path === "/v1/namespaces") {
    if (req.method !== "GET") throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
    const [records, functions] = await Promise.all([deps.namespaces.list(), deps.store.list()]);
    const usage = usageByNamespace(functions);
    if (!records.some((r) => r.name === DEFAULT_NAMESPACE)) records.unshift(implicitDefault());
    const views = records.map((r) => ({ ...r, usage: usage.get(r.name) ?? NO_USAGE }));
    return jsonResponse(200, { namespaces: views });
  }
  const match = NAMESPACE_ROUTE.exec(path);
  if (!match) return null;
  const name = validateNamespaceName(safeDecode(match[1] ?? ""));
  const held = await deps.namespaces.get(name);
  const now = (deps.now?.() ?? new Date()).toISOString();
  switch (req.method) {
    case "GET": {
      const record = held ?? (name === DEFAULT_NAMESPACE ? implicitDefault() : null);
      if (!record) throw notFound(name);
      return jsonResponse(200, { namespace: await viewOf(record, deps) });
    }
    case "POST": {
      const record = { name, quotas: parseQuotas(bodyOf(req)), createdAt: now, updatedAt: now };
      if (held || !(await deps.namespaces.create(record))) {
        throw new HearthError(
          "ERR_NAMESPACE_CONFLICT",
          `Namespace ${name} exists already; change it with PUT (hearth namespaces set)`,
        );
      }
      return jsonResponse(201, { namespace: await viewOf(record, deps) });
    }
    case "PUT": {
      const record = {
        name,
        quotas: parseQuotas(bodyOf(req), held?.quotas),
        createdAt: held?.createdAt ?? now,
        updatedAt: now,
      };
      await deps.namespaces.put(record);
      return jsonResponse(held ? 200 : 201, { namespace: await viewOf(record, deps) });
    }
    case "DELETE": {
      if (name === DEFAULT_NAMESPACE) throw bad("The default namespace cannot be removed");
      if (!held) throw notFound(name);
      const owned = (await deps.store.list()).filter((r) => r.namespace === name).map((r) => r.name);
      if (owned.length > 0) {
        throw new HearthError(
          "ERR_NAMESPACE_CONFLICT",
          `Namespace ${name} still owns ${owned.length} function(s): ${owned.slice(0, 10).join(", ")}; remove them first`,
        );
      }
      await deps.namespaces.delete(name);
      return jsonResponse(200, { deleted: name });
    }
    default:
      throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  }
}

function implicitDefault(): NamespaceRecord {
  return {
    name: DEFAULT_NAMESPACE,
    quotas: {},
    createdAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };
}

function bodyOf(req: HttpRequest): unknown {
  return req.body.byteLength === 0 ? undefined : parseJsonBody(req.body);
}

function notFound(name: string): HearthError {
  return new HearthError("ERR_NAMESPACE_NOT_FOUND", `Namespace ${name} does not exist`);
}

async function viewOf(record: NamespaceRecord, deps: NamespacesApiDeps): Promise<NamespaceView> {
  const usage = usageByNamespace(await deps.store.list()).get(record.name) ?? NO_USAGE;
  return { ...record, usage };
}
