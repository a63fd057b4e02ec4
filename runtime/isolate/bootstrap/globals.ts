/**
 * Installs the web globals that libraries provide (core-js, web-streams-polyfill, @exodus/bytes,
 * event-target-shim) and the small ones written here where no library gets them right (Headers,
 * CustomEvent, queueMicrotask). Other bootstrap modules import what they use,
 * so the order in which modules evaluate does not matter.
 */
import "core-js/actual/url";
import "core-js/actual/url-search-params";
import "core-js/actual/atob";
import "core-js/actual/btoa";
import "core-js/actual/structured-clone";
import "core-js/actual/dom-exception";
import { TextDecoder, TextDecoderStream, TextEncoder, TextEncoderStream } from "@exodus/bytes/encoding-lite.js";
import { Event, EventTarget } from "event-target-shim";
import {
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
  ReadableByteStreamController,
  ReadableStream,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableStreamDefaultReader,
  TransformStream,
  TransformStreamDefaultController,
  WritableStream,
  WritableStreamDefaultController,
  WritableStreamDefaultWriter,
} from "web-streams-polyfill";
import { CustomEvent } from "./custom-event.ts";
import { Headers } from "./headers.ts";
import { queueMicrotask } from "./microtask.ts";

/** Defines a global the way the web platform does: writable, configurable, not enumerable. */
export function defineGlobal(name: string, value: unknown): void {
  // The bootstrap is minified, so `class AbortSignal` may be named "e"; WebIDL names an interface
  // object and an operation by its identifier. Renaming just the globals costs nothing measurable,
  // where esbuild's keepNames added 370 KiB of heap to every isolate.
  if (typeof value === "function" && value.name !== name) {
    Object.defineProperty(value, "name", { value: name, configurable: true });
  }
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

/** Defines several globals, named by their keys. */
export function defineGlobals(values: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(values)) defineGlobal(name, value);
}

defineGlobals({
  self: globalThis,
  TextEncoder,
  TextDecoder,
  TextEncoderStream,
  TextDecoderStream,
  Headers,
  Event,
  EventTarget,
  CustomEvent,
  queueMicrotask,
  ReadableStream,
  ReadableStreamDefaultReader,
  ReadableStreamBYOBReader,
  ReadableStreamBYOBRequest,
  ReadableStreamDefaultController,
  ReadableByteStreamController,
  WritableStream,
  WritableStreamDefaultWriter,
  WritableStreamDefaultController,
  TransformStream,
  TransformStreamDefaultController,
  ByteLengthQueuingStrategy,
  CountQueuingStrategy,
});
