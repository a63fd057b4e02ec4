/**
 * Request/response bodies (WHATWG Fetch "body mixin"). A body is bytes (what arrives from the host
 * and what most functions return) or a ReadableStream; `.body` always offers a stream. The host
 * takes a response body with `takeForHost` and streams it out when it is not complete (response-stream.ts).
 */
import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";
import { ReadableStream } from "web-streams-polyfill";
import { Blob } from "./blob.ts";
import { FormData } from "./form-data.ts";
import { lazyPart } from "./lazy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
/** FormData's parser and serializer: compiled into the isolate on first use (lazy.ts). */
const formDataCodec = lazyPart<typeof import("./lazy/form-data-codec.ts")>("formData");

export type BodySource =
  | string
  | ArrayBuffer
  | ArrayBufferView
  | URLSearchParams
  | Blob
  | FormData
  | ReadableStream<Uint8Array>
  | null
  | undefined;

export interface ExtractedBody {
  readonly bytes: Uint8Array | null;
  readonly stream: ReadableStream<Uint8Array> | null;
  readonly contentType: string | null;
}

/** Turns a BodyInit into bytes or a stream, and the content type the spec implies for it. */
export function extractBody(init: BodySource): ExtractedBody {
  if (init === null || init === undefined) return { bytes: null, stream: null, contentType: null };
  if (typeof init === "string")
    return { bytes: encoder.encode(init), stream: null, contentType: "text/plain;charset=UTF-8" };
  if (init instanceof URLSearchParams) {
    return {
      bytes: encoder.encode(init.toString()),
      stream: null,
      contentType: "application/x-www-form-urlencoded;charset=UTF-8",
    };
  }
  if (init instanceof FormData) {
    const { bytes, contentType } = formDataCodec().serializeFormData(init);
    return { bytes, stream: null, contentType };
  }
  if (init instanceof Blob) return { bytes: init.bytesNow().slice(), stream: null, contentType: init.type || null };
  if (init instanceof ReadableStream) return { bytes: null, stream: init, contentType: null };
  if (init instanceof ArrayBuffer) return { bytes: new Uint8Array(init.slice(0)), stream: null, contentType: null };
  if (ArrayBuffer.isView(init)) {
    return {
      bytes: new Uint8Array(init.buffer, init.byteOffset, init.byteLength).slice(),
      stream: null,
      contentType: null,
    };
  }
  // Anything else is stringified, as browsers do for e.g. numbers and plain objects.
  return { bytes: encoder.encode(String(init)), stream: null, contentType: "text/plain;charset=UTF-8" };
}

/** Thrown when a body grows past the limit it is read under; the dispatcher maps it to a 413. */
export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

/** Reads a byte stream to the end. Chunks must be BufferSources, as the Fetch spec requires. */
async function readAll(stream: ReadableStream<Uint8Array>, maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk: unknown = value;
    let bytes: Uint8Array;
    if (chunk instanceof Uint8Array) bytes = chunk;
    else if (chunk instanceof ArrayBuffer) bytes = new Uint8Array(chunk);
    else if (ArrayBuffer.isView(chunk)) bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw new TypeError("Body stream chunks must be Uint8Array (or another BufferSource)");
    chunks.push(bytes);
    size += bytes.byteLength;
    if (size > maxBytes) {
      // Stop pulling: an endless stream must not run the isolate out of memory first.
      await reader.cancel();
      throw new BodyTooLargeError(`Response body is over the ${maxBytes} byte limit`);
    }
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return all;
}

/**
 * Whether a stream was ever read from or cancelled (the Streams spec's [[disturbed]]), which no
 * public API exposes: web-streams-polyfill keeps it in `_disturbed` on every ReadableStream.
 */
function isDisturbed(stream: ReadableStream<Uint8Array>): boolean {
  return (stream as unknown as { _disturbed?: boolean })._disturbed === true;
}

/** Base class of Request and Response: owns the body and the read-once rule. */
export class Body {
  #bytes: Uint8Array | null;
  #stream: ReadableStream<Uint8Array> | null;
  #used = false;

  constructor(bytes: Uint8Array | null, stream: ReadableStream<Uint8Array> | null = null) {
    this.#bytes = bytes;
    this.#stream = stream;
  }

  /** The body as a stream (created on first access for byte bodies), or null when there is none. */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream === null && this.#bytes !== null) {
      // Bytes already consumed by text() and the like are not offered again: the stream reads as ended.
      const bytes = this.#used ? EMPTY : this.#bytes;
      this.#bytes = null;
      this.#stream = new ReadableStream<Uint8Array>({
        start(controller) {
          if (bytes.byteLength > 0) controller.enqueue(bytes);
          controller.close();
        },
      });
    }
    return this.#stream;
  }

  /** Per the Fetch spec: the body is non-null and its stream disturbed (read from or cancelled). */
  get bodyUsed(): boolean {
    return this.#used || (this.#stream !== null && isDisturbed(this.#stream));
  }

  async #consume(): Promise<Uint8Array> {
    // A null body is never used: every read gives empty (WPT response-consume-empty.any.js).
    if (this.#stream === null && this.#bytes === null) return EMPTY;
    if (this.bodyUsed) throw new TypeError("Body has already been used");
    if (this.#stream?.locked) throw new TypeError("Body stream is locked");
    this.#used = true;
    return this.#stream ? readAll(this.#stream) : (this.#bytes ?? EMPTY);
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.#consume()).slice().buffer as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return (await this.#consume()).slice();
  }

  async text(): Promise<string> {
    return decoder.decode(await this.#consume());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async blob(): Promise<Blob> {
    const type = (this as unknown as { headers?: Headers }).headers?.get("content-type") ?? "";
    return new Blob([await this.#consume()], { type });
  }

  /** Parses a multipart/form-data or application/x-www-form-urlencoded body (form-data-parse.ts). */
  async formData(): Promise<FormData> {
    const contentType = (this as unknown as { headers?: Headers }).headers?.get("content-type") ?? null;
    return formDataCodec().parseFormData(await this.#consume(), contentType);
  }

  /** Not part of the web API: a copy of the body for clone(); a stream body is teed. */
  cloneBody(): Uint8Array | ReadableStream<Uint8Array> | null {
    if (this.bodyUsed) throw new TypeError("Cannot clone a body that was already used");
    if (this.#stream) {
      const [mine, theirs] = this.#stream.tee();
      this.#stream = mine;
      return theirs;
    }
    return this.#bytes?.slice() ?? null;
  }

  /**
   * Not part of the web API: the body for the host, bytes as they are, a stream (now used) for
   * response-stream.ts to read a chunk at a time.
   */
  takeForHost(): Uint8Array | ReadableStream<Uint8Array> | null {
    if (this.#stream === null) return this.#bytes;
    if (this.bodyUsed || this.#stream.locked) throw new TypeError("The response body was already read");
    this.#used = true;
    return this.#stream;
  }
}
