/**
 * Response bodies that leave the isolate while the function still produces them. A body that is a
 * stream not yet complete, or bytes over one chunk, is handed to the host a chunk at a time: the host
 * pulls (`__hearth_body_pull`), so a consumer that reads slowly holds the function's stream back
 * instead of filling memory (WHATWG Streams backpressure: the stream's own queue is all that waits).
 */
import type { ReadableStream, ReadableStreamDefaultReader } from "web-streams-polyfill";
import { BodyTooLargeError } from "./body.ts";
import type { ThrownError } from "./events.ts";

/** At most this many bytes per chunk handed to the host; larger chunks are split. */
export const STREAM_CHUNK_BYTES = 64 * 1024;

/**
 * Microtask turns within which a read counts as "ready". A chunk already queued, or a close already
 * made, settles a read of web-streams-polyfill in two or three turns; a producer that waits for a
 * timer, a fetch or the host needs a macrotask, which never fits. So a stream that is already
 * complete is answered whole (as cheaply as bytes), and one that is not starts streaming at once.
 */
const READY_TURNS = 16;
const NOT_READY = Symbol("not ready");

/** What the host gets from one pull: a chunk, the end, or why the body was cut. */
export type PullResult = { chunk: ArrayBuffer } | { done: true } | { error: ThrownError & { code: string } };

/** How a body starts: complete within one chunk (sent whole), or streaming under `id`. */
export type OpenedBody = { complete: true; bytes: Uint8Array } | { complete: false; first: Uint8Array; id: number };

function bytesOf(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError("Body stream chunks must be Uint8Array (or another BufferSource)");
}

function settlesSoon<T>(promise: Promise<T>): Promise<T | typeof NOT_READY> {
  let turns = Promise.resolve();
  for (let i = 0; i < READY_TURNS; i++) turns = turns.then();
  return Promise.race([promise, turns.then((): typeof NOT_READY => NOT_READY)]);
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const all = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.byteLength;
  }
  return all;
}

/** One body being sent: its reader, the rest of a chunk larger than STREAM_CHUNK_BYTES, and its size so far. */
class OutgoingBody {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | null;
  readonly #limit: number;
  #rest: Uint8Array | null;
  #pending: Promise<{ done: boolean; value?: Uint8Array }> | null = null;
  #sent = 0;

  constructor(source: ReadableStream<Uint8Array> | Uint8Array, limit: number) {
    this.#limit = limit;
    if (source instanceof Uint8Array) {
      this.#reader = null;
      this.#rest = source;
    } else {
      this.#reader = source.getReader();
      this.#rest = null;
    }
  }

  /** Up to `max` bytes, null at the end, or NOT_READY when `readyOnly` and the stream has nothing yet. */
  async read(max: number, readyOnly: boolean): Promise<Uint8Array | null | typeof NOT_READY> {
    if (this.#rest === null) {
      if (this.#reader === null) return null;
      this.#pending ??= this.#reader.read();
      const result = readyOnly ? await settlesSoon(this.#pending) : await this.#pending;
      if (result === NOT_READY) return NOT_READY;
      this.#pending = null;
      if (result.done) return null;
      this.#rest = bytesOf(result.value);
    }
    const rest = this.#rest;
    const chunk = rest.byteLength > max ? rest.subarray(0, max) : rest;
    this.#rest = rest.byteLength > max ? rest.subarray(max) : null;
    this.#sent += chunk.byteLength;
    if (this.#sent > this.#limit) {
      this.cancel();
      throw new BodyTooLargeError(`Response body is over the ${this.#limit} byte limit`);
    }
    return chunk;
  }

  cancel(): void {
    this.#rest = null;
    this.#reader?.cancel().catch(() => {});
  }
}

/**
 * The bodies of this isolate being streamed to the host, by id. `open` reads what is ready now;
 * `pull` reads the next chunk, waiting for the function to produce it.
 */
export class OutgoingBodies {
  readonly #open = new Map<number, OutgoingBody>();
  readonly #describe: (err: unknown) => ThrownError;
  #nextId = 1;

  /** `describe` turns what the function threw into the copy the host logs. */
  constructor(describe: (err: unknown) => ThrownError) {
    this.#describe = describe;
  }

  /**
   * Starts sending `source`. Bytes within one chunk never come here (the dispatcher sends them as
   * they are). Throws BodyTooLargeError past `limit`, or the stream's own error.
   */
  async open(source: ReadableStream<Uint8Array> | Uint8Array, limit: number): Promise<OpenedBody> {
    const body = new OutgoingBody(source, limit);
    const parts: Uint8Array[] = [];
    let size = 0;
    try {
      while (size < STREAM_CHUNK_BYTES) {
        const chunk = await body.read(STREAM_CHUNK_BYTES - size, true);
        if (chunk === NOT_READY) break;
        if (chunk === null) return { complete: true, bytes: concat(parts, size) };
        parts.push(chunk);
        size += chunk.byteLength;
      }
    } catch (err) {
      body.cancel();
      throw err;
    }
    const id = this.#nextId++;
    this.#open.set(id, body);
    return { complete: false, first: concat(parts, size), id };
  }

  /** The next chunk of body `id` for the host; `cancel` ends it (the consumer went away). */
  async pull(id: number, cancel: boolean): Promise<PullResult> {
    const body = this.#open.get(id);
    if (body === undefined) return { done: true };
    if (cancel) {
      this.#open.delete(id);
      body.cancel();
      return { done: true };
    }
    try {
      const chunk = await body.read(STREAM_CHUNK_BYTES, false);
      if (chunk === null || chunk === NOT_READY) {
        this.#open.delete(id);
        return { done: true };
      }
      // A copy the host can take: a subarray would drag its whole buffer across.
      return { chunk: chunk.slice().buffer as ArrayBuffer };
    } catch (err) {
      this.#open.delete(id);
      body.cancel();
      const code = err instanceof BodyTooLargeError ? "ERR_PAYLOAD_TOO_LARGE" : "ERR_FUNCTION_THREW";
      return { error: { code, ...this.#describe(err) } };
    }
  }
}
