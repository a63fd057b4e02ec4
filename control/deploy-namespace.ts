import { type HttpRequest, parseJsonBody } from "../gateway/http-types.ts";
import {
  DEFAULT_NAMESPACE,
  type FunctionStore,
  HearthError,
  type NamespaceStore,
  validateNamespaceName,
} from "../protocol/index.ts";
import { defaultDeployNamespace, type Principal, requireAdmin, requireRight } from "./permissions.ts";

export interface DeployNamespaceDeps {
  readonly store: FunctionStore;
  readonly namespaces: NamespaceStore;
}

/**
 * Decides where a deploy (`PUT /v1/functions/<fn>`) goes and whether its principal may put it there,
 * before the deploy route reads the body for itself:
 * - a function that exists stays in its namespace; naming another one moves it, which needs admin;
 * - a new function goes where the body's `namespace` says, else to the one namespace a `deploy:<ns>`
 *   token deploys to, else to `default`;
 * - the target must exist (`default` always does), and the principal needs `deploy:<target>`.
 *
 * Returns the request to deploy with: when the body names no namespace and the target is not
 * `default`, the same body with `"namespace"` spliced in after its opening brace (no re-encoding of a
 * bundle of up to 10 MB), so the deploy route stores the namespace decided here.
 */
export async function prepareDeploy(
  principal: Principal,
  req: HttpRequest,
  fn: string,
  deps: DeployNamespaceDeps,
): Promise<HttpRequest> {
  const body = parseJsonBody(req.body);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HearthError("ERR_BAD_REQUEST", "Body must be a JSON object");
  }
  const named = (body as { namespace?: unknown }).namespace;
  const asked = named === undefined ? undefined : validateNamespaceName(named);
  const previous = await deps.store.get(fn);
  const current = previous ? (previous.namespace ?? DEFAULT_NAMESPACE) : undefined;
  if (current !== undefined && asked !== undefined && asked !== current) {
    requireAdmin(principal, `move function ${fn} from namespace ${current} to ${asked}`);
  }
  const target = asked ?? current ?? defaultDeployNamespace(principal);
  requireRight(principal, "deploy", current ?? target, `deploy function ${fn} to namespace ${target}`);
  if (target !== DEFAULT_NAMESPACE && (await deps.namespaces.get(target)) === null) {
    throw new HearthError(
      "ERR_NAMESPACE_NOT_FOUND",
      `Namespace ${target} does not exist; an admin creates it with \`hearth namespaces create ${target}\``,
    );
  }
  if (asked !== undefined || target === DEFAULT_NAMESPACE || Object.keys(body).length === 0) return req;
  return { ...req, body: withNamespace(req.body, target) };
}

/** `{"namespace":"<ns>",` + the rest of a non-empty JSON object after its opening brace. */
function withNamespace(body: Uint8Array, ns: string): Uint8Array {
  const brace = body.indexOf(0x7b); // "{": only whitespace can precede it in a JSON object
  const head = new TextEncoder().encode(`{"namespace":${JSON.stringify(ns)},`);
  const out = new Uint8Array(head.byteLength + body.byteLength - brace - 1);
  out.set(head, 0);
  out.set(body.subarray(brace + 1), head.byteLength);
  return out;
}
