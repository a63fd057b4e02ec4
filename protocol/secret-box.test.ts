import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseSecretKey, SecretKeyring } from "./secret-box.ts";

const newKeyText = () => randomBytes(32).toString("base64");
const keyringOf = (current: string, previous?: string) =>
  SecretKeyring.fromEnv({
    HEARTH_SECRETS_KEY: current,
    ...(previous ? { HEARTH_SECRETS_PREVIOUS_KEY: previous } : {}),
  });
const PLAINTEXT = "hunter2 ✓ p@ss";

function mustKeyring(current: string, previous?: string): SecretKeyring {
  const keyring = keyringOf(current, previous);
  if (!keyring) throw new Error("no keyring");
  return keyring;
}

describe("SecretKeyring", () => {
  it("opens what it sealed, and the sealed form holds neither the value nor the key", () => {
    const keyText = newKeyText();
    const keyring = mustKeyring(keyText);
    const sealed = keyring.seal("api", "DB_PASSWORD", PLAINTEXT);
    expect(keyring.open("api", "DB_PASSWORD", sealed)).toBe(PLAINTEXT);
    expect(sealed).not.toContain("hunter2");
    expect(sealed).not.toContain(keyText);
    const parsed = JSON.parse(sealed);
    expect(parsed).toMatchObject({ v: 1, kid: keyring.current.id });
    expect(Buffer.from(parsed.iv, "base64")).toHaveLength(12);
    // Ciphertext (as long as the UTF-8 plaintext) plus the 16-byte tag.
    expect(Buffer.from(parsed.ct, "base64")).toHaveLength(Buffer.byteLength(PLAINTEXT) + 16);
    expect(keyring.open("api", "EMPTY", keyring.seal("api", "EMPTY", ""))).toBe("");
  });

  it("names a key by the first 8 hex characters of its SHA-256", () => {
    const bytes = randomBytes(32);
    const key = parseSecretKey(bytes.toString("base64"), "HEARTH_SECRETS_KEY");
    expect(key.id).toBe(createHash("sha256").update(bytes).digest("hex").slice(0, 8));
    // URL-safe base64 of the same bytes is the same key.
    expect(parseSecretKey(bytes.toString("base64url"), "K").id).toBe(key.id);
    // The key logs as nothing.
    expect(JSON.stringify(key)).not.toContain(bytes.toString("base64"));
  });

  it("draws a fresh IV for every seal, so the same value never seals the same way", () => {
    const keyring = mustKeyring(newKeyText());
    const seals = Array.from({ length: 50 }, () => JSON.parse(keyring.seal("api", "K", PLAINTEXT)));
    expect(new Set(seals.map((s) => s.iv)).size).toBe(50);
    expect(new Set(seals.map((s) => s.ct)).size).toBe(50);
  });

  it("refuses a tampered ciphertext, tag or IV as ERR_SECRET_CORRUPT", () => {
    const keyring = mustKeyring(newKeyText());
    const sealed = JSON.parse(keyring.seal("api", "K", PLAINTEXT));
    const flip = (b64: string, at: number) => {
      const bytes = Buffer.from(b64, "base64");
      bytes[at] = (bytes[at] ?? 0) ^ 1;
      return bytes.toString("base64");
    };
    const ct = Buffer.from(sealed.ct, "base64");
    for (const tampered of [
      { ...sealed, ct: flip(sealed.ct, 0) },
      { ...sealed, ct: flip(sealed.ct, ct.length - 1) }, // the tag
      { ...sealed, iv: flip(sealed.iv, 3) },
      { ...sealed, ct: ct.subarray(0, 10).toString("base64") },
    ]) {
      expect(() => keyring.open("api", "K", JSON.stringify(tampered))).toThrow(
        expect.objectContaining({ code: "ERR_SECRET_CORRUPT" }),
      );
    }
    for (const garbage of ["", "not json", "{}", '{"v":2,"kid":"x","iv":"","ct":""}']) {
      expect(() => keyring.open("api", "K", garbage)).toThrow(expect.objectContaining({ code: "ERR_SECRET_CORRUPT" }));
    }
  });

  it("refuses a value moved to another function's or another name's key (associated data)", () => {
    const keyring = mustKeyring(newKeyText());
    const sealed = keyring.seal("api", "DB_PASSWORD", PLAINTEXT);
    for (const [fn, name] of [
      ["other", "DB_PASSWORD"],
      ["api", "OTHER"],
      ["api.DB", "PASSWORD"],
    ] as const) {
      expect(() => keyring.open(fn, name, sealed)).toThrow(
        expect.objectContaining({ code: "ERR_SECRET_CORRUPT", message: expect.stringMatching(/fails authentication/) }),
      );
    }
    // Relabelled as sealed by another configured key: the key id is bound too.
    const other = mustKeyring(newKeyText());
    const both = new SecretKeyring(keyring.current, [other.current]);
    const relabelled = JSON.stringify({ ...JSON.parse(sealed), kid: other.current.id });
    expect(() => both.open("api", "DB_PASSWORD", relabelled)).toThrow(
      expect.objectContaining({ code: "ERR_SECRET_CORRUPT" }),
    );
  });

  it("fails with ERR_SECRET_KEY_UNKNOWN naming the key id when sealed with a key not configured", () => {
    const old = mustKeyring(newKeyText());
    const sealed = old.seal("api", "K", PLAINTEXT);
    const fresh = mustKeyring(newKeyText());
    expect(() => fresh.open("api", "K", sealed)).toThrow(
      expect.objectContaining({
        code: "ERR_SECRET_KEY_UNKNOWN",
        message: expect.stringContaining(`key ${old.current.id}, which is not configured`),
      }),
    );
    expect(SecretKeyring.keyIdOfSealed(sealed)).toBe(old.current.id);
    expect(SecretKeyring.keyIdOfSealed("junk")).toBeNull();
  });

  it("opens values of the previous key, and seals with the current one only", () => {
    const oldText = newKeyText();
    const sealedOld = mustKeyring(oldText).seal("api", "K", PLAINTEXT);
    const rotated = mustKeyring(newKeyText(), oldText);
    expect(rotated.open("api", "K", sealedOld)).toBe(PLAINTEXT);
    expect(JSON.parse(rotated.seal("api", "K", PLAINTEXT)).kid).toBe(rotated.current.id);
    expect(rotated.keyIds).toEqual([rotated.current.id, JSON.parse(sealedOld).kid]);
  });

  it("reads no keyring without HEARTH_SECRETS_KEY, and refuses a bad key naming the variable, never the value", () => {
    expect(SecretKeyring.fromEnv({})).toBeNull();
    const cases: [Record<string, string>, RegExp][] = [
      [
        { HEARTH_SECRETS_KEY: randomBytes(16).toString("base64") },
        /HEARTH_SECRETS_KEY must be 32 .* decodes to 16 bytes/,
      ],
      [{ HEARTH_SECRETS_KEY: randomBytes(33).toString("base64") }, /HEARTH_SECRETS_KEY .* decodes to 33 bytes/],
      [{ HEARTH_SECRETS_KEY: "not base64 at all, but 44 characters long!!" }, /HEARTH_SECRETS_KEY .* not base64/],
      [{ HEARTH_SECRETS_KEY: "hunter2" }, /HEARTH_SECRETS_KEY must be 32 random bytes in base64/],
      [
        { HEARTH_SECRETS_KEY: newKeyText(), HEARTH_SECRETS_PREVIOUS_KEY: "short" },
        /HEARTH_SECRETS_PREVIOUS_KEY must be 32/,
      ],
      [{ HEARTH_SECRETS_PREVIOUS_KEY: newKeyText() }, /HEARTH_SECRETS_PREVIOUS_KEY is set without HEARTH_SECRETS_KEY/],
    ];
    for (const [env, message] of cases) {
      let caught: unknown;
      try {
        SecretKeyring.fromEnv(env);
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: "ERR_BAD_REQUEST", message: expect.stringMatching(message) });
      for (const value of Object.values(env)) expect((caught as Error).message).not.toContain(value);
    }
  });
});
