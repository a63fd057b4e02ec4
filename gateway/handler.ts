import { type ControlApi, type Principal, requireRight } from "../control/index.ts";
import {
  DEFAULT_NAMESPACE,
  type FunctionRecord,
  type FunctionStore,
  type HeaderPairs,
  HearthError,
  LIMITS,
  type Logger,
  traceOfHeaders,
  type VersionStore,
  validateFunctionName,
  withTraceHeaders,
} from "../protocol/index.ts";
import type { AdmissionLimits } from "./admission-limits/index.ts";
import { type AsyncInvokeDeps, acceptAsync, prefersAsync } from "./async-invoke.ts";
import { errorResponse, thrownResponse } from "./error-response.ts";
import type { GatewayMetrics } from "./gateway-metrics.ts";
import { type HttpRequest, type HttpResponse, jsonResponse, safeDecode } from "./http-types.ts";
import { invokeFunction } from "./invoke-route.ts";
import type { Invoker } from "./invoker.ts";
import type { RouteTable } from "./route-table.ts";
import { canaryView, chooseVersion, versionOverride } from "./version-choice.ts";

export interface HandlerDeps extends AsyncInvokeDeps {
  readonly store: FunctionStore;
  /** Read only for a `Hearth-Version` override naming a version that is not deployed. */
  readonly versions: VersionStore;
  readonly routes: RouteTable;
  readonly invoker: Invoker;
  /** Rate limits and namespace invocation quotas; absent: none are enforced (tests). */
  readonly limits?: AdmissionLimits;
  /** Who a request acts as, from its token (gateway/auth.ts); throws ERR_UNAUTHORIZED. */
  readonly principalOf: (req: { readonly headers: HeaderPairs }) => Principal;
  readonly readiness: () => { ready: boolean; reasons: string[] };
  /** The control plane's routes under /v1/ (control/), which authorize each request by its token. */
  readonly control: ControlApi;
  readonly log: Logger;
  /**
   * Host-based routing: with `.fn.example` (see parseFunctionsDomain), a request for Host
   * `hello.fn.example[:port]` invokes `hello` with its path as it is. Null or absent: off.
   */
  readonly functionsDomain?: string | null;
  /** Request counts and durations, cold starts, `GET /metrics` (absent: none, and /metrics is 404). */
  readonly metrics?: GatewayMetrics;
}

/** `/fn/<name>` then the rest of the path (always starting with `/`), then the query. */
const INVOKE_PATH = /^\/fn\/([^/?]*)([^?]*)(\?.*)?$/;

/**
 * Matches a Host under the functions domain, capturing the part before it (checked as a function
 * name afterwards, so `a.b.fn.example` is refused, not routed to `b`). A trailing dot (a fully
 * qualified name) and a port are allowed. Built once; hosts that do not match allocate nothing.
 */
function hostPattern(suffix: string): RegExp {
  return new RegExp(`^(.+)${suffix.replaceAll(".", "\\.")}\\.?(?::\\d{1,5})?$`, "i");
}

/** The function a request's Host names under the functions domain, or null when it names none. */
function functionOfHost(pattern: RegExp | null, headers: HeaderPairs): string | null {
  if (pattern === null) return null;
  for (const [name, value] of headers) {
    if (name !== "host") continue;
    const match = pattern.exec(value);
    return match ? validateFunctionName((match[1] as string).toLowerCase()) : null;
  }
  return null;
}

function isControlTarget(target: string): boolean {
  return target.startsWith("/v1") && (target.length === 3 || target[3] === "/" || target[3] === "?");
}

/**
 * The gateway's whole HTTP behaviour as one async function, callable without a socket:
 * health, readiness, the control API under /v1/ and invocations under /fn/ (and, with a functions
 * domain, on each function's own host).
 */
export function createHandler(deps: HandlerDeps): (req: HttpRequest) => Promise<HttpResponse> {
  const byHost = deps.functionsDomain ? hostPattern(deps.functionsDomain) : null;
  const route = async (req: HttpRequest): Promise<HttpResponse> => {
    try {
      // A function's own origin is wholly its own: /fn/..., /v1/... and /healthz there are its paths.
      const hostFunction = functionOfHost(byHost, req.headers);
      if (hostFunction !== null) {
        if (req.target[0] !== "/") {
          throw new HearthError("ERR_BAD_REQUEST", `Request target ${JSON.stringify(req.target)} is not a path`);
        }
        const record = await lookup(deps, hostFunction);
        return await observeInvocation(deps, record, req, req.target, false);
      }
      const invoke = INVOKE_PATH.exec(req.target);
      if (invoke) {
        const name = validateFunctionName(safeDecode(invoke[1] ?? ""));
        const record = await lookup(deps, name);
        const rest = (invoke[2] || "/") + (invoke[3] ?? "");
        return await observeInvocation(deps, record, req, rest, true);
      }
      const path = req.target.split("?", 1)[0] ?? "/";
      if (path === "/healthz") return jsonResponse(200, { ok: true });
      if (path === "/readyz") {
        const readiness = deps.readiness();
        return jsonResponse(readiness.ready ? 200 : 503, readiness);
      }
      if (path === "/metrics" && deps.metrics) return await metricsResponse(deps, deps.metrics, req);
      if (path === "/v1" || path.startsWith("/v1/")) {
        const answer = await deps.control(req, path);
        if (answer) return answer;
        throw new HearthError("ERR_NOT_FOUND", `No route ${path}`);
      }
      throw new HearthError("ERR_NOT_FOUND", `No route ${path}; functions are under /fn/<name>`);
    } catch (err) {
      return thrownResponse(err, deps.log);
    }
  };
  const metrics = deps.metrics;
  if (!metrics) return route;
  return async (req) => {
    const started = performance.now();
    const response = await route(req);
    metrics.observe(response, started);
    return response;
  };
}

/**
 * `GET /metrics`: Prometheus text, for a token that may read every namespace (admin or `read`):
 * the series name every function. Prometheus sends it as `authorization: { credentials: <token> }`.
 */
async function metricsResponse(deps: HandlerDeps, metrics: GatewayMetrics, req: HttpRequest): Promise<HttpResponse> {
  const principal = deps.principalOf(req);
  if (!principal.admin && !principal.readAll) {
    throw new HearthError(
      "ERR_FORBIDDEN",
      `Token ${JSON.stringify(principal.name)} may not read metrics: that needs the scope read (or admin)`,
    );
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    throw new HearthError("ERR_METHOD_NOT_ALLOWED", "/metrics takes GET");
  }
  return { status: 200, headers: [["content-type", metrics.registry.contentType]], body: await metrics.text() };
}

/**
 * One invocation with its trace context (W3C traceparent continued or started: the function sees
 * ours in its request headers, an async one stores it with the invocation), its metrics label and
 * its cold start counted, and log lines about its failure carrying the trace id.
 */
async function observeInvocation(
  deps: HandlerDeps,
  record: FunctionRecord,
  req: HttpRequest,
  rest: string,
  mounted: boolean,
): Promise<HttpResponse> {
  const trace = traceOfHeaders(req.headers);
  const traced: HttpRequest = trace ? { ...req, headers: withTraceHeaders(req.headers, trace) } : req;
  let response: HttpResponse;
  try {
    // No warm executor: this request waits for the cold path (an async one does not wait).
    const async = prefersAsync(req.headers);
    if (deps.metrics && !async && !deps.invoker.router.isWarm(record.name))
      deps.metrics.coldStart(record.name, record.version);
    response = await runInvocation(deps, record, traced, rest, mounted, async);
  } catch (err) {
    response = thrownResponse(err, deps.log.child({ fn: record.name, traceId: trace?.traceId }));
  }
  return deps.metrics ? deps.metrics.labelResponse(response, record.name) : response;
}

export interface AdmissionDeps {
  readonly routes: RouteTable;
  /** Resolves the token of a control request (401 before its body is read). */
  readonly principalOf: (req: { readonly headers: HeaderPairs }) => Principal;
  readonly log: Logger;
  readonly functionsDomain?: string | null;
  /** Invocation bodies: the platform's limit (a function's own lower limit comes from its record). */
  readonly maxBodyBytes: number;
  /** Control API bodies (a deploy carries the bundle as a JSON string). */
  readonly controlBodyBytes: number;
}

/**
 * Judges a request that declares a body from its target and headers alone, before a byte of the body
 * is read. `declaredBytes` is the content-length, or -1 for a chunked body. Returns the limit to read
 * the body with, or the answer to give now: 401, 400 for a bad function name, 413 for a declared
 * length over the limit.
 */
export type Admission = (target: string, headers: HeaderPairs, declaredBytes: number) => number | HttpResponse;

/**
 * The Admission that routes as the handler does: the control API wants the token first (401
 * without reading the body), an invocation the function's body limit when the route cache knows the
 * function (no store read here; an unknown function gets the platform's limit and its 404 from the
 * handler). A body no larger than the smallest limit a function can have is let through untouched,
 * so the warm path of small requests pays no routing twice.
 */
export function createAdmission(deps: AdmissionDeps): Admission {
  const byHost = deps.functionsDomain ? hostPattern(deps.functionsDomain) : null;
  const alwaysFits = Math.min(LIMITS.minBodyBytes, deps.maxBodyBytes);
  return (target, headers, declaredBytes) => {
    const control = isControlTarget(target);
    if (declaredBytes >= 0 && declaredBytes <= alwaysFits && !control) return deps.maxBodyBytes;
    try {
      let name = functionOfHost(byHost, headers);
      if (name === null) {
        const invoke = INVOKE_PATH.exec(target);
        if (invoke) name = validateFunctionName(safeDecode(invoke[1] ?? ""));
        else if (control) {
          deps.principalOf({ headers });
          return within(declaredBytes, deps.controlBodyBytes, "the");
        }
      }
      if (name === null) return within(declaredBytes, deps.maxBodyBytes, "the");
      const own = deps.routes.get(name)?.maxBodyBytes;
      return own !== undefined && own < deps.maxBodyBytes
        ? within(declaredBytes, own, `${name}'s`)
        : within(declaredBytes, deps.maxBodyBytes, "the");
    } catch (err) {
      return thrownResponse(err, deps.log);
    }
  };
}

/** `limit` when the declared length (-1: chunked, judged while reading) fits, else the 413. */
function within(declaredBytes: number, limit: number, whose: string): number | HttpResponse {
  if (declaredBytes <= limit) return limit;
  return errorResponse(
    "ERR_PAYLOAD_TOO_LARGE",
    `Request body (content-length ${declaredBytes}) is over ${whose} ${limit} byte limit`,
  );
}

/**
 * Runs the invocation now, or with `Prefer: respond-async` (`async`, read once by the caller) stores
 * it and answers 202. An Idempotency-Key on a sync request is ignored: nothing is stored that a retry could be matched
 * against, and a sync retry runs the function again as it always has.
 */
async function runInvocation(
  deps: HandlerDeps,
  record: FunctionRecord,
  req: HttpRequest,
  rest: string,
  mounted: boolean,
  async: boolean,
): Promise<HttpResponse> {
  const override = versionOverride(req.headers);
  // Public functions pay one field test here; see privateRequest.
  const seen = record.access === "private" || override !== null ? privateRequest(deps, record, req) : req;
  // Rate limit and namespace quotas (admission-limits/): a 429 before anything is stored or sent.
  const admitted = deps.limits?.admit(record, !async) ?? null;
  const release = admitted instanceof Promise ? await admitted : admitted;
  // Async invocations run the version that serves when they run, so only sync ones choose here.
  if (async) return acceptAsync(deps, record, seen, rest, mounted);
  try {
    const served =
      override === null ? chooseVersion(record, req.headers) : await overriddenVersion(deps, record, override, req);
    return await invokeFunction(deps.invoker, served, seen, rest, deps.log, mounted);
  } finally {
    release?.();
  }
}

/**
 * The request as a private function sees it, once its caller holds `invoke:<ns>`, `deploy:<ns>` or
 * admin (401 without a valid token, 403 without the scope). The `Authorization` header is Hearth's
 * here, so it is taken off: the function never sees a platform token. (A request with a
 * `Hearth-Version` override comes here too, for the same reason.)
 */
function privateRequest(deps: HandlerDeps, record: FunctionRecord, req: HttpRequest): HttpRequest {
  if (record.access === "private") {
    const ns = record.namespace ?? DEFAULT_NAMESPACE;
    requireRight(deps.principalOf(req), "invoke", ns, `invoke private function ${record.name} (namespace ${ns})`);
  }
  return { ...req, headers: req.headers.filter(([name]) => name !== "authorization") };
}

/**
 * The version a `Hearth-Version: <id>` header asks for, deployed or not, so a version can be tried
 * at 0 % before it takes traffic. Only a caller with a control token may choose: anyone else could
 * otherwise reach code its owner has rolled back.
 */
async function overriddenVersion(
  deps: HandlerDeps,
  record: FunctionRecord,
  override: string,
  req: HttpRequest,
): Promise<FunctionRecord> {
  const ns = record.namespace ?? DEFAULT_NAMESPACE;
  requireRight(deps.principalOf(req), "deploy", ns, `choose a version of ${record.name} (namespace ${ns})`);
  const id = Number(override);
  if (!Number.isInteger(id) || id < 1) {
    throw new HearthError("ERR_BAD_REQUEST", `Hearth-Version must be a version id, got ${JSON.stringify(override)}`);
  }
  if (id === record.versionId) return record;
  if (id === record.canary?.id) return canaryView(record);
  const version = await deps.versions.get(record.name, id);
  if (!version) throw new HearthError("ERR_VERSION_NOT_FOUND", `${record.name} has no version ${id}`);
  const { fn: _fn, id: _id, createdAt: _createdAt, message: _message, ...runnable } = version;
  const { canary: _canary, secrets: _secrets, ...rest } = record;
  return { ...rest, ...runnable, versionId: id };
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
