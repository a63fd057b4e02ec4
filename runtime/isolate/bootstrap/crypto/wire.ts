/**
 * The crypto messages between the bootstrap and the host (runtime/isolate/crypto-host.ts), declared
 * once for both sides. Everything in them is copied across the boundary: plain objects, strings,
 * numbers and ArrayBuffers.
 */

/** A host-held key as the isolate sends it with each operation. */
export interface WireKey {
  readonly jwk: JsonWebKey;
  /** Its import parameters, e.g. {name: "ECDSA", namedCurve: "P-256"}. */
  readonly algorithm: Record<string, unknown>;
}

/** Algorithm parameters with BufferSources as ArrayBuffers and `public` as a WireKey. */
export type WireParams = { name: string } & Record<string, unknown>;

export type WireRequest =
  | {
      readonly op: "sign" | "encrypt" | "decrypt";
      readonly algorithm: WireParams;
      readonly key: WireKey;
      readonly data: ArrayBuffer;
    }
  | {
      readonly op: "verify";
      readonly algorithm: WireParams;
      readonly key: WireKey;
      readonly data: ArrayBuffer;
      readonly signature: ArrayBuffer;
    }
  | { readonly op: "deriveBits"; readonly algorithm: WireParams; readonly key: WireKey; readonly length: number | null }
  | {
      readonly op: "importKey";
      readonly format: "raw" | "spki" | "pkcs8" | "jwk";
      readonly keyData: ArrayBuffer | JsonWebKey;
      readonly algorithm: WireParams;
      readonly usages: string[];
    }
  | {
      readonly op: "exportKey";
      readonly format: "raw" | "spki" | "pkcs8" | "jwk";
      readonly key: WireKey;
      /** The key's usages: Node will not import a private or secret key without one. */
      readonly usages: string[];
    }
  | { readonly op: "generateKey"; readonly algorithm: WireParams; readonly usages: string[] };

/** A key the host made or imported: what the isolate needs to build a CryptoKey around it. */
export interface WireNewKey {
  readonly type: "secret" | "public" | "private";
  readonly algorithm: { name: string } & Record<string, unknown>;
  readonly usages: string[];
  /** Without `key_ops` and `ext`: those belong to the CryptoKey, not to its material. */
  readonly jwk: JsonWebKey;
}

export type WireValue = ArrayBuffer | boolean | JsonWebKey | WireNewKey | WireNewKey[];

export type WireResult =
  | { readonly value: WireValue }
  | { readonly error: { readonly name: string; readonly message: string } };

/**
 * The bytes a request carries (buffers and strings, to a bounded depth): what CRYPTO_LIMITS.maxBytesPerOp
 * caps. The isolate checks it before sending, the host again on what it received.
 */
export function wireBytes(value: unknown, depth = 0): number {
  if (typeof value === "string") return value.length;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (typeof value !== "object" || value === null || depth > 4) return 0;
  let total = 0;
  for (const member of Object.values(value)) total += wireBytes(member, depth + 1);
  return total;
}
