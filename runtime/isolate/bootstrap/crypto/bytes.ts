/** A view of a BufferSource's bytes (no copy); TypeError for anything else, as WebIDL does. */
export function viewOf(data: unknown, what = "data"): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBufferView`);
}

/**
 * A standalone copy of a BufferSource, taken when the method is called: Web Crypto reads its
 * inputs at call time (W3C Web Cryptography API, "get a copy of the bytes held by the buffer source").
 */
export function copyOf(data: unknown, what = "data"): Uint8Array {
  return viewOf(data, what).slice();
}

export function isBufferSource(value: unknown): boolean {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** A result buffer of exactly these bytes. */
export function bufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? (bytes.buffer as ArrayBuffer)
    : (bytes.slice().buffer as ArrayBuffer);
}

/** Compares without an early exit, so timing does not reveal where a forged MAC first differs. */
export function equalInConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}
