/**
 * Cuts a byte stream (or a buffer) into parts of exactly `partBytes` (the last one shorter), as a
 * restore upload sends them (control/backup-api.ts): whatever sizes the source yields.
 */
export async function* partsOf(
  source: AsyncIterable<Uint8Array> | Uint8Array,
  partBytes: number,
): AsyncGenerator<Buffer> {
  const chunks = source instanceof Uint8Array ? [source] : source;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of chunks) {
    let rest = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (pendingBytes + rest.length >= partBytes) {
      const take = partBytes - pendingBytes;
      pending.push(rest.subarray(0, take));
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}
