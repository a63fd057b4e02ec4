/**
 * Installs the library-provided web globals. Imported first by index.ts: the other bootstrap modules
 * use TextEncoder, Headers and URL at their top level, and imports evaluate in order.
 */
import "core-js/actual/url";
import "core-js/actual/url-search-params";
import { TextDecoder, TextEncoder } from "@exodus/bytes/encoding-lite.js";
import { Headers } from "headers-polyfill";

/** Defines a global the way the web platform does: writable, configurable, not enumerable. */
export function defineGlobal(name: string, value: unknown): void {
  Object.defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
}

defineGlobal("self", globalThis);
defineGlobal("TextEncoder", TextEncoder);
defineGlobal("TextDecoder", TextDecoder);
defineGlobal("Headers", Headers);
