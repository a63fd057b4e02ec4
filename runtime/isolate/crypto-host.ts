import { webcrypto } from "node:crypto";
import type ivm from "isolated-vm";
import { CRYPTO_ERROR_NAMES } from "./bootstrap/crypto/errors.ts";
import { CRYPTO_LIMITS } from "./bootstrap/crypto/limits.ts";
import {
  type WireKey,
  type WireNewKey,
  type WireRequest,
  type WireResult,
  type WireValue,
  wireBytes,
} from "./bootstrap/crypto/wire.ts";

const subtle = webcrypto.subtle;
type NodeKey = webcrypto.CryptoKey;
type NodeAlgorithm = Parameters<typeof subtle.sign>[0];

/** Error names of Node's Web Crypto passed on as they are (and TypeError); anything else is OperationError. */
const PASSED_NAMES = new Set([...CRYPTO_ERROR_NAMES, "TypeError"]);

class CryptoRefusal extends Error {
  override readonly name: string;
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/**
 * The host side of an isolate's crypto.subtle for ECDSA, Ed25519, RSA, ECDH, X25519 and AES:
 * requests arrive as copies through a fire-and-forget Callback, run on Node's native Web Crypto
 * (libuv's thread pool), and results go back as copies through `__hearth_crypto_done(id, result)`.
 * Stateless: every request carries its key as a JWK, imported for that one operation, so nothing
 * outlives it and no host object ever enters the isolate. The CPU is spent outside the isolate's
 * clock, so the time each operation took is charged to the isolate (`charge`), and
 * CRYPTO_LIMITS caps bytes, concurrency and key sizes.
 */
export class CryptoHost {
  #timeoutMs: number;
  #inFlight = 0;
  #done: ivm.Reference | null = null;
  #disposed = false;
  readonly #onCall: (call: Promise<unknown>) => void;
  readonly #charge: (ns: bigint) => void;

  /** `onCall` sees every call into the isolate; `charge` hears the host time each operation took. */
  constructor(options: {
    timeoutMs: number;
    onCall: (call: Promise<unknown>) => void;
    charge: (ns: bigint) => void;
  }) {
    this.#timeoutMs = options.timeoutMs;
    this.#onCall = options.onCall;
    this.#charge = options.charge;
  }

  /** Operations in flight. */
  get pending(): boolean {
    return this.#inFlight > 0;
  }

  bind(done: ivm.Reference): void {
    this.#done = done;
  }

  /** How long the continuation a result wakes may run; set when a function adopts the isolate. */
  setTimeout(ms: number): void {
    this.#timeoutMs = ms;
  }

  readonly start = (id: number, request: unknown): void => {
    if (this.#disposed || typeof id !== "number") return;
    // The bootstrap queues past maxInFlight; a tampered one that does not is refused here.
    if (this.#inFlight >= CRYPTO_LIMITS.maxInFlight) {
      this.#reply(
        id,
        refusal("OperationError", `Too many crypto operations in flight (limit ${CRYPTO_LIMITS.maxInFlight})`),
      );
      return;
    }
    this.#inFlight++;
    const started = process.hrtime.bigint();
    run(request).then(
      (value) => this.#finish(id, started, { value }),
      (err: unknown) => this.#finish(id, started, refusalOf(err)),
    );
  };

  #finish(id: number, started: bigint, result: WireResult): void {
    this.#inFlight--;
    this.#charge(process.hrtime.bigint() - started);
    this.#reply(id, result);
  }

  #reply(id: number, result: WireResult): void {
    if (this.#disposed || !this.#done) return;
    // The continuation that awaited this operation runs inside this call: bounded like any other.
    const call = this.#done.apply(undefined, [id, result], { arguments: { copy: true }, timeout: this.#timeoutMs });
    this.#onCall(call);
    call.catch(() => {});
  }

  dispose(): void {
    this.#disposed = true;
  }
}

function refusal(name: string, message: string): WireResult {
  return { error: { name, message } };
}

function refusalOf(err: unknown): WireResult {
  const e = err as { name?: unknown; message?: unknown } | null;
  const name = typeof e?.name === "string" && PASSED_NAMES.has(e.name) ? e.name : "OperationError";
  const message = typeof e?.message === "string" && e.message ? e.message : "The operation failed";
  return refusal(name, message);
}

const OPS = new Set(["sign", "verify", "encrypt", "decrypt", "deriveBits", "importKey", "exportKey", "generateKey"]);
const FORMATS = new Set(["raw", "spki", "pkcs8", "jwk"]);
/** The algorithms the isolate sends here; HMAC, PBKDF2 and HKDF stay in the isolate. */
const HOST_ALGORITHMS = new Set([
  "ECDSA",
  "ECDH",
  "Ed25519",
  "X25519",
  "RSASSA-PKCS1-v1_5",
  "RSA-PSS",
  "RSA-OAEP",
  "AES-GCM",
  "AES-CBC",
  "AES-CTR",
]);

/** Runs one request copied out of an isolate whose bootstrap function code may have tampered with. */
async function run(input: unknown): Promise<WireValue> {
  const request = checkRequest(input);
  switch (request.op) {
    case "sign":
      return subtle.sign(request.algorithm as NodeAlgorithm, await keyFor(request.key, ["sign"]), request.data);
    case "verify":
      return subtle.verify(
        request.algorithm as NodeAlgorithm,
        await keyFor(request.key, ["verify"]),
        request.signature,
        request.data,
      );
    case "encrypt":
    case "decrypt":
      return subtle[request.op](
        request.algorithm as NodeAlgorithm,
        await keyFor(request.key, [request.op]),
        request.data,
      );
    case "deriveBits": {
      const algorithm = { ...request.algorithm, public: await keyFor(checkKey(request.algorithm.public), []) };
      return subtle.deriveBits(
        algorithm as unknown as webcrypto.EcdhKeyDeriveParams,
        await keyFor(request.key, ["deriveBits"]),
        request.length as number, // null (the whole secret) is accepted too, as the spec allows
      );
    }
    case "importKey": {
      checkRsaSize(request.algorithm, CRYPTO_LIMITS.maxRsaImportBits);
      const key = await subtle.importKey(
        request.format as "jwk",
        request.keyData as webcrypto.JsonWebKey,
        request.algorithm as NodeAlgorithm,
        true,
        request.usages as webcrypto.KeyUsage[],
      );
      checkRsaSize(key.algorithm as unknown as Record<string, unknown>, CRYPTO_LIMITS.maxRsaImportBits);
      return describeKey(key);
    }
    case "exportKey":
      return subtle.exportKey(request.format as "jwk", await keyFor(request.key, request.usages, true));
    case "generateKey": {
      checkRsaSize(request.algorithm, CRYPTO_LIMITS.maxRsaGenerateBits);
      const made = await subtle.generateKey(
        request.algorithm as unknown as webcrypto.RsaHashedKeyGenParams,
        true,
        request.usages as webcrypto.KeyUsage[],
      );
      const keys = "privateKey" in made ? [made.publicKey, made.privateKey] : [made as NodeKey];
      return Promise.all(keys.map(describeKey));
    }
  }
}

/** Imports a request's key for one operation, with just the usages it needs. */
function keyFor(key: WireKey, usages: string[], extractable = false): Promise<NodeKey> {
  checkRsaSize({ name: key.algorithm.name, modulusLength: rsaBits(key.jwk) }, CRYPTO_LIMITS.maxRsaImportBits);
  return subtle.importKey(
    "jwk",
    key.jwk,
    key.algorithm as unknown as NodeAlgorithm,
    extractable,
    usages as webcrypto.KeyUsage[],
  );
}

/** A key the isolate will hold: its JWK without key_ops/ext, which belong to the isolate's CryptoKey. */
async function describeKey(key: NodeKey): Promise<WireNewKey> {
  const { key_ops: _ops, ext: _ext, ...jwk } = await subtle.exportKey("jwk", key);
  return {
    type: key.type,
    algorithm: { ...(key.algorithm as unknown as Record<string, unknown>) } as WireNewKey["algorithm"],
    usages: [...key.usages],
    jwk,
  };
}

function rsaBits(jwk: webcrypto.JsonWebKey): number | undefined {
  return typeof jwk.n === "string" ? Math.floor((jwk.n.replace(/=+$/, "").length * 6) / 8) * 8 : undefined;
}

function checkRsaSize(algorithm: Record<string, unknown>, maxBits: number): void {
  const bits = algorithm.modulusLength;
  if (typeof bits === "number" && bits > maxBits) {
    throw new CryptoRefusal("NotSupportedError", `RSA keys over ${maxBits} bits are not supported here (got ${bits})`);
  }
}

function checkKey(value: unknown): WireKey {
  const key = value as Partial<WireKey> | null;
  if (
    typeof key !== "object" ||
    key === null ||
    typeof key.jwk !== "object" ||
    key.jwk === null ||
    typeof key.algorithm !== "object" ||
    key.algorithm === null ||
    !HOST_ALGORITHMS.has(key.algorithm.name as string)
  ) {
    throw new CryptoRefusal("DataError", "malformed key");
  }
  return key as WireKey;
}

function checkRequest(input: unknown): WireRequest {
  const r = input as Record<string, unknown> | null;
  if (typeof r !== "object" || r === null || !OPS.has(r.op as string))
    throw new CryptoRefusal("OperationError", "malformed request");
  const bytes = wireBytes(r);
  if (bytes > CRYPTO_LIMITS.maxBytesPerOp) {
    throw new CryptoRefusal(
      "QuotaExceededError",
      `${bytes} bytes is over the limit of ${CRYPTO_LIMITS.maxBytesPerOp} per crypto operation`,
    );
  }
  if (r.op !== "exportKey") {
    const algorithm = r.algorithm as { name?: unknown } | null;
    if (typeof algorithm !== "object" || algorithm === null || !HOST_ALGORITHMS.has(algorithm.name as string)) {
      throw new CryptoRefusal("NotSupportedError", "unsupported algorithm");
    }
  }
  if (r.op !== "importKey" && r.op !== "generateKey") checkKey(r.key);
  if ((r.op === "importKey" || r.op === "exportKey") && !FORMATS.has(r.format as string)) {
    throw new CryptoRefusal("OperationError", "malformed request");
  }
  for (const member of ["data", "signature"] as const) {
    if (member in r && !(r[member] instanceof ArrayBuffer))
      throw new CryptoRefusal("OperationError", "malformed request");
  }
  if ((r.op === "importKey" || r.op === "generateKey" || r.op === "exportKey") && !isStringArray(r.usages)) {
    throw new CryptoRefusal("OperationError", "malformed request");
  }
  return r as unknown as WireRequest;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
