import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";
import { ReadableStream } from "web-streams-polyfill";

export type BlobPart = string | ArrayBuffer | ArrayBufferView | Blob;

const encoder = new TextEncoder();

function bytesOf(part: BlobPart): Uint8Array {
  if (typeof part === "string") return encoder.encode(part);
  if (part instanceof Blob) return part.bytesNow();
  if (part instanceof ArrayBuffer) return new Uint8Array(part);
  if (ArrayBuffer.isView(part)) return new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
  return encoder.encode(String(part));
}

/** In-memory Blob (fetch-blob@4 is bound to Node; research §4). */
export class Blob {
  readonly #bytes: Uint8Array;
  readonly type: string;

  constructor(parts: Iterable<BlobPart> = [], options: { type?: string } = {}) {
    const chunks = [...parts].map(bytesOf);
    const size = chunks.reduce((sum, c) => sum + c.byteLength, 0);
    this.#bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      this.#bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    const type = options.type ?? "";
    this.type = /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : "";
  }

  get size(): number {
    return this.#bytes.byteLength;
  }

  /** Not part of the web API: the bytes without a copy, for Body and other Blobs. */
  bytesNow(): Uint8Array {
    return this.#bytes;
  }

  slice(start = 0, end = this.size, type = ""): Blob {
    const clamp = (n: number) => (n < 0 ? Math.max(this.size + n, 0) : Math.min(n, this.size));
    return new Blob([this.#bytes.subarray(clamp(start), clamp(end))], { type });
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#bytes.slice().buffer as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return this.#bytes.slice();
  }

  async text(): Promise<string> {
    return new TextDecoder().decode(this.#bytes);
  }

  stream(): ReadableStream<Uint8Array> {
    const bytes = this.#bytes.slice();
    return new ReadableStream<Uint8Array>({
      start(controller) {
        if (bytes.byteLength > 0) controller.enqueue(bytes);
        controller.close();
      },
    });
  }

  get [Symbol.toStringTag](): string {
    return "Blob";
  }
}

export class File extends Blob {
  readonly name: string;
  readonly lastModified: number;

  constructor(parts: Iterable<BlobPart>, name: string, options: { type?: string; lastModified?: number } = {}) {
    super(parts, options);
    this.name = String(name);
    this.lastModified = options.lastModified ?? Date.now();
  }

  override get [Symbol.toStringTag](): string {
    return "File";
  }
}
