import { type HttpRequest, parseJsonBody, safeDecode } from "../gateway/http-types.ts";
import {
  type AsyncStore,
  DEFAULT_NAMESPACE,
  type FunctionStore,
  HearthError,
  type NamespaceStore,
  type TriggerStore,
  validateFunctionName,
} from "../protocol/index.ts";
import { prepareDeploy } from "./deploy-namespace.ts";
import { allows, type Principal, type Right, requireAdmin, requireReadAll, requireRight } from "./permissions.ts";

export interface AuthorizeDeps {
  readonly store: FunctionStore;
  readonly namespaces: NamespaceStore;
  readonly triggers: TriggerStore;
  readonly asyncStore: AsyncStore;
}

const FUNCTION_ROUTE = /^\/v1\/functions\/([^/]+)(\/.*)?$/;
const TRIGGER_ROUTE = /^\/v1\/triggers\/([^/]+)$/;
const INVOCATION_ROUTE = /^\/v1\/invocations\/([^/]+)(?:\/response)?$/;

/**
 * The one place that decides whether a principal may make a control request (docs/tokens.md has the
 * table). Admin may do anything. Routes of one function (`/v1/functions/<fn>/...`) need `read` in
 * its namespace for GET, `deploy` for any other method; triggers, dead letters and invocation
 * statuses are judged by the namespace of the function they concern; `/v1/status` and listings
 * across functions need `read`; everything else (tokens, namespaces, nodes, backup, restore, and any
 * route added later that is not listed here) needs admin. Throws ERR_FORBIDDEN; a request it lets
 * through may still fail its route's own checks (400, 404). Returns the request to route: a deploy's
 * may carry the namespace decided for it (control/deploy-namespace.ts).
 *
 * Function records are read from the store, not the gateway's route cache: a function an admin just
 * moved to another namespace must not stay reachable through the old one.
 */
export async function authorize(
  principal: Principal,
  req: HttpRequest,
  path: string,
  deps: AuthorizeDeps,
): Promise<HttpRequest> {
  const fnRoute = FUNCTION_ROUTE.exec(path);
  // A deploy (PUT of the function itself) is judged where its target namespace is decided.
  if (fnRoute && req.method === "PUT" && fnRoute[2] === undefined) {
    return prepareDeploy(principal, req, validateFunctionName(safeDecode(fnRoute[1] ?? "")), deps);
  }
  await authorizeRoute(principal, req, path, fnRoute, deps);
  return req;
}

async function authorizeRoute(
  principal: Principal,
  req: HttpRequest,
  path: string,
  fnRoute: RegExpExecArray | null,
  deps: AuthorizeDeps,
): Promise<void> {
  if (principal.admin) return;
  const right: Right = req.method === "GET" || req.method === "HEAD" ? "read" : "deploy";
  // Every function listing filters by the caller's read rights (functions-api.ts).
  if (path === "/v1/functions") return;
  if (fnRoute) {
    const fn = validateFunctionName(safeDecode(fnRoute[1] ?? ""));
    return requireInFunction(principal, right, fn, deps, `${req.method} ${path}`);
  }
  if (path === "/v1/status") return requireReadAll(principal, "read the cluster status");
  if (path === "/v1/triggers") {
    if (req.method === "POST") {
      return requireInFunction(principal, "deploy", functionInBody(req), deps, "add a trigger to it");
    }
    const fn = queryOf(req).get("function");
    if (fn === null) return requireReadAll(principal, "list the triggers of every function (name one with ?function=)");
    return requireInFunction(principal, "read", validateFunctionName(fn), deps, "list its triggers");
  }
  const triggerRoute = TRIGGER_ROUTE.exec(path);
  if (triggerRoute) {
    const trigger = await deps.triggers.get(safeDecode(triggerRoute[1] ?? ""));
    if (!trigger) return; // the route answers 404
    return requireInFunction(principal, right, trigger.function, deps, `${req.method} ${path}`);
  }
  if (path === "/v1/dlq") {
    const fn = queryOf(req).get("function");
    if (fn === null)
      return requireReadAll(principal, "list the dead letters of every function (name one with ?function=)");
    return requireInFunction(principal, "read", validateFunctionName(fn), deps, "list its dead letters");
  }
  if (path === "/v1/dlq/replay") {
    return requireInFunction(principal, "deploy", functionInBody(req), deps, "replay its dead letters");
  }
  const invocation = INVOCATION_ROUTE.exec(path);
  if (invocation) {
    const status = await deps.asyncStore.status(safeDecode(invocation[1] ?? ""));
    if (!status) return; // the route answers 404
    return requireInFunction(principal, "status", status.function, deps, "read this invocation");
  }
  requireAdmin(principal, `use ${path}`);
}

/**
 * Checks `right` in the namespace of function `fn`. A function that does not exist belongs to no
 * namespace yet: treated as the default one, and a principal with no rights there gets the 404 the
 * route would give (there is nothing to name a scope for).
 */
async function requireInFunction(
  principal: Principal,
  right: Right,
  fn: string,
  deps: AuthorizeDeps,
  what: string,
): Promise<void> {
  const record = await deps.store.get(fn);
  const ns = record?.namespace ?? DEFAULT_NAMESPACE;
  if (!record && !allows(principal, right, ns)) {
    throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${fn} is not deployed`);
  }
  requireRight(principal, right, ns, `${what} (function ${fn}, namespace ${ns})`);
}

/** The `function` a POST body names (triggers, replays); the route's own parser gives the same 400s. */
function functionInBody(req: HttpRequest): string {
  const body = parseJsonBody(req.body) as { function?: unknown } | null;
  if (typeof body !== "object" || body === null || body.function === undefined) {
    throw new HearthError("ERR_BAD_REQUEST", 'function is required: {"function": "<fn>"}');
  }
  return validateFunctionName(body.function);
}

function queryOf(req: HttpRequest): URLSearchParams {
  const q = req.target.indexOf("?");
  return new URLSearchParams(q < 0 ? "" : req.target.slice(q + 1));
}
