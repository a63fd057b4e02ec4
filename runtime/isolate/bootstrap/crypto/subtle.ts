import { HASHES, type HashFunction, normalize, type Params } from "./algorithms.ts";
import { bufferOf, copyOf, viewOf } from "./bytes.ts";
import { CryptoKey, readUsages, requireKey } from "./crypto-key.ts";
import type { CryptoKeyPair, Engine, KeyFormat } from "./engine.ts";
import { cryptoError } from "./errors.ts";
import { hostEngine } from "./host-engine.ts";
import { copyJwk } from "./jwk.ts";
import { hkdfEngine, hmacEngine, pbkdf2Engine } from "./local-engine.ts";

const LOCAL: Record<string, Engine> = { HMAC: hmacEngine, PBKDF2: pbkdf2Engine, HKDF: hkdfEngine };

function engineFor(name: string): Engine {
  return LOCAL[name] ?? hostEngine;
}

const FORMATS = new Set(["raw", "spki", "pkcs8", "jwk"]);

function readFormat(format: unknown): KeyFormat {
  if (!FORMATS.has(format as string)) throw new TypeError(`Invalid key format: ${String(format)}`);
  return format as KeyFormat;
}

/** Which key type each asymmetric operation needs (W3C Web Cryptography API, each algorithm's steps). */
const KEY_TYPE_FOR: Record<string, "public" | "private"> = {
  sign: "private",
  verify: "public",
  deriveBits: "private",
  "RSA-OAEP:encrypt": "public",
  "RSA-OAEP:decrypt": "private",
};

/**
 * The spec's common checks before an operation runs: the key is of the algorithm named and allows
 * the usage, else InvalidAccessError.
 */
function checkKey(key: CryptoKey, params: Params, usage: string, op: string): void {
  if (CryptoKey.nameOf(key) !== params.name) {
    throw cryptoError("InvalidAccessError", `The key is for ${CryptoKey.nameOf(key)}, not ${params.name}`);
  }
  if (!CryptoKey.allows(key, usage)) {
    throw cryptoError("InvalidAccessError", `The key's usages do not include "${usage}"`);
  }
  const type = key.type === "secret" ? undefined : (KEY_TYPE_FOR[`${params.name}:${op}`] ?? KEY_TYPE_FOR[op]);
  if (type !== undefined && key.type !== type) {
    throw cryptoError("InvalidAccessError", `${params.name} ${op} needs a ${type} key, not a ${key.type} key`);
  }
}

async function importKey(
  format: unknown,
  keyData: unknown,
  algorithm: unknown,
  extractable: unknown,
  keyUsages: unknown,
): Promise<CryptoKey> {
  const fmt = readFormat(format);
  const data = fmt === "jwk" ? copyJwk(keyData) : copyOf(keyData, "keyData");
  const params = normalize("importKey", algorithm);
  return engineFor(params.name).importKey(fmt, data, params, Boolean(extractable), readUsages(keyUsages));
}

async function exportKey(format: unknown, key: unknown): Promise<ArrayBuffer | JsonWebKey> {
  const fmt = readFormat(format);
  const k = requireKey(key);
  if (!k.extractable) throw cryptoError("InvalidAccessError", "The key is not extractable");
  return engineFor(CryptoKey.nameOf(k)).exportKey(fmt, k);
}

async function encrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
  const params = normalize("encrypt", algorithm);
  const bytes = copyOf(data);
  const k = requireKey(key);
  checkKey(k, params, "encrypt", "encrypt");
  return engineFor(params.name).encrypt(params, k, bytes);
}

async function decrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
  const params = normalize("decrypt", algorithm);
  const bytes = copyOf(data);
  const k = requireKey(key);
  checkKey(k, params, "decrypt", "decrypt");
  return engineFor(params.name).decrypt(params, k, bytes);
}

async function deriveBits(algorithm: unknown, baseKey: unknown, length: unknown = null): Promise<ArrayBuffer> {
  const params = normalize("deriveBits", algorithm);
  const k = requireKey(baseKey, "baseKey");
  checkKey(k, params, "deriveBits", "deriveBits");
  return engineFor(params.name).deriveBits(params, k, length === null ? null : Number(length));
}

/** The bits a derived key needs (the spec's "get key length"): AES by `length`, HMAC by `length` or its hash. */
function keyLengthOf(params: Params): number {
  if (params.name.startsWith("AES-")) {
    const length = Number(params.length);
    if (length !== 128 && length !== 192 && length !== 256) {
      throw cryptoError("OperationError", `${params.name} length must be 128, 192 or 256`);
    }
    return length;
  }
  if (params.name === "HMAC") {
    if (params.length !== undefined) return Number(params.length);
    return (HASHES[normalize("digest", params.hash).name] as HashFunction).blockLen * 8;
  }
  throw cryptoError("NotSupportedError", `Keys for ${params.name} cannot be derived`);
}

async function deriveKey(
  algorithm: unknown,
  baseKey: unknown,
  derivedKeyType: unknown,
  extractable: unknown,
  keyUsages: unknown,
): Promise<CryptoKey> {
  const params = normalize("deriveBits", algorithm);
  const derived = normalize("importKey", derivedKeyType);
  const usages = readUsages(keyUsages);
  const k = requireKey(baseKey, "baseKey");
  checkKey(k, params, "deriveKey", "deriveBits");
  const bits = await engineFor(params.name).deriveBits(params, k, keyLengthOf(derived));
  return engineFor(derived.name).importKey("raw", new Uint8Array(bits), derived, Boolean(extractable), usages);
}

/** The encryption algorithms a key may be wrapped with; AES-KW is not offered. */
async function wrapKey(
  format: unknown,
  key: unknown,
  wrappingKey: unknown,
  wrapAlgorithm: unknown,
): Promise<ArrayBuffer> {
  const fmt = readFormat(format);
  const params = normalize("encrypt", wrapAlgorithm);
  const wrapper = requireKey(wrappingKey, "wrappingKey");
  checkKey(wrapper, params, "wrapKey", "encrypt");
  const exported = await exportKey(fmt, key);
  const bytes =
    fmt === "jwk" ? new TextEncoder().encode(JSON.stringify(exported)) : new Uint8Array(exported as ArrayBuffer);
  return engineFor(params.name).encrypt(params, wrapper, bytes);
}

async function unwrapKey(
  format: unknown,
  wrappedKey: unknown,
  unwrappingKey: unknown,
  unwrapAlgorithm: unknown,
  unwrappedKeyAlgorithm: unknown,
  extractable: unknown,
  keyUsages: unknown,
): Promise<CryptoKey> {
  const fmt = readFormat(format);
  const params = normalize("decrypt", unwrapAlgorithm);
  const wrapped = copyOf(wrappedKey, "wrappedKey");
  const unwrapper = requireKey(unwrappingKey, "unwrappingKey");
  checkKey(unwrapper, params, "unwrapKey", "decrypt");
  const bytes = new Uint8Array(await engineFor(params.name).decrypt(params, unwrapper, wrapped));
  let keyData: Uint8Array | JsonWebKey = bytes;
  if (fmt === "jwk") {
    try {
      keyData = JSON.parse(new TextDecoder().decode(bytes)) as JsonWebKey;
    } catch {
      throw cryptoError("DataError", "The unwrapped key is not a JSON Web Key");
    }
  }
  return importKey(fmt, keyData, unwrappedKeyAlgorithm, extractable, keyUsages);
}

/**
 * crypto.subtle (W3C Web Cryptography API §14). Every method returns a promise and rejects, never
 * throws. HMAC, PBKDF2, HKDF and digests run here; the rest on the host (host-engine.ts).
 */
export const subtle = {
  async digest(algorithm: unknown, data: unknown): Promise<ArrayBuffer> {
    const { name } = normalize("digest", algorithm);
    return bufferOf((HASHES[name] as HashFunction)(viewOf(data)));
  },
  async sign(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    const params = normalize("sign", algorithm);
    const bytes = copyOf(data);
    const k = requireKey(key);
    checkKey(k, params, "sign", "sign");
    return engineFor(params.name).sign(params, k, bytes);
  },
  async verify(algorithm: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
    const params = normalize("verify", algorithm);
    const sig = copyOf(signature, "signature");
    const bytes = copyOf(data);
    const k = requireKey(key);
    checkKey(k, params, "verify", "verify");
    return engineFor(params.name).verify(params, k, sig, bytes);
  },
  async generateKey(algorithm: unknown, extractable: unknown, keyUsages: unknown): Promise<CryptoKey | CryptoKeyPair> {
    const params = normalize("generateKey", algorithm);
    return engineFor(params.name).generateKey(params, Boolean(extractable), readUsages(keyUsages));
  },
  encrypt,
  decrypt,
  importKey,
  exportKey,
  deriveBits,
  deriveKey,
  wrapKey,
  unwrapKey,
};
