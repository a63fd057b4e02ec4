import { sha1 } from "@noble/hashes/legacy.js";
import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import { host } from "./host.ts";

/**
 * crypto.getRandomValues/randomUUID from host entropy (node:crypto), drawn in 64 KiB blocks so most
 * calls stay inside the isolate; crypto.subtle.digest with @noble/hashes (audited, pure JS), so
 * hashing needs no trip to the host.
 */
const POOL_BYTES = 65_536;
let pool = new Uint8Array(0);
let poolOffset = 0;

function take(n: number): Uint8Array {
  if (poolOffset + n > pool.byteLength) {
    pool = new Uint8Array(host.entropy(POOL_BYTES));
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

type IntegerArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

function getRandomValues<T extends IntegerArray>(array: T): T {
  if (
    !(
      ArrayBuffer.isView(array) &&
      !(array instanceof Float32Array) &&
      !(array instanceof Float64Array) &&
      !(array instanceof DataView)
    )
  ) {
    throw new DOMException("The data argument must be an integer-type TypedArray", "TypeMismatchError");
  }
  if (array.byteLength > POOL_BYTES) {
    throw new DOMException(
      `The ArrayBufferView's byte length (${array.byteLength}) exceeds 65536`,
      "QuotaExceededError",
    );
  }
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(take(array.byteLength));
  return array;
}

function randomUUID(): string {
  const b = Uint8Array.from(take(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const DIGESTS: Record<string, (data: Uint8Array) => Uint8Array> = {
  "SHA-1": sha1,
  "SHA-256": sha256,
  "SHA-384": sha384,
  "SHA-512": sha512,
};

function toBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("data must be an ArrayBuffer or an ArrayBufferView");
}

const subtle = {
  async digest(algorithm: string | { name: string }, data: unknown): Promise<ArrayBuffer> {
    const name = (typeof algorithm === "string" ? algorithm : (algorithm?.name ?? "")).toUpperCase();
    const hash = DIGESTS[name];
    if (!hash) throw new DOMException(`Unrecognized algorithm name: ${name}`, "NotSupportedError");
    return hash(toBytes(data)).slice().buffer as ArrayBuffer;
  },
};

export const crypto = { getRandomValues, randomUUID, subtle };
