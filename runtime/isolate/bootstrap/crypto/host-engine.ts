import { hashName, type Params } from "./algorithms.ts";
import { bufferOf, copyOf, isBufferSource } from "./bytes.ts";
import { CryptoKey, createKey } from "./crypto-key.ts";
import type { Engine } from "./engine.ts";
import { cryptoError } from "./errors.ts";
import { onHost } from "./host-queue.ts";
import { CRYPTO_LIMITS } from "./limits.ts";
import { type WireKey, type WireNewKey, type WireParams, type WireRequest, wireBytes } from "./wire.ts";

/**
 * ECDSA, Ed25519, RSA, ECDH, X25519 and AES on the host's native Web Crypto (Node's, on OpenSSL),
 * one stateless request per operation. In JS they cost 4–6× the CPU even counting the bridge (ES256
 * sign + verify ≈ 2.5–2.7 ms with @noble/curves against ≈ 0.5–0.8 ms through here; AES-GCM ≈ 19 ms
 * per MiB against ≈ 4–8 ms) and up to 2.2 MB of heap per isolate: docs/architecture.md, "crypto.subtle".
 */

function wireKey(key: CryptoKey): WireKey {
  const material = CryptoKey.materialOf(key);
  if (material.where !== "host") throw cryptoError("InvalidAccessError", "The key does not belong to this algorithm");
  return { jwk: material.jwk, algorithm: material.algorithm };
}

/** Copies the parameters into data that can cross: buffers copied now, `hash` by name, `public` as its JWK. */
function wireParams(params: Params): WireParams {
  const out: WireParams = { name: params.name };
  for (const [member, value] of Object.entries(params)) {
    if (member === "name") continue;
    if (member === "hash") out.hash = { name: hashName(value) };
    else if (member === "publicExponent") out.publicExponent = Uint8Array.from(value as ArrayLike<number>);
    else if (member === "public") out.public = publicKeyFor(params.name, value);
    else if (isBufferSource(value)) out[member] = bufferOf(copyOf(value, member));
    else if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") out[member] = value;
  }
  return out;
}

/** ECDH/X25519's `public` member: the peer's public key, of the same algorithm (§ "derive bits"). */
function publicKeyFor(name: string, value: unknown): WireKey {
  if (!CryptoKey.isKey(value)) throw new TypeError(`${name}: public must be a CryptoKey`);
  if (value.type !== "public") throw cryptoError("InvalidAccessError", `${name}: public must be a public key`);
  if (CryptoKey.nameOf(value) !== name) {
    throw cryptoError("InvalidAccessError", `${name}: public is a ${CryptoKey.nameOf(value)} key`);
  }
  return wireKey(value);
}

async function send(request: WireRequest, method: string): Promise<unknown> {
  const bytes = wireBytes(request);
  if (bytes > CRYPTO_LIMITS.maxBytesPerOp) {
    throw cryptoError(
      "QuotaExceededError",
      `crypto.subtle.${method}: ${bytes} bytes is over Hearth's limit of ${CRYPTO_LIMITS.maxBytesPerOp} per operation`,
    );
  }
  return onHost(request);
}

function keyFrom(made: WireNewKey, extractable: boolean): CryptoKey {
  return createKey(made.type, extractable, made.algorithm, made.usages, {
    where: "host",
    jwk: made.jwk,
    algorithm: importParams(made.algorithm),
  });
}

/** What importing a key's JWK again needs: its algorithm as the host reported it, `hash` by name. */
function importParams(algorithm: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { name: algorithm.name };
  if (typeof algorithm.namedCurve === "string") out.namedCurve = algorithm.namedCurve;
  const hash = algorithm.hash as { name?: unknown } | undefined;
  if (typeof hash?.name === "string") out.hash = hash.name;
  return out;
}

export const hostEngine: Engine = {
  async importKey(format, keyData, params, extractable, usages) {
    if (format === "jwk" && (keyData as JsonWebKey).ext === false && extractable) {
      throw cryptoError("DataError", 'JWK "ext" is false but an extractable key was requested');
    }
    const data = format === "jwk" ? (keyData as JsonWebKey) : bufferOf((keyData as Uint8Array).slice());
    const made = (await send(
      { op: "importKey", format, keyData: data, algorithm: wireParams(params), usages },
      "importKey",
    )) as WireNewKey;
    return keyFrom(made, extractable);
  },

  async exportKey(format, key) {
    const out = await send({ op: "exportKey", format, key: wireKey(key), usages: [...key.usages] }, "exportKey");
    if (format !== "jwk") return out as ArrayBuffer;
    return { ...(out as JsonWebKey), key_ops: [...key.usages], ext: key.extractable };
  },

  async generateKey(params, extractable, usages) {
    const made = (await send(
      { op: "generateKey", algorithm: wireParams(params), usages },
      "generateKey",
    )) as WireNewKey[];
    const [first, second] = made;
    if (!first) throw cryptoError("OperationError", "The host made no key");
    if (!second) return keyFrom(first, extractable);
    const pub = first.type === "public" ? first : second;
    const priv = first.type === "public" ? second : first;
    // Public keys of a generated pair are always extractable (W3C Web Cryptography API, generateKey steps).
    return { publicKey: keyFrom(pub, true), privateKey: keyFrom(priv, extractable) };
  },

  async sign(params, key, data) {
    return (await send(
      { op: "sign", algorithm: wireParams(params), key: wireKey(key), data: bufferOf(data) },
      "sign",
    )) as ArrayBuffer;
  },

  async verify(params, key, signature, data) {
    const request: WireRequest = {
      op: "verify",
      algorithm: wireParams(params),
      key: wireKey(key),
      data: bufferOf(data),
      signature: bufferOf(signature),
    };
    return (await send(request, "verify")) as boolean;
  },

  async encrypt(params, key, data) {
    return (await send(
      { op: "encrypt", algorithm: wireParams(params), key: wireKey(key), data: bufferOf(data) },
      "encrypt",
    )) as ArrayBuffer;
  },

  async decrypt(params, key, data) {
    return (await send(
      { op: "decrypt", algorithm: wireParams(params), key: wireKey(key), data: bufferOf(data) },
      "decrypt",
    )) as ArrayBuffer;
  },

  async deriveBits(params, key, length) {
    // null asks ECDH/X25519 for the whole shared secret (W3C Web Cryptography API, ECDH "derive bits").
    if (length !== null && (!Number.isInteger(length) || length < 0)) {
      throw cryptoError("OperationError", `${params.name}: length must be a non-negative integer number of bits`);
    }
    return (await send(
      { op: "deriveBits", algorithm: wireParams(params), key: wireKey(key), length },
      "deriveBits",
    )) as ArrayBuffer;
  },
};
