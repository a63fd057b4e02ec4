import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { HASHES, type HashFunction, hashName, type Params } from "./algorithms.ts";
import { bufferOf, copyOf, equalInConstantTime } from "./bytes.ts";
import { CryptoKey, createKey } from "./crypto-key.ts";
import type { Engine, KeyFormat } from "./engine.ts";
import { cryptoError } from "./errors.ts";
import { checkJwkAllows, decodeBase64url, encodeBase64url } from "./jwk.ts";
import { CRYPTO_LIMITS } from "./limits.ts";
import { randomBytes } from "./random.ts";

/**
 * HMAC, PBKDF2 and HKDF in the isolate with @noble/hashes: an HS256 JWT check costs ≈ 7–10 µs here
 * against ≈ 50 µs for Node's async Web Crypto alone, before any host round trip, and the CPU is
 * charged to the function like its own code (docs/architecture.md, "crypto.subtle").
 */

const unsupported = (what: string) => () => Promise.reject(cryptoError("NotSupportedError", what));

function requireUsages(usages: readonly string[], allowed: readonly string[], name: string): void {
  const bad = usages.find((u) => !allowed.includes(u));
  if (bad !== undefined) throw cryptoError("SyntaxError", `${name} keys cannot be used to ${bad}`);
  if (usages.length === 0) throw cryptoError("SyntaxError", `${name} keys need at least one usage`);
}

function hashOf(key: CryptoKey): HashFunction {
  const material = materialBytes(key);
  return HASHES[material.hash as string] as HashFunction;
}

function materialBytes(key: CryptoKey): { bytes: Uint8Array; hash?: string } {
  const material = CryptoKey.materialOf(key);
  if (material.where !== "local") throw cryptoError("InvalidAccessError", "The key does not belong to this algorithm");
  return material;
}

function hmacKey(bytes: Uint8Array, hash: string, length: number, extractable: boolean, usages: string[]): CryptoKey {
  const algorithm = Object.freeze({ name: "HMAC", hash: Object.freeze({ name: hash }), length });
  return createKey("secret", extractable, algorithm, usages, { where: "local", bytes, hash });
}

const HMAC_USAGES = ["sign", "verify"];

/** The JWK "alg" of an HMAC key (RFC 7518 §3.2; "HS1" is Web Crypto's name for HMAC-SHA-1). */
function jwkAlg(hash: string): string {
  return hash === "SHA-1" ? "HS1" : `HS${hash.slice(4)}`;
}

export const hmacEngine: Engine = {
  async importKey(format: KeyFormat, keyData, params, extractable, usages) {
    requireUsages(usages, HMAC_USAGES, "HMAC");
    const hash = hashName(params.hash);
    let bytes: Uint8Array;
    if (format === "raw") {
      bytes = (keyData as Uint8Array).slice();
    } else if (format === "jwk") {
      const jwk = keyData as JsonWebKey;
      if (jwk.kty !== "oct") throw cryptoError("DataError", 'An HMAC JWK must have kty "oct"');
      bytes = decodeBase64url(jwk.k, "k");
      if (jwk.alg !== undefined && jwk.alg !== jwkAlg(hash)) {
        throw cryptoError("DataError", `JWK "alg" ${jwk.alg} does not match HMAC with ${hash}`);
      }
      checkJwkAllows(jwk, usages, extractable, "sig");
    } else {
      throw cryptoError("NotSupportedError", `HMAC keys cannot be imported as ${format}`);
    }
    const bits = bytes.byteLength * 8;
    if (bits === 0) throw cryptoError("DataError", "HMAC key data is empty");
    const length = params.length === undefined ? bits : Number(params.length);
    if (!(length <= bits && length > bits - 8)) {
      throw cryptoError("DataError", `HMAC length ${length} does not match ${bits} bits of key data`);
    }
    return hmacKey(bytes, hash, length, extractable, usages);
  },

  async exportKey(format, key) {
    const { bytes, hash } = materialBytes(key);
    if (format === "raw") return bytes.slice().buffer as ArrayBuffer;
    if (format !== "jwk") throw cryptoError("NotSupportedError", `HMAC keys cannot be exported as ${format}`);
    return {
      kty: "oct",
      k: encodeBase64url(bytes),
      alg: jwkAlg(hash as string),
      key_ops: [...key.usages],
      ext: key.extractable,
    };
  },

  async generateKey(params, extractable, usages) {
    requireUsages(usages, HMAC_USAGES, "HMAC");
    const hash = hashName(params.hash);
    const length = params.length === undefined ? (HASHES[hash] as HashFunction).blockLen * 8 : Number(params.length);
    if (!Number.isInteger(length) || length <= 0 || length > 65_536 * 8) {
      throw cryptoError("OperationError", `HMAC key length ${length} is not supported`);
    }
    const bytes = randomBytes(Math.ceil(length / 8)).slice();
    return hmacKey(bytes, hash, length, extractable, usages);
  },

  async sign(_params, key, data) {
    return bufferOf(hmac(hashOf(key), materialBytes(key).bytes, data));
  },

  async verify(_params, key, signature, data) {
    return equalInConstantTime(hmac(hashOf(key), materialBytes(key).bytes, data), signature);
  },

  encrypt: unsupported("HMAC cannot encrypt"),
  decrypt: unsupported("HMAC cannot decrypt"),
  deriveBits: unsupported("HMAC cannot derive bits"),
};

/** Checks a derivation length (bits): a multiple of 8, as both KDFs require. */
function byteLength(length: number | null, name: string): number {
  if (length === null || !Number.isInteger(length) || length < 0 || length % 8 !== 0) {
    throw cryptoError("OperationError", `${name}: length must be a non-negative multiple of 8 bits`);
  }
  return length / 8;
}

const KDF_USAGES = ["deriveKey", "deriveBits"];

/** PBKDF2 and HKDF keys: raw secret bytes, never extractable (W3C Web Cryptography API §31, §32). */
function kdfEngine(name: "PBKDF2" | "HKDF", derive: Engine["deriveBits"]): Engine {
  return {
    async importKey(format, keyData, _params, extractable, usages) {
      if (format !== "raw") throw cryptoError("NotSupportedError", `${name} keys can only be imported as raw`);
      requireUsages(usages, KDF_USAGES, name);
      if (extractable) throw cryptoError("SyntaxError", `${name} keys cannot be extractable`);
      const bytes = (keyData as Uint8Array).slice();
      return createKey("secret", false, Object.freeze({ name }), usages, { where: "local", bytes });
    },
    exportKey: unsupported(`${name} keys cannot be exported`),
    generateKey: unsupported(`${name} keys cannot be generated`),
    sign: unsupported(`${name} cannot sign`),
    verify: unsupported(`${name} cannot verify`),
    encrypt: unsupported(`${name} cannot encrypt`),
    decrypt: unsupported(`${name} cannot decrypt`),
    deriveBits: derive,
  };
}

export const pbkdf2Engine = kdfEngine("PBKDF2", async (params: Params, key, length) => {
  const dkLen = byteLength(length, "PBKDF2");
  const hash = HASHES[hashName(params.hash)] as HashFunction;
  const salt = copyOf(params.salt, "PBKDF2 salt");
  const iterations = Number(params.iterations);
  if (!Number.isInteger(iterations) || iterations <= 0) {
    throw cryptoError("OperationError", "PBKDF2: iterations must be a positive integer");
  }
  if (iterations > CRYPTO_LIMITS.maxPbkdf2Iterations) {
    throw cryptoError(
      "NotSupportedError",
      `Pbkdf2 failed: iteration counts above ${CRYPTO_LIMITS.maxPbkdf2Iterations} are not supported (requested ${iterations})`,
    );
  }
  if (dkLen === 0) return new ArrayBuffer(0);
  return bufferOf(pbkdf2(hash, materialBytes(key).bytes, salt, { c: iterations, dkLen }));
});

export const hkdfEngine = kdfEngine("HKDF", async (params: Params, key, length) => {
  const okmLen = byteLength(length, "HKDF");
  const hash = HASHES[hashName(params.hash)] as HashFunction;
  const salt = copyOf(params.salt, "HKDF salt");
  const info = copyOf(params.info, "HKDF info");
  if (okmLen > 255 * hash.outputLen) {
    throw cryptoError(
      "OperationError",
      `HKDF: length is over 255 × the hash length (${255 * hash.outputLen * 8} bits)`,
    );
  }
  if (okmLen === 0) return new ArrayBuffer(0);
  return bufferOf(hkdf(hash as never, materialBytes(key).bytes, salt, info, okmLen));
});
