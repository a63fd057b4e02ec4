import { host } from "../host.ts";

/**
 * crypto.getRandomValues/randomUUID from host entropy (node:crypto), drawn in 64 KiB blocks so most
 * calls stay inside the isolate.
 */
const POOL_BYTES = 65_536;
let pool = new Uint8Array(0);
let poolOffset = 0;

/** `n` (≤ 64 KiB) fresh random bytes; the view is only valid until the next call. */
export function randomBytes(n: number): Uint8Array {
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

export function getRandomValues<T extends IntegerArray>(array: T): T {
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
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(randomBytes(array.byteLength));
  return array;
}

export function randomUUID(): string {
  const b = Uint8Array.from(randomBytes(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
