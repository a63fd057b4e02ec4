/**
 * WHATWG Fetch Headers (https://fetch.spec.whatwg.org/#headers-class). Ours rather than
 * headers-polyfill 5, which fails the web-platform-tests where it matters: it drops invalid names
 * and values silently instead of throwing, accepts `new Headers(null)`, and keeps Set-Cookie joined
 * with ", " and re-split by a cookie parser, so two equal cookies or one with a comma in it come
 * back wrong. Those are storage decisions, which a subclass cannot undo.
 */

import { trimHttpWhitespace } from "./http-whitespace.ts";

/** RFC 9110 token characters (https://httpwg.org/specs/rfc9110.html#tokens). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A value may not contain NUL, CR or LF (https://fetch.spec.whatwg.org/#header-value). */
const FORBIDDEN_IN_VALUE = /[\0\r\n]/;
const BYTE_STRING = /^[\0-\u00ff]*$/;

export type HeadersInit = Headers | Iterable<Iterable<unknown>> | Record<string, unknown>;

/** WebIDL ByteString: any value is stringified (so null is "null"); a code point over U+00FF throws. */
function toByteString(value: unknown, what: string): string {
  const text = `${value}`; // a template literal, unlike String(), throws TypeError for a Symbol as WebIDL does
  if (!BYTE_STRING.test(text)) throw new TypeError(`${what} ${JSON.stringify(text)} has a character over U+00FF`);
  return text;
}

function headerName(name: unknown): string {
  const text = toByteString(name, "Header name");
  if (!HEADER_NAME.test(text)) throw new TypeError(`Invalid header name ${JSON.stringify(text)}`);
  return text.toLowerCase();
}

function headerValue(value: unknown): string {
  // Normalized: HTTP whitespace at either end is stripped (https://fetch.spec.whatwg.org/#concept-header-value-normalize).
  const text = trimHttpWhitespace(toByteString(value, "Header value"));
  if (FORBIDDEN_IN_VALUE.test(text)) throw new TypeError(`Invalid header value ${JSON.stringify(text)}`);
  return text;
}

export class Headers {
  /** Lowercase name → its values in the order they were added. */
  readonly #values = new Map<string, string[]>();
  /** The "sort and combine" view iteration walks, rebuilt after a change. */
  #sorted: Array<[string, string]> | null = null;

  constructor(init?: HeadersInit) {
    if (init === undefined) return;
    if (init === null || typeof init !== "object") {
      throw new TypeError("Headers init must be a Headers, a sequence of name-value pairs or a record");
    }
    if (init instanceof Headers) {
      for (const [name, values] of init.#values) this.#values.set(name, [...values]);
      return;
    }
    if (Symbol.iterator in init) {
      for (const pair of init as Iterable<unknown>) {
        if (pair === null || typeof pair !== "object" || !(Symbol.iterator in pair)) {
          throw new TypeError("Each header init pair must be a sequence of a name and a value");
        }
        const items = [...(pair as Iterable<unknown>)];
        if (items.length !== 2) throw new TypeError(`A header init pair must have 2 items, not ${items.length}`);
        this.append(items[0], items[1]);
      }
      return;
    }
    // A WebIDL record: own enumerable keys, Symbols included (converting one throws TypeError).
    for (const key of Reflect.ownKeys(init)) {
      if (Object.getOwnPropertyDescriptor(init, key)?.enumerable)
        this.append(key, (init as Record<PropertyKey, unknown>)[key]);
    }
  }

  append(name: unknown, value: unknown): void {
    const key = headerName(name);
    const text = headerValue(value);
    const values = this.#values.get(key);
    if (values) values.push(text);
    else this.#values.set(key, [text]);
    this.#sorted = null;
  }

  set(name: unknown, value: unknown): void {
    const key = headerName(name);
    this.#values.set(key, [headerValue(value)]);
    this.#sorted = null;
  }

  delete(name: unknown): void {
    if (this.#values.delete(headerName(name))) this.#sorted = null;
  }

  get(name: unknown): string | null {
    return this.#values.get(headerName(name))?.join(", ") ?? null;
  }

  has(name: unknown): boolean {
    return this.#values.has(headerName(name));
  }

  /** Every Set-Cookie value on its own: they cannot be joined with commas (RFC 6265 §3). */
  getSetCookie(): string[] {
    return [...(this.#values.get("set-cookie") ?? [])];
  }

  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
    if (typeof callback !== "function") throw new TypeError("Headers.forEach needs a function");
    for (const [name, value] of this) callback.call(thisArg, value, name, this);
  }

  /**
   * Iteration per WebIDL's pair iterators: each step reads the current sorted list at its index, so
   * headers added or removed while iterating are seen or skipped as in browsers (headers-basic.any.js).
   */
  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; ; i++) {
      const pair = this.#sortAndCombine()[i];
      if (pair === undefined) return;
      yield [pair[0], pair[1]];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "Headers";
  }

  /** https://fetch.spec.whatwg.org/#concept-header-list-sort-and-combine */
  #sortAndCombine(): Array<[string, string]> {
    if (this.#sorted) return this.#sorted;
    const sorted: Array<[string, string]> = [];
    for (const name of [...this.#values.keys()].sort()) {
      const values = this.#values.get(name) as string[];
      if (name === "set-cookie") for (const value of values) sorted.push([name, value]);
      else sorted.push([name, values.join(", ")]);
    }
    this.#sorted = sorted;
    return sorted;
  }
}
