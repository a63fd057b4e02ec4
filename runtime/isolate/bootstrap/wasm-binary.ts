/**
 * Reads just enough of a WebAssembly binary to bound the memories it defines: the section headers,
 * and the memory section (id 5) in full. Nothing else is decoded, so a 10 MB module costs one copy
 * and a walk over its dozen section headers. Grammar: WebAssembly core spec §5.5 (binary modules).
 */
import { MAX_PAGES, PAGE_BYTES, sizeText } from "./wasm-budget.ts";
import {
  Bytes,
  bufferLength,
  dataViewBuffer,
  dataViewLength,
  dataViewOffset,
  isView,
  min,
  natives,
  RangeErrorOf,
  setBytes,
  TypeErrorOf,
  typedArrayBuffer,
  typedArrayLength,
  typedArrayOffset,
  U8,
} from "./wasm-intrinsics.ts";

const MEMORY_SECTION = 5;
const START_SECTION = 8;
const HAS_MAXIMUM = 0x01;
const SHARED = 0x02;
const MEMORY64 = 0x04;
/** V8's own limit on memories per module (multi-memory; measured), which bounds the rewrite's scratch space. */
const MAX_MEMORIES = 100_000;

/** A module's bytes with every memory it defines bounded. */
export interface LimitedModule {
  readonly bytes: Uint8Array;
  /** Pages its defined memories can reach together: what each instance reserves. */
  readonly maxPages: number;
  /** A start function runs during instantiation, and may hand the instance to function code. */
  readonly hasStart: boolean;
}

/**
 * A private copy of a BufferSource, read through the intrinsics: what is parsed is what V8 compiles,
 * whatever getters function code has put on typed arrays.
 */
export function copyBufferSource(source: unknown): { bytes: Uint8Array; length: number } {
  let buffer: ArrayBufferLike;
  let offset = 0;
  let length: number;
  if (isView(source)) {
    try {
      buffer = typedArrayBuffer(source);
      offset = typedArrayOffset(source);
      length = typedArrayLength(source);
    } catch {
      buffer = dataViewBuffer(source as DataView);
      offset = dataViewOffset(source as DataView);
      length = dataViewLength(source as DataView);
    }
  } else {
    buffer = source as ArrayBuffer;
    try {
      length = bufferLength(source as ArrayBuffer);
    } catch {
      try {
        length = natives.sharedBufferLength(source as SharedArrayBuffer);
      } catch {
        throw new TypeErrorOf("WebAssembly.Module(): Argument 0 must be a buffer source");
      }
    }
  }
  const bytes = new U8(new Bytes(length));
  setBytes(bytes, new U8(buffer, offset, length));
  return { bytes, length };
}

function fail(message: string, at: number): never {
  throw new natives.CompileError(`WebAssembly.Module(): ${message} @+${at}`);
}

/** Reads an unsigned LEB128 of at most 32 bits, as strictly as V8 does, so both see the same sections. */
function readU32(bytes: Uint8Array, at: { pos: number }, end: number): number {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    if (at.pos >= end) fail("unexpected end of section or module", at.pos);
    const byte = bytes[at.pos++] as number;
    if (shift === 28 && byte > 0x0f) fail("invalid LEB128 (more than 32 bits)", at.pos - 1);
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return value;
  }
}

function writeU32(out: Uint8Array, pos: number, value: number): number {
  let rest = value;
  for (;;) {
    const low = rest % 128;
    rest = (rest - low) / 128;
    out[pos++] = rest > 0 ? low | 0x80 : low;
    if (rest === 0) return pos;
  }
}

/**
 * Walks the memory section once to check its limits and add up initial sizes (`out` null), then
 * again to write each memory with a maximum (`out` given): its own, or less, so that the memories
 * together grow by at most `spare` pages. Memory64 and flags V8 may learn later are refused, not
 * guessed at.
 */
function walkMemories(bytes: Uint8Array, start: number, end: number, spare: number, out: Uint8Array | null) {
  const at = { pos: start };
  const count = readU32(bytes, at, end);
  if (count > MAX_MEMORIES) fail(`${count} memories, more than ${MAX_MEMORIES}`, start);
  let pos = out ? writeU32(out, 0, count) : 0;
  let initialPages = 0;
  let maxPages = 0;
  for (let i = 0; i < count; i++) {
    if (at.pos >= end) fail("unexpected end of memory section", at.pos);
    const flags = bytes[at.pos++] as number;
    if (flags & MEMORY64) fail(`memory ${i} is a memory64, which Hearth functions cannot use`, at.pos - 1);
    if (flags > (HAS_MAXIMUM | SHARED)) fail(`memory ${i} has unknown limits flags ${flags}`, at.pos - 1);
    if (flags === SHARED) fail(`shared memory ${i} must have a maximum defined`, at.pos - 1);
    const initial = readU32(bytes, at, end);
    const declared = flags & HAS_MAXIMUM ? readU32(bytes, at, end) : MAX_PAGES;
    // A maximum below the initial size stays as it is: V8 refuses the module, as it would have.
    const grant = min(declared - initial, spare);
    spare -= grant;
    initialPages += initial;
    maxPages += initial + grant;
    if (out) {
      out[pos++] = flags | HAS_MAXIMUM;
      pos = writeU32(out, pos, initial);
      pos = writeU32(out, pos, initial + grant);
    }
  }
  if (at.pos !== end) fail("memory section is longer than its memories", at.pos);
  return { count, initialPages, maxPages, length: pos };
}

/**
 * Copies `bytes` with every memory the module defines given a maximum no larger than `freePages`
 * allows; the memory section alone is re-encoded, every other byte is copied as it was. Throws
 * CompileError for what V8 would refuse as well or what Hearth cannot bound (memory64), and a
 * RangeError, naming `limitText`, when the initial sizes alone do not fit.
 */
export function limitMemories(bytes: Uint8Array, length: number, freePages: number, limitText: string): LimitedModule {
  if (length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    fail("expected the magic word 00 61 73 6d", 0);
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) fail("expected version 01 00 00 00", 4);
  const at = { pos: 8 };
  let memory = -1;
  let hasStart = false;
  while (at.pos < length) {
    const header = at.pos;
    const id = bytes[at.pos++] as number;
    const size = readU32(bytes, at, length);
    if (size > length - at.pos) fail(`section (code ${id}) extends past the end of the module`, header);
    if (id === START_SECTION) hasStart = true;
    if (id === MEMORY_SECTION) {
      if (memory >= 0) fail("more than one memory section", header);
      memory = header;
    }
    at.pos += size;
  }
  if (memory < 0) return { bytes, maxPages: 0, hasStart };

  const body = { pos: memory + 1 };
  const size = readU32(bytes, body, length);
  const end = body.pos + size;
  const { count, initialPages } = walkMemories(bytes, body.pos, end, 0, null);
  if (initialPages > freePages) {
    throw new RangeErrorOf(
      `WebAssembly.Module(): the module's memory starts at ${initialPages} pages (${sizeText(initialPages * PAGE_BYTES)}), more than the ${limitText}`,
    );
  }
  // Each memory re-encoded takes at most 1 + 5 + 5 bytes, the count at most 5.
  const section = new U8(new Bytes(5 + 11 * count));
  const rewritten = walkMemories(bytes, body.pos, end, freePages - initialPages, section);
  const header = new U8(new Bytes(6));
  header[0] = MEMORY_SECTION;
  const headerLength = writeU32(header, 1, rewritten.length);
  const out = new U8(new Bytes(length - (end - memory) + headerLength + rewritten.length));
  const source = typedArrayBuffer(bytes);
  setBytes(out, new U8(source, 0, memory));
  setBytes(out, new U8(typedArrayBuffer(header), 0, headerLength), memory);
  setBytes(out, new U8(typedArrayBuffer(section), 0, rewritten.length), memory + headerLength);
  setBytes(out, new U8(source, end, length - end), memory + headerLength + rewritten.length);
  return { bytes: out, maxPages: rewritten.maxPages, hasStart };
}
