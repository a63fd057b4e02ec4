import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { HearthError } from "./errors.ts";

/** AES-256: 32 key bytes. */
const KEY_BYTES = 32;
/**
 * GCM's recommended IV size (NIST SP 800-38D §8.2): 96 random bits, fresh for every seal. NIST caps a
 * key at 2³² random-IV seals (§8.3); secret writes are deploy-scale events, nowhere near it.
 */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ALGORITHM = "aes-256-gcm";
/** Standard or URL-safe base64 of 32 bytes: 43 characters and at most one `=`. */
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;

/** One key of the keyring: its id (first 8 hex characters of the key's SHA-256) and the key itself. */
export interface SecretKey {
  readonly id: string;
  /** A KeyObject, not bytes: it logs as `{}` and is never serialized by accident. */
  readonly key: KeyObject;
}

/** A sealed value as stored in the secrets bucket (JSON). */
interface Sealed {
  /** Format version. */
  readonly v: 1;
  /** The id of the key that sealed it. */
  readonly kid: string;
  /** base64 of the 96-bit IV. */
  readonly iv: string;
  /** base64 of the ciphertext followed by the 16-byte GCM tag. */
  readonly ct: string;
}

/**
 * Parses a base64 key from the environment variable `variable`; the error names the variable and what
 * is wrong with it, never the value.
 *
 * @example
 * parseSecretKey(process.env.HEARTH_SECRETS_KEY, "HEARTH_SECRETS_KEY") // { id: "3f2a9c01", key }
 */
export function parseSecretKey(text: string, variable: string): SecretKey {
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, trimmed.includes("-") || trimmed.includes("_") ? "base64url" : "base64");
  if (!BASE64_KEY.test(trimmed) || bytes.length !== KEY_BYTES) {
    const what = /^[A-Za-z0-9+/_-]*={0,2}$/.test(trimmed) ? `it decodes to ${bytes.length} bytes` : "it is not base64";
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `${variable} must be ${KEY_BYTES} random bytes in base64 (44 characters; make one with \`openssl rand -base64 32\`), but ${what}`,
    );
  }
  return { id: keyIdOf(bytes), key: createSecretKey(bytes) };
}

/** First 8 hex characters of the key's SHA-256: names the key in sealed values and errors without revealing it. */
function keyIdOf(key: Uint8Array): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

/**
 * The associated data of a sealed value: what it belongs to. A value copied to another function's or
 * another name's key fails to open. The key id is bound too, so a relabelled value fails as tampered.
 */
function associatedData(kid: string, fn: string, name: string): Buffer {
  return Buffer.from(`hearth-secret/v1\0${kid}\0${fn}\0${name}`);
}

/**
 * The operator's keys: the current one seals, it and any previous ones open. AES-256-GCM with a fresh
 * random 96-bit IV per seal and the function and secret names as associated data.
 *
 * @example
 * const keyring = SecretKeyring.fromEnv(process.env); // null without HEARTH_SECRETS_KEY
 * const sealed = keyring.seal("api", "DB_PASSWORD", "hunter2");
 * keyring.open("api", "DB_PASSWORD", sealed); // "hunter2"
 */
export class SecretKeyring {
  readonly current: SecretKey;
  readonly #keys: ReadonlyMap<string, SecretKey>;

  constructor(current: SecretKey, previous: readonly SecretKey[] = []) {
    this.current = current;
    this.#keys = new Map([...previous, current].map((k) => [k.id, k]));
  }

  /**
   * HEARTH_SECRETS_KEY (the current key) and HEARTH_SECRETS_PREVIOUS_KEY (optional: a key being
   * rotated out, whose values still open until `hearth secrets reencrypt` reseals them). Null without
   * a current key; throws naming the variable when either is malformed.
   */
  static fromEnv(env: NodeJS.ProcessEnv): SecretKeyring | null {
    const current = env.HEARTH_SECRETS_KEY;
    const previous = env.HEARTH_SECRETS_PREVIOUS_KEY;
    if (!current) {
      if (previous)
        throw new HearthError("ERR_BAD_REQUEST", "HEARTH_SECRETS_PREVIOUS_KEY is set without HEARTH_SECRETS_KEY");
      return null;
    }
    return new SecretKeyring(
      parseSecretKey(current, "HEARTH_SECRETS_KEY"),
      previous ? [parseSecretKey(previous, "HEARTH_SECRETS_PREVIOUS_KEY")] : [],
    );
  }

  /** The ids of every key that opens values, the current one first. */
  get keyIds(): string[] {
    return [this.current.id, ...[...this.#keys.keys()].filter((id) => id !== this.current.id)];
  }

  /** Seals `value` as secret `name` of function `fn` with the current key. */
  seal(fn: string, name: string, value: string): string {
    const { id, key } = this.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(id, fn, name));
    const ct = Buffer.concat([cipher.update(value, "utf8"), cipher.final(), cipher.getAuthTag()]);
    const sealed: Sealed = { v: 1, kid: id, iv: iv.toString("base64"), ct: ct.toString("base64") };
    return JSON.stringify(sealed);
  }

  /**
   * Opens a sealed value of secret `name` of `fn`. ERR_SECRET_KEY_UNKNOWN (naming the key id) when
   * sealed with a key not configured here; ERR_SECRET_CORRUPT when malformed, tampered with, or
   * sealed for another function or name.
   */
  open(fn: string, name: string, sealed: string): string {
    const parsed = parseSealed(sealed, fn, name);
    const entry = this.#keys.get(parsed.kid);
    if (!entry) {
      throw new HearthError(
        "ERR_SECRET_KEY_UNKNOWN",
        `Secret ${name} of ${fn} was sealed with key ${parsed.kid}, which is not configured (configured: ${this.keyIds.join(", ")}); set it as HEARTH_SECRETS_KEY or HEARTH_SECRETS_PREVIOUS_KEY`,
      );
    }
    const iv = Buffer.from(parsed.iv, "base64");
    const ct = Buffer.from(parsed.ct, "base64");
    if (iv.length !== IV_BYTES || ct.length < TAG_BYTES) throw corrupt(fn, name, "truncated");
    const decipher = createDecipheriv(ALGORITHM, entry.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(parsed.kid, fn, name));
    decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(ct.subarray(0, ct.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch {
      throw corrupt(fn, name, "it fails authentication: tampered with, or sealed for another function or name");
    }
  }

  /** The id of the key a sealed value was sealed with (for re-encryption), or null when malformed. */
  static keyIdOfSealed(sealed: string): string | null {
    try {
      return parseSealed(sealed, "", "").kid;
    } catch {
      return null;
    }
  }
}

function corrupt(fn: string, name: string, why: string): HearthError {
  return new HearthError("ERR_SECRET_CORRUPT", `Secret ${name} of ${fn} cannot be opened: ${why}`);
}

function parseSealed(sealed: string, fn: string, name: string): Sealed {
  let value: unknown;
  try {
    value = JSON.parse(sealed);
  } catch {
    throw corrupt(fn, name, "not a sealed value");
  }
  const v = value as Partial<Sealed> | null;
  if (v?.v !== 1 || typeof v.kid !== "string" || typeof v.iv !== "string" || typeof v.ct !== "string")
    throw corrupt(fn, name, "not a sealed value");
  return v as Sealed;
}
