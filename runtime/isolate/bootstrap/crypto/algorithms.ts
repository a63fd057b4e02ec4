import { sha1 } from "@noble/hashes/legacy.js";
import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import type { CHash } from "@noble/hashes/utils.js";
import { cryptoError } from "./errors.ts";

/** The operations of SubtleCrypto that take an algorithm (plus "importKey" for derived key types). */
export type Operation =
  | "sign"
  | "verify"
  | "encrypt"
  | "decrypt"
  | "digest"
  | "importKey"
  | "generateKey"
  | "deriveBits";

const SIGNERS = ["HMAC", "ECDSA", "Ed25519", "RSASSA-PKCS1-v1_5", "RSA-PSS"];
const CIPHERS = ["AES-GCM", "AES-CBC", "AES-CTR", "RSA-OAEP"];
const KEY_TYPES = [...SIGNERS, ...CIPHERS, "ECDH", "X25519"];

/**
 * What each operation supports, by the names the Web Crypto registry uses (W3C Web Cryptography
 * API §29 "Algorithm overview"). AES-KW and the SHA-3/Ed448/X448 extensions are not offered.
 */
const SUPPORTED: Record<Operation, readonly string[]> = {
  sign: SIGNERS,
  verify: SIGNERS,
  encrypt: CIPHERS,
  decrypt: CIPHERS,
  digest: ["SHA-1", "SHA-256", "SHA-384", "SHA-512"],
  importKey: [...KEY_TYPES, "PBKDF2", "HKDF"],
  generateKey: KEY_TYPES,
  deriveBits: ["PBKDF2", "HKDF", "ECDH", "X25519"],
};

/** Case-insensitive lookup, as the spec's normalization matches names (§18.4). */
const CANONICAL = new Map<string, string>(
  Object.values(SUPPORTED)
    .flat()
    .map((name) => [name.toUpperCase(), name]),
);

/** The dictionary members any supported algorithm reads; others are ignored, as in WebIDL. */
const MEMBERS = [
  "hash",
  "namedCurve",
  "modulusLength",
  "publicExponent",
  "saltLength",
  "label",
  "iv",
  "additionalData",
  "tagLength",
  "counter",
  "length",
  "public",
  "salt",
  "info",
  "iterations",
] as const;

export type Params = { name: string } & Partial<Record<(typeof MEMBERS)[number], unknown>>;

/**
 * Normalizes an AlgorithmIdentifier for `op`: canonical name and the members it sets, read once.
 * Unknown names reject with NotSupportedError, as the spec requires.
 */
export function normalize(op: Operation, algorithm: unknown): Params {
  const dict = typeof algorithm === "string" ? { name: algorithm } : algorithm;
  if (typeof dict !== "object" || dict === null) throw new TypeError("Algorithm must be a string or an object");
  const rawName = (dict as { name?: unknown }).name;
  if (typeof rawName !== "string") throw new TypeError("Algorithm: name is required and must be a string");
  const name = CANONICAL.get(rawName.toUpperCase());
  if (name === undefined || !SUPPORTED[op].includes(name)) {
    throw cryptoError("NotSupportedError", `Unrecognized or unsupported algorithm for ${op}: ${rawName}`);
  }
  const params: Params = { name };
  for (const member of MEMBERS) {
    const value = (dict as Record<string, unknown>)[member];
    if (value !== undefined) params[member] = value;
  }
  return params;
}

export type HashFunction = CHash;

/** The digests, from @noble/hashes (audited, pure JS): hashing needs no trip to the host. */
export const HASHES: Record<string, HashFunction> = {
  "SHA-1": sha1,
  "SHA-256": sha256,
  "SHA-384": sha384,
  "SHA-512": sha512,
};

/** The canonical name of a `hash` member (string or {name}); TypeError when absent, as WebIDL requires. */
export function hashName(hash: unknown): string {
  if (hash === undefined) throw new TypeError("Algorithm: hash is required");
  return normalize("digest", hash).name;
}
