import { createHash, randomBytes } from "node:crypto";
import { HearthError } from "./errors.ts";
import { isValidName } from "./names.ts";

/**
 * Every Hearth API token starts with this, so secret scanners (GitHub secret scanning custom
 * patterns, gitleaks, trufflehog) can find a leaked one with `hth_[A-Za-z0-9_-]{43}`. The idea is
 * GitHub's (`ghp_`), explained in "Behind GitHub's new authentication token formats" (2021).
 */
export const TOKEN_PREFIX = "hth_";
/** 256 bits from the CSPRNG, base64url (43 characters). */
const TOKEN_BYTES = 32;
/** The public id: 48 random bits as 12 hex digits, short enough to type in `hearth tokens revoke`. */
const TOKEN_ID = /^[0-9a-f]{12}$/;
/** What a token's name may hold: printable ASCII without quotes, 1–64 characters. */
const TOKEN_NAME = /^[A-Za-z0-9 ._:@/+-]{1,64}$/;
export const MAX_SCOPES = 32;

/**
 * A token's scopes: `admin`; `read` (every namespace) or `read:<ns>`; `deploy:<ns>` (deploy, remove,
 * configure, read the functions of one namespace); `invoke:<ns>` (invoke its private functions).
 */
export type Scope = "admin" | "read" | `read:${string}` | `deploy:${string}` | `invoke:${string}`;

/** What the tokens bucket holds per token id: never the token, only its SHA-256. */
export interface TokenRecord {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  /** SHA-256 (hex) of the whole token, prefix included. */
  readonly sha256: string;
  readonly createdAt: string;
}

/** A token as the API lists it: the record without its hash. */
export type TokenView = Omit<TokenRecord, "sha256">;

export function isTokenId(id: string): boolean {
  return TOKEN_ID.test(id);
}

/** SHA-256 (hex) of a presented token: the key of a gateway's token map. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A fresh token with its id and hash; the token itself is shown once and never stored. */
export function generateToken(): { token: string; id: string; sha256: string } {
  const token = TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString("base64url");
  return { token, id: randomBytes(6).toString("hex"), sha256: hashToken(token) };
}

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}

/** Throws ERR_BAD_REQUEST unless `name` is a valid token name; returns it otherwise. */
export function parseTokenName(name: unknown): string {
  if (typeof name !== "string" || !TOKEN_NAME.test(name)) {
    throw bad(`name must be 1-64 letters, digits, spaces or ._:@/+- characters, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** One scope, checked: a namespace in it follows the function-name rule (protocol/names.ts). */
export function parseScope(value: unknown): Scope {
  if (value === "admin" || value === "read") return value;
  const match = typeof value === "string" ? /^(read|deploy|invoke):(.*)$/.exec(value) : null;
  if (!match || !isValidName(match[2] ?? "")) {
    throw bad(
      `Invalid scope ${JSON.stringify(value)}: use admin, read, read:<namespace>, deploy:<namespace> or invoke:<namespace>`,
    );
  }
  return value as Scope;
}

/** A non-empty list of at most MAX_SCOPES scopes, duplicates dropped. */
export function parseScopes(value: unknown): Scope[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SCOPES) {
    throw bad(`scopes must be a list of 1 to ${MAX_SCOPES} scopes, e.g. ["deploy:team-a"]`);
  }
  return [...new Set(value.map(parseScope))];
}
