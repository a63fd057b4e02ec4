/**
 * Buffered request/response bodies (WHATWG Fetch "body mixin"). Bodies arrive from the host whole,
 * so they are kept as bytes; streaming bodies come with the streams work (issue 3).
 */
import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type BodySource = string | ArrayBuffer | ArrayBufferView | URLSearchParams | null | undefined;

/** Turns a BodyInit into bytes and the content type the spec implies for it. */
export function extractBody(init: BodySource): { bytes: Uint8Array | null; contentType: string | null } {
  if (init === null || init === undefined) return { bytes: null, contentType: null };
  if (typeof init === "string") return { bytes: encoder.encode(init), contentType: "text/plain;charset=UTF-8" };
  if (init instanceof URLSearchParams) {
    return { bytes: encoder.encode(init.toString()), contentType: "application/x-www-form-urlencoded;charset=UTF-8" };
  }
  if (init instanceof ArrayBuffer) return { bytes: new Uint8Array(init.slice(0)), contentType: null };
  if (ArrayBuffer.isView(init)) {
    const view = new Uint8Array(init.buffer, init.byteOffset, init.byteLength);
    return { bytes: view.slice(), contentType: null };
  }
  // Anything else is stringified, as browsers do for e.g. numbers and plain objects.
  return { bytes: encoder.encode(String(init)), contentType: "text/plain;charset=UTF-8" };
}

/** Base class of Request and Response: owns the bytes and the read-once rule. */
export class Body {
  #bytes: Uint8Array | null;
  #used = false;

  constructor(bytes: Uint8Array | null) {
    this.#bytes = bytes;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** Not part of the web API: the host-facing way to read the body without consuming it. */
  peekBytes(): Uint8Array | null {
    return this.#bytes;
  }

  #consume(): Uint8Array {
    // Callers are async methods, so this throw surfaces as a rejected promise, as the spec says.
    if (this.#used) throw new TypeError("Body has already been used");
    this.#used = true;
    return this.#bytes ?? new Uint8Array(0);
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#consume();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return this.#consume().slice();
  }

  async text(): Promise<string> {
    return decoder.decode(this.#consume());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}
