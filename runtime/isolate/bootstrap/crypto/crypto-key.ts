export type KeyType = "secret" | "public" | "private";

/**
 * What a key is made of. Local keys (HMAC, PBKDF2, HKDF) are raw bytes used by @noble/hashes in the
 * isolate. Host keys are a JWK the host exported when it made or imported them: the host keeps no
 * state, so each operation sends the JWK along with its data and `algorithm` (its import parameters).
 */
export type KeyMaterial =
  | { readonly where: "local"; readonly bytes: Uint8Array; readonly hash?: string }
  | { readonly where: "host"; readonly jwk: JsonWebKey; readonly algorithm: Record<string, unknown> };

const USAGES = new Set(["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"]);
const ILLEGAL = Symbol("CryptoKey");

/**
 * A Web Crypto key (W3C Web Cryptography API §13). Its material lives in a private field that only
 * this runtime reads (`materialOf`): function code sees type, extractable, algorithm and usages, and
 * cannot construct one (the constructor is illegal, as in browsers).
 */
export class CryptoKey {
  readonly #type: KeyType;
  readonly #extractable: boolean;
  readonly #algorithm: Readonly<Record<string, unknown>>;
  readonly #algorithmName: string;
  readonly #usages: readonly string[];
  readonly #material: KeyMaterial;

  constructor(
    token: unknown,
    type: KeyType,
    extractable: boolean,
    algorithm: { name: string } & Record<string, unknown>,
    usages: readonly string[],
    material: KeyMaterial,
  ) {
    if (token !== ILLEGAL) throw new TypeError("Illegal constructor");
    this.#type = type;
    this.#extractable = extractable;
    this.#algorithm = algorithm;
    this.#algorithmName = algorithm.name;
    this.#usages = usages;
    this.#material = material;
  }

  get type(): KeyType {
    return this.#type;
  }

  get extractable(): boolean {
    return this.#extractable;
  }

  /** The same object on every read, as the spec caches it. */
  get algorithm(): Readonly<Record<string, unknown>> {
    return this.#algorithm;
  }

  get usages(): string[] {
    return this.#usages as string[];
  }

  get [Symbol.toStringTag](): string {
    return "CryptoKey";
  }

  /** The name the runtime checks against, immune to changes made through `algorithm`. */
  static nameOf(key: CryptoKey): string {
    return key.#algorithmName;
  }

  static allows(key: CryptoKey, usage: string): boolean {
    return key.#usages.includes(usage);
  }

  static materialOf(key: CryptoKey): KeyMaterial {
    return key.#material;
  }

  static isKey(value: unknown): value is CryptoKey {
    return typeof value === "object" && value !== null && #material in value;
  }
}

/** Makes a key; usages are validated and deduplicated in the spec's order. */
export function createKey(
  type: KeyType,
  extractable: boolean,
  algorithm: { name: string } & Record<string, unknown>,
  usages: readonly string[],
  material: KeyMaterial,
): CryptoKey {
  const ordered = [...USAGES].filter((u) => usages.includes(u));
  return new CryptoKey(ILLEGAL, type, extractable, algorithm, Object.freeze(ordered), material);
}

/** Reads a `usages` argument: a sequence of known KeyUsage strings (TypeError otherwise, as WebIDL). */
export function readUsages(usages: unknown): string[] {
  if (!Array.isArray(usages)) throw new TypeError("keyUsages must be an array");
  for (const u of usages) {
    if (!USAGES.has(u)) throw new TypeError(`Invalid key usage: ${String(u)}`);
  }
  return [...usages];
}

/** The key argument of an operation: a CryptoKey of this runtime (TypeError otherwise, as WebIDL). */
export function requireKey(value: unknown, what = "key"): CryptoKey {
  if (!CryptoKey.isKey(value)) throw new TypeError(`${what} must be a CryptoKey`);
  return value;
}
