/**
 * Installs the library-provided web globals. Other bootstrap modules import what they use at their
 * own top level, so the order in which modules evaluate does not matter.
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
