import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";
import { ReadableStream } from "web-streams-polyfill";

export type BlobPart = string | ArrayBuffer | ArrayBufferView | Blob;

const encoder = new TextEncoder();

function bytesOf(part: BlobPart): Uint8Array {
  if (typeof part === "string") return encoder.encode(part);
  if (part instanceof Blob) return part.bytesNow();
  if (part instanceof ArrayBuffer) return new Uint8Array(part);
  if (ArrayBuffer.isView(part)) return new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
  // WebIDL USVString: a template literal throws for a Symbol; the encoder replaces lone surrogates.
  return encoder.encode(`${part}`);
}

/** WebIDL `sequence<BlobPart>`: undefined is empty, anything else must be an iterable object. */
function partsOf(parts: unknown): BlobPart[] {
  if (parts === undefined) return [];
  const iterable = parts as { [Symbol.iterator]?: unknown } | null;
  if (iterable === null || typeof iterable !== "object" || typeof iterable[Symbol.iterator] !== "function") {
    throw new TypeError("Blob parts must be a sequence (an array or another iterable object)");
  }
  return [...(parts as Iterable<BlobPart>)];
}

/** WebIDL dictionary conversion: undefined and null are empty, other non-objects throw. */
function optionsOf<T extends object>(options: unknown): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== "object" && typeof options !== "function")
    throw new TypeError("Blob options must be an object");
  return options as Partial<T>;
}

/** https://w3c.github.io/FileAPI/#dfn-type: ASCII printable only, lowercased; anything else is "". */
function blobType(type: unknown): string {
  if (type === undefined) return "";
  const text = `${type}`;
  return /^[\x20-\x7e]*$/.test(text) ? text.toLowerCase() : "";
}

/** In-memory Blob (fetch-blob@4 is bound to Node; research §4). */
export class Blob {
  readonly #bytes: Uint8Array;
  readonly type: string;

  constructor(parts?: Iterable<BlobPart>, options?: { type?: string }) {
    const chunks = partsOf(parts).map(bytesOf);
    const size = chunks.reduce((sum, c) => sum + c.byteLength, 0);
    this.#bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      this.#bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    this.type = blobType(optionsOf<{ type: string }>(options).type);
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

  constructor(parts: Iterable<BlobPart>, name: string, options?: { type?: string; lastModified?: number }) {
    // biome-ignore lint/complexity/noArguments: WebIDL tells a missing argument from undefined, which only `arguments` can.
    if (arguments.length < 2) throw new TypeError("File needs its bits and a name");
    super(parts, options);
    this.name = `${name}`;
    const lastModified = optionsOf<{ lastModified: number }>(options).lastModified;
    // WebIDL long long: a number (a Date converts to its time), truncated, NaN as 0.
    this.lastModified = lastModified === undefined ? Date.now() : Math.trunc(Number(lastModified)) || 0;
  }

  override get [Symbol.toStringTag](): string {
    return "File";
  }
}
