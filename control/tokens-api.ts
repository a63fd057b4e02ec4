import { type HttpRequest, type HttpResponse, jsonResponse, parseJsonBody, safeDecode } from "../gateway/http-types.ts";
import {
  generateToken,
  HearthError,
  parseScopes,
  parseTokenName,
  type TokenRecord,
  type TokenStore,
  type TokenView,
} from "../protocol/index.ts";

export interface TokensApiDeps {
  readonly tokens: TokenStore;
  readonly now?: () => Date;
}

/** `POST /v1/tokens`: the token, shown this once, beside what `GET /v1/tokens` lists. */
export interface CreatedToken extends TokenView {
  readonly token: string;
}

const TOKEN_ROUTE = /^\/v1\/tokens\/([^/]+)$/;

function viewOf({ sha256: _hash, ...view }: TokenRecord): TokenView {
  return view;
}

/**
 * `POST /v1/tokens {name, scopes}` (201, the token once), `GET /v1/tokens` (ids, names, scopes: never
 * a token or its hash), `DELETE /v1/tokens/<id>` (revoke). Null for other paths. Admin only
 * (control/authorize.ts).
 */
export async function handleTokensApi(
  req: HttpRequest,
  path: string,
  deps: TokensApiDeps,
): Promise<HttpResponse | null> {
  if (path === "/v1/tokens") {
    if (req.method === "GET") return jsonResponse(200, { tokens: (await deps.tokens.list()).map(viewOf) });
    if (req.method !== "POST")
      throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
    const body = parseJsonBody(req.body);
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new HearthError(
        "ERR_BAD_REQUEST",
        'Body must be a JSON object like {"name": "ci", "scopes": ["deploy:team-a"]}',
      );
    }
    const input = body as Record<string, unknown>;
    const name = parseTokenName(input.name);
    const scopes = parseScopes(input.scopes);
    const { token, id, sha256 } = generateToken();
    const record: TokenRecord = { id, name, scopes, sha256, createdAt: (deps.now?.() ?? new Date()).toISOString() };
    await deps.tokens.put(record);
    const created: CreatedToken = { ...viewOf(record), token };
    return jsonResponse(201, { token: created });
  }
  const match = TOKEN_ROUTE.exec(path);
  if (!match) return null;
  if (req.method !== "DELETE")
    throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  const id = safeDecode(match[1] ?? "");
  if (!(await deps.tokens.delete(id))) throw new HearthError("ERR_NOT_FOUND", `No token ${JSON.stringify(id)}`);
  return jsonResponse(200, { revoked: id });
}
