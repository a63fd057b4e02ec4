import { fromBase64url, toBase64url } from "@exodus/bytes/base64.js";
import { cryptoError } from "./errors.ts";

const STRING_MEMBERS = ["kty", "use", "alg", "crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi", "k"] as const;

/**
 * A plain copy of a JsonWebKey argument: its string members, `key_ops` and `ext`. Copying reads
 * each member once (function code may pass getters) and leaves only data that can cross to the host.
 */
export function copyJwk(value: unknown): JsonWebKey {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    throw new TypeError("keyData must be a JsonWebKey object when format is jwk");
  }
  const source = value as Record<string, unknown>;
  const jwk: Record<string, unknown> = {};
  for (const member of STRING_MEMBERS) {
    const v = source[member];
    if (v === undefined) continue;
    if (typeof v !== "string") throw cryptoError("DataError", `JWK member "${member}" must be a string`);
    jwk[member] = v;
  }
  const ops = source.key_ops;
  if (ops !== undefined) {
    if (!Array.isArray(ops) || !ops.every((op) => typeof op === "string")) {
      throw cryptoError("DataError", 'JWK member "key_ops" must be an array of strings');
    }
    jwk.key_ops = [...ops];
  }
  if (source.ext !== undefined) {
    if (typeof source.ext !== "boolean") throw cryptoError("DataError", 'JWK member "ext" must be a boolean');
    jwk.ext = source.ext;
  }
  return jwk as JsonWebKey;
}

/**
 * The checks every JWK import makes (W3C Web Cryptography API, each algorithm's "import key" with
 * format "jwk"): `use`, `key_ops` and `ext` must allow what the caller asks for.
 */
export function checkJwkAllows(jwk: JsonWebKey, usages: readonly string[], extractable: boolean, use: string): void {
  if (usages.length > 0 && jwk.use !== undefined && jwk.use !== use) {
    throw cryptoError("DataError", `JWK "use" is "${jwk.use}", not "${use}"`);
  }
  if (jwk.key_ops !== undefined && !usages.every((u) => jwk.key_ops?.includes(u))) {
    throw cryptoError("DataError", 'JWK "key_ops" does not allow the requested usages');
  }
  if (jwk.ext === false && extractable) {
    throw cryptoError("DataError", 'JWK "ext" is false but an extractable key was requested');
  }
}

export function decodeBase64url(value: string | undefined, member: string): Uint8Array {
  if (value === undefined) throw cryptoError("DataError", `JWK member "${member}" is missing`);
  try {
    return fromBase64url(value, { padding: false });
  } catch {
    throw cryptoError("DataError", `JWK member "${member}" is not base64url`);
  }
}

export function encodeBase64url(bytes: Uint8Array): string {
  return toBase64url(bytes, { padding: false });
}
