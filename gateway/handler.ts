import type { ControlApi } from "../control/index.ts";
import {
  type FunctionRecord,
  type FunctionStore,
  type HeaderPairs,
  HearthError,
  LIMITS,
  type Logger,
  validateFunctionName,
} from "../protocol/index.ts";
import { handleInvocationApi } from "./async-api.ts";
import { type AsyncInvokeDeps, acceptAsync, prefersAsync } from "./async-invoke.ts";
import { errorResponse, thrownResponse } from "./error-response.ts";
import { type HttpRequest, type HttpResponse, jsonResponse, safeDecode } from "./http-types.ts";
import { invokeFunction } from "./invoke-route.ts";
import type { Invoker } from "./invoker.ts";
import type { RouteTable } from "./route-table.ts";

export interface HandlerDeps extends AsyncInvokeDeps {
  readonly store: FunctionStore;
  readonly routes: RouteTable;
  readonly invoker: Invoker;
  readonly checkToken: (req: { readonly headers: HeaderPairs }) => void;
  readonly readiness: () => { ready: boolean; reasons: string[] };
  /** The control plane's routes under /v1/ (control/), asked after the invocation-status routes. */
  readonly control: ControlApi;
  readonly log: Logger;
  /**
   * Host-based routing: with `.fn.example` (see parseFunctionsDomain), a request for Host
   * `hello.fn.example[:port]` invokes `hello` with its path as it is. Null or absent: off.
   */
  readonly functionsDomain?: string | null;
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
  return async (req) => {
    try {
      // A function's own origin is wholly its own: /fn/..., /v1/... and /healthz there are its paths.
      const hostFunction = functionOfHost(byHost, req.headers);
      if (hostFunction !== null) {
        if (req.target[0] !== "/") {
          throw new HearthError("ERR_BAD_REQUEST", `Request target ${JSON.stringify(req.target)} is not a path`);
        }
        const record = await lookup(deps, hostFunction);
        return await runInvocation(deps, record, req, req.target, false);
      }
      const invoke = INVOKE_PATH.exec(req.target);
      if (invoke) {
        const name = validateFunctionName(safeDecode(invoke[1] ?? ""));
        const record = await lookup(deps, name);
        const rest = (invoke[2] || "/") + (invoke[3] ?? "");
        return await runInvocation(deps, record, req, rest, true);
      }
      const path = req.target.split("?", 1)[0] ?? "/";
      if (path === "/healthz") return jsonResponse(200, { ok: true });
      if (path === "/readyz") {
        const readiness = deps.readiness();
        return jsonResponse(readiness.ready ? 200 : 503, readiness);
      }
      if (path === "/v1" || path.startsWith("/v1/")) {
        deps.checkToken(req);
        const answer = (await handleInvocationApi(req, path, deps)) ?? (await deps.control(req, path));
        if (answer) return answer;
        throw new HearthError("ERR_NOT_FOUND", `No route ${path}`);
      }
      throw new HearthError("ERR_NOT_FOUND", `No route ${path}; functions are under /fn/<name>`);
    } catch (err) {
      return thrownResponse(err, deps.log);
    }
  };
}

export interface AdmissionDeps {
  readonly routes: RouteTable;
  readonly checkToken: (req: { readonly headers: HeaderPairs }) => void;
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
          deps.checkToken({ headers });
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
 * Runs the invocation now, or with `Prefer: respond-async` stores it and answers 202. An
 * Idempotency-Key on a sync request is ignored: nothing is stored that a retry could be matched
 * against, and a sync retry runs the function again as it always has.
 */
function runInvocation(
  deps: HandlerDeps,
  record: FunctionRecord,
  req: HttpRequest,
  rest: string,
  mounted: boolean,
): Promise<HttpResponse> {
  return prefersAsync(req.headers)
    ? acceptAsync(deps, record, req, rest, mounted)
    : invokeFunction(deps.invoker, record, req, rest, deps.log, mounted);
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
