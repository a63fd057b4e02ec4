import type { NatsConnection } from "@nats-io/transport-node";
import { unavailableWhileDisconnected } from "../gateway/error-response.ts";
import { type HttpRequest, type HttpResponse, jsonResponse, safeDecode } from "../gateway/http-types.ts";
import {
  type FunctionRecord,
  type FunctionStore,
  HearthError,
  LIMITS,
  type SecretKeyring,
  SecretStore,
  validateFunctionName,
} from "../protocol/index.ts";
import { ENV_NAME } from "./deploy-request.ts";

export interface SecretsApiDeps {
  readonly nc: NatsConnection;
  readonly store: FunctionStore;
  /** The gateway's keys (HEARTH_SECRETS_KEY); null: secrets can be listed and removed, not set. */
  readonly secretsKeyring?: SecretKeyring | null;
  readonly natsConnected: () => boolean;
  readonly onFunctionChange: (name: string, record: FunctionRecord | null, revision: number) => void;
  /**
   * Makes the function serve a version with these secret revisions (name → KV revision of the sealed
   * value): a changed secret is a new version, which workers load with the new value.
   */
  readonly applySecrets: (fn: string, revisions: Record<string, number>, message: string) => Promise<FunctionRecord>;
}

export interface SecretsApi {
  /** Answers a secrets route, or null when the path is not the secrets API's. */
  handle(req: HttpRequest, path: string): Promise<HttpResponse | null>;
  /** Removes every secret of a removed function, so one deployed later under its name starts clean. */
  removeAll(fn: string): Promise<void>;
}

const SECRETS_PATH = /^\/v1\/functions\/([^/]+)\/secrets(?:\/([^/]+))?$/;
const REENCRYPT_PATH = "/v1/secrets/reencrypt";

/**
 * Routes `GET /v1/functions/<fn>/secrets` (names, revisions, update times), `PUT` and `DELETE
 * /v1/functions/<fn>/secrets/<NAME>` (body `{ "value": "..." }`) and `POST /v1/secrets/reencrypt`.
 * A change makes the function a new version (`applySecrets`). Values are never answered, logged or
 * echoed in errors. Auth is checked by the caller.
 */
export function createSecretsApi(deps: SecretsApiDeps): SecretsApi {
  const keyring = deps.secretsKeyring ?? null;
  let opening: Promise<SecretStore> | null = null;
  const secrets = () => {
    opening ??= SecretStore.open(deps.nc, keyring).catch((err: unknown) => {
      opening = null; // try again on the next request
      throw err;
    });
    return opening;
  };

  const handle = async (req: HttpRequest, path: string): Promise<HttpResponse | null> => {
    if (path === REENCRYPT_PATH) {
      if (req.method !== "POST")
        throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
      return unavailableWhileDisconnected(deps) ?? jsonResponse(200, await (await secrets()).reencrypt());
    }
    const match = SECRETS_PATH.exec(path);
    if (!match?.[1]) return null;
    const unavailable = unavailableWhileDisconnected(deps);
    if (unavailable) return unavailable;
    const fn = validateFunctionName(safeDecode(match[1]));
    const name = match[2] === undefined ? null : validateSecretName(safeDecode(match[2]));
    const record = await deps.store.get(fn);
    if (!record) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${fn} is not deployed`);
    const store = await secrets();

    if (name === null) {
      if (req.method !== "GET")
        throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
      return jsonResponse(200, { secrets: await store.list(fn) });
    }
    const apply = async (message: string) => {
      const revisions = Object.fromEntries((await store.list(fn)).map((s) => [s.name, s.revision]));
      return deps.applySecrets(fn, revisions, message);
    };
    switch (req.method) {
      case "PUT": {
        const value = parseSecretBody(req.body);
        if (Object.hasOwn(record.env, name)) {
          throw new HearthError(
            "ERR_BAD_REQUEST",
            `Function ${fn} has a plain env variable ${name}: a secret may not shadow it. Redeploy without it, or name the secret otherwise`,
          );
        }
        const existing = await store.list(fn);
        if (
          !existing.some((s) => s.name === name) &&
          Object.keys(record.env).length + existing.length >= LIMITS.maxEnvVars
        )
          throw new HearthError(
            "ERR_BAD_REQUEST",
            `Function ${fn} may have at most ${LIMITS.maxEnvVars} variables and secrets`,
          );
        const revision = await store.put(fn, name, value);
        const updated = await apply(`secret ${name} set`);
        const created = !existing.some((s) => s.name === name);
        return jsonResponse(created ? 201 : 200, { secret: { name, revision }, version: updated.version });
      }
      case "DELETE": {
        if ((await store.delete(fn, name)) === null)
          throw new HearthError("ERR_NOT_FOUND", `Function ${fn} has no secret ${name}`);
        const updated = await apply(`secret ${name} removed`);
        return jsonResponse(200, { deleted: name, version: updated.version });
      }
      default:
        throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
    }
  };
  return {
    handle,
    removeAll: async (fn) => {
      await (await secrets()).deleteAll(fn);
    },
  };
}

function validateSecretName(name: string): string {
  if (!ENV_NAME.test(name) || name.length > 255)
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `Secret name ${JSON.stringify(name.slice(0, 255))} must match ${ENV_NAME} (like an env variable), at most 255 characters`,
    );
  return name;
}

/**
 * `{ "value": "<string>" }`. Errors never quote the body: a malformed one still holds the secret
 * (and JSON.parse's own message quotes the text it choked on).
 */
function parseSecretBody(body: Uint8Array): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HearthError("ERR_BAD_REQUEST", 'Body is not valid JSON; send { "value": "..." }');
  }
  const value = (parsed as { value?: unknown } | null)?.value;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || typeof value !== "string")
    throw new HearthError("ERR_BAD_REQUEST", 'Body must be { "value": "<string>" }');
  if (Object.keys(parsed).length !== 1) throw new HearthError("ERR_BAD_REQUEST", 'Body must hold only "value"');
  if (Buffer.byteLength(value) > LIMITS.maxEnvValueBytes)
    throw new HearthError("ERR_BAD_REQUEST", `A secret's value may be at most ${LIMITS.maxEnvValueBytes} bytes`);
  return value;
}
