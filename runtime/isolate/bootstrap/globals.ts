/**
 * Installs the library-provided web globals (research §4: core-js, web-streams-polyfill,
 * headers-polyfill, @exodus/bytes, event-target-shim). Other bootstrap modules import what they use,
 * so the order in which modules evaluate does not matter.
 */
import "core-js/actual/url";
import "core-js/actual/url-search-params";
import "core-js/actual/atob";
import "core-js/actual/btoa";
import "core-js/actual/structured-clone";
import "core-js/actual/queue-microtask";
import "core-js/actual/dom-exception";
import { TextDecoder, TextDecoderStream, TextEncoder, TextEncoderStream } from "@exodus/bytes/encoding-lite.js";
import { Event, EventTarget } from "event-target-shim";
import { Headers } from "headers-polyfill";
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

/** Defines a global the way the web platform does: writable, configurable, not enumerable. */
export function defineGlobal(name: string, value: unknown): void {
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
