import type { Params } from "./algorithms.ts";
import type { CryptoKey } from "./crypto-key.ts";

export type KeyFormat = "raw" | "spki" | "pkcs8" | "jwk";

export interface CryptoKeyPair {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

/**
 * One way of running an algorithm's operations: in the isolate (local-engine.ts) or on the host
 * (host-engine.ts). subtle.ts has already normalized the algorithm and checked key, name and usage.
 */
export interface Engine {
  importKey(
    format: KeyFormat,
    keyData: Uint8Array | JsonWebKey,
    params: Params,
    extractable: boolean,
    usages: string[],
  ): Promise<CryptoKey>;
  exportKey(format: KeyFormat, key: CryptoKey): Promise<ArrayBuffer | JsonWebKey>;
  generateKey(params: Params, extractable: boolean, usages: string[]): Promise<CryptoKey | CryptoKeyPair>;
  sign(params: Params, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  verify(params: Params, key: CryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
  encrypt(params: Params, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  decrypt(params: Params, key: CryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
  deriveBits(params: Params, key: CryptoKey, length: number | null): Promise<ArrayBuffer>;
}
