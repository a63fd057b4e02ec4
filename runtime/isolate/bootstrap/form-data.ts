/**
 * FormData as the XMLHttpRequest Standard defines it (https://xhr.spec.whatwg.org/#interface-formdata):
 * an ordered list of (name, string | File) entries. Written here rather than taken from a library
 * because the polyfills (formdata-node, formdata-polyfill) convert values to their own Blob and File
 * classes, and a function must get back the same `File` its own global names.
 */
import { Blob, File } from "./blob.ts";

export type FormDataEntryValue = string | File;
type Entry = [name: string, value: FormDataEntryValue];
/**
 * append() and set() take their arguments as a rest tuple because WebIDL counts them: two select
 * the (name, string) or (name, Blob) overload, three the (name, Blob, filename) one.
 */
type EntryArgs = [name: string, value: string | Blob, filename?: string];

/** WebIDL's USVString conversion: a Symbol throws a TypeError, lone surrogates become U+FFFD. */
function toUSVString(value: unknown): string {
  return `${value}`.toWellFormed();
}

/** WebIDL checks the argument count before anything else; `fd.append("a")` is a TypeError, not "undefined". */
function requireArguments(method: string, given: number, required: number): void {
  if (given < required) {
    throw new TypeError(`FormData.${method}: ${required} arguments required, but only ${given} present`);
  }
}

/** The name argument of get(), getAll(), has() and delete(), checked and converted. */
function nameArgument(method: string, args: [name: string]): string {
  requireArguments(method, args.length, 1);
  return toUSVString(args[0]);
}

/**
 * The spec's "create an entry": strings stay strings; a Blob becomes a File named "blob" (or
 * `filename`); a File passed without a filename is kept as the same object.
 */
function createEntry(method: string, args: EntryArgs): Entry {
  requireArguments(method, args.length, 2);
  const [name, value, filename] = args;
  if (!(value instanceof Blob)) {
    if (args.length > 2) throw new TypeError(`FormData.${method}: parameter 2 is not of type 'Blob'`);
    return [toUSVString(name), toUSVString(value)];
  }
  const entryName = toUSVString(name);
  if (value instanceof File && filename === undefined) return [entryName, value];
  const lastModified = value instanceof File ? value.lastModified : undefined;
  const file = new File([value], filename === undefined ? "blob" : toUSVString(filename), {
    type: value.type,
    ...(lastModified === undefined ? {} : { lastModified }),
  });
  return [entryName, file];
}

/**
 * The FormData global. `new FormData(form)` takes an HTML form element, which no isolate has, so
 * any argument is a TypeError (as in Cloudflare Workers and Deno).
 *
 * @example
 * const form = new FormData();
 * form.append("name", "Ada");
 * form.append("avatar", new Blob([png], { type: "image/png" }), "ada.png");
 * await fetch(url, { method: "POST", body: form }); // multipart/form-data with a fresh boundary
 */
export class FormData {
  #entries: Entry[] = [];

  constructor(form?: unknown) {
    if (form !== undefined)
      throw new TypeError("FormData: a form element is not supported here; build the entries with append()");
  }

  append(...args: EntryArgs): void {
    this.#entries.push(createEntry("append", args));
  }

  /** Replaces the first entry named `name` and removes the others, or appends when there is none. */
  set(...args: EntryArgs): void {
    const entry = createEntry("set", args);
    const first = this.#entries.findIndex(([key]) => key === entry[0]);
    if (first === -1) {
      this.#entries.push(entry);
      return;
    }
    this.#entries = this.#entries.filter(([key], i) => i <= first || key !== entry[0]);
    this.#entries[first] = entry;
  }

  delete(...args: [name: string]): void {
    const key = nameArgument("delete", args);
    this.#entries = this.#entries.filter(([entryName]) => entryName !== key);
  }

  get(...args: [name: string]): FormDataEntryValue | null {
    const key = nameArgument("get", args);
    return this.#entries.find(([entryName]) => entryName === key)?.[1] ?? null;
  }

  getAll(...args: [name: string]): FormDataEntryValue[] {
    const key = nameArgument("getAll", args);
    return this.#entries.filter(([entryName]) => entryName === key).map(([, value]) => value);
  }

  has(...args: [name: string]): boolean {
    const key = nameArgument("has", args);
    return this.#entries.some(([entryName]) => entryName === key);
  }

  /**
   * Iteration is live, as WebIDL's pair iterators are: an entry appended or deleted while a loop
   * runs is seen (or skipped) by that loop, because each step reads the list at the next index.
   */
  *entries(): IterableIterator<[string, FormDataEntryValue]> {
    for (let i = 0; i < this.#entries.length; i++) {
      const [name, value] = this.#entries[i] as Entry;
      yield [name, value];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<FormDataEntryValue> {
    for (const [, value] of this.entries()) yield value;
  }

  forEach(callback: (value: FormDataEntryValue, name: string, form: FormData) => void, thisArg?: unknown): void {
    if (typeof callback !== "function") throw new TypeError("FormData.forEach: the callback is not a function");
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
  }

  [Symbol.iterator](): IterableIterator<[string, FormDataEntryValue]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "FormData";
  }
}
