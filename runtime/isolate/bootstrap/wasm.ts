/**
 * Counts WebAssembly memory against the function's memory limit. V8 does not count it (measured: a
 * 256 MB WebAssembly.Memory in a 16 MB isolate was allowed and grew the process RSS by 256 MB, and a
 * module declaring its own memory grew an executor by 1 GB). The engine's constructors are
 * replaced by wrappers that draw on one budget (wasm-budget.ts), and the natives stay reachable only
 * from the wasm-* files: not through `memory.constructor`, `module.constructor` or a prototype.
 *
 * - `new WebAssembly.Memory` reserves its initial size and gets a maximum within the budget;
 *   `memory.grow()` from JavaScript reserves what it adds.
 * - Every compile (`new WebAssembly.Module`, `compile`, `instantiate` from bytes) rewrites the
 *   memories a module defines to a maximum within the free budget, and refuses one whose initial
 *   size alone does not fit (wasm-module.ts).
 * - Every instance reserves its defined memories' maxima, and the rest of any imported memory's
 *   maximum, because Wasm code grows them without asking JavaScript.
 */
import { accountOf, freePages, hold, MAX_PAGES, PAGE_BYTES, release, reserve, setWasmLimit } from "./wasm-budget.ts";
import {
  construct,
  defineProperty,
  max,
  min,
  natives,
  PromiseOf,
  TypeErrorOf,
  takeWasmNatives,
} from "./wasm-intrinsics.ts";
import { compileModule, instantiateModule, isModule } from "./wasm-module.ts";

const whole = (n: number) => (n >= 0 && n <= MAX_PAGES ? n - (n % 1) : 0);

/**
 * `new WebAssembly.Memory(descriptor)`. Each field is read once and passed on as a number: a getter
 * must not show one size to the budget and another to V8.
 */
function createMemory(descriptor: unknown, newTarget: NewableFunction): WebAssembly.Memory {
  if ((typeof descriptor !== "object" && typeof descriptor !== "function") || descriptor === null) {
    throw new TypeErrorOf("WebAssembly.Memory(): Argument 0 must be a memory descriptor");
  }
  const fields = descriptor as Record<string, unknown>;
  const address = fields.address;
  if (address !== undefined && address !== "i32") {
    throw new TypeErrorOf('WebAssembly.Memory(): memory64 (address "i64") is not available to Hearth functions');
  }
  const initial = +(fields.initial as number);
  const rawMaximum = fields.maximum;
  const declared = rawMaximum === undefined ? MAX_PAGES : +(rawMaximum as number);
  const shared = !!fields.shared;
  const free = freePages();
  const bytes = whole(initial) * PAGE_BYTES;
  reserve(bytes, "WebAssembly.Memory()");
  let memory: WebAssembly.Memory;
  try {
    // V8 itself refuses a shared memory without a maximum; the budget must not supply one.
    const maximum = shared && rawMaximum === undefined ? undefined : min(declared, free);
    memory = construct(natives.Memory, [{ initial, maximum, shared }], newTarget) as WebAssembly.Memory;
  } catch (err) {
    release(bytes);
    throw err;
  }
  const maxBytes = max(whole(min(declared, free)) * PAGE_BYTES, bytes);
  hold({ bytes, maxBytes, pinned: false, holders: 0 }, memory, true);
  return memory;
}

/** `memory.grow(delta)` from JavaScript: reserves what it adds, unless the whole maximum is already paid for. */
function growMemory(memory: WebAssembly.Memory, delta: unknown): number {
  const pages = +(delta as number);
  const account = accountOf(memory);
  if (!account || account.pinned) return natives.grow(memory, pages);
  const bytes = whole(pages) * PAGE_BYTES;
  reserve(bytes, "WebAssembly.Memory.grow()");
  try {
    const previous = natives.grow(memory, pages);
    account.bytes += bytes;
    return previous;
  } catch (err) {
    release(bytes);
    throw err;
  }
}

/** What V8 constructs: the native itself for `new WebAssembly.X`, a subclass as it is. */
const targetOf = (newTarget: unknown, wrapper: unknown, native: NewableFunction) =>
  (newTarget === wrapper ? native : newTarget) as NewableFunction;

/** Named by their keys, which minifying leaves alone; constructors, as the natives are. */
const wrappers = {
  Memory: function (this: unknown, descriptor: unknown) {
    if (!new.target) throw new TypeErrorOf("WebAssembly.Memory must be invoked with 'new'");
    return createMemory(descriptor, targetOf(new.target, wrappers.Memory, natives.Memory));
  },
  Module: function (this: unknown, bytes: unknown, options?: unknown) {
    if (!new.target) throw new TypeErrorOf("WebAssembly.Module must be invoked with 'new'");
    return compileModule(bytes, options, targetOf(new.target, wrappers.Module, natives.Module));
  },
  Instance: function (this: unknown, module: unknown, importObject?: unknown) {
    if (!new.target) throw new TypeErrorOf("WebAssembly.Instance must be invoked with 'new'");
    return instantiateModule(module, importObject, targetOf(new.target, wrappers.Instance, natives.Instance));
  },
  grow: function (this: WebAssembly.Memory, delta: unknown) {
    return growMemory(this, delta);
  },
  // Compiled synchronously, on the isolate's own thread: its CPU is then the function's, metered
  // like the rest of its code, instead of V8's background compile threads'.
  compile: (bytes: unknown, options?: unknown): Promise<WebAssembly.Module> =>
    new PromiseOf((resolve) => resolve(compileModule(bytes, options, natives.Module))),
  instantiate: (source: unknown, importObject?: unknown, options?: unknown) =>
    new PromiseOf((resolve) => {
      if (isModule(source)) return resolve(instantiateModule(source, importObject, natives.Instance));
      const module = compileModule(source, options, natives.Module);
      resolve({ module, instance: instantiateModule(module, importObject, natives.Instance) });
    }),
};

function replace(target: object, key: string, value: unknown): void {
  defineProperty(target, key, { value, writable: true, configurable: true, enumerable: false });
}

/** Installs the accounting; `limitBytes` is the isolate's memory limit. Called once, before function code runs. */
export function limitWasmMemory(limitBytes: number): void {
  takeWasmNatives();
  setWasmLimit(limitBytes);
  const { Memory: NativeMemory, Module: NativeModule, Instance: NativeInstance } = natives;
  const pairs: Array<[object, { prototype: object; name: string }]> = [
    [wrappers.Memory, NativeMemory],
    [wrappers.Module, NativeModule],
    [wrappers.Instance, NativeInstance],
  ];
  for (const [wrapper, native] of pairs) {
    defineProperty(wrapper, "prototype", { value: native.prototype, writable: false });
    // Else `new memory.constructor(...)` would reach the native, unaccounted constructor.
    replace(native.prototype, "constructor", wrapper);
    replace(WebAssembly, native.name, wrapper);
  }
  for (const key of ["imports", "exports", "customSections"] as const) replace(wrappers.Module, key, NativeModule[key]);
  replace(NativeMemory.prototype, "grow", wrappers.grow);
  // A resizable buffer's resize() grows the memory inside V8, past the wrapper (V8 does not ship it yet).
  delete (NativeMemory.prototype as { toResizableBuffer?: unknown }).toResizableBuffer;
  replace(WebAssembly, "compile", wrappers.compile);
  replace(WebAssembly, "instantiate", wrappers.instantiate);
  // Streaming would hand V8 a Response to compile unseen; V8 here has no embedder hook for it, but a future one must not pass.
  for (const key of ["compileStreaming", "instantiateStreaming"]) delete (WebAssembly as Record<string, unknown>)[key];
}
