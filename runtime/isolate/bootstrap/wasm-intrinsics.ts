/**
 * The built-ins the WebAssembly limits use, taken when the bootstrap evaluates, before any function
 * code runs. Function code may replace `Math.min`, `WeakMap.prototype.get`, `Uint8Array.prototype.set`
 * or the `length` getter of typed arrays; the accounting must never call what it replaced, or a
 * function could make a reservation come out as zero or show the parser other bytes than V8 compiles.
 * So nothing in the wasm-* files calls a method or reads a global at run time except through here.
 */
const { apply, construct } = Reflect;
const { create, defineProperty, getOwnPropertyDescriptor, getPrototypeOf } = Object;

/** `method` as a function of `self`: calling it looks nothing up, so later changes to built-ins do not reach it. */
function uncurry<T, A extends unknown[], R>(method: (this: T, ...args: A) => R): (self: T, ...args: A) => R {
  return (self, ...args) => apply(method, self, args);
}

function getter<T>(prototype: object, key: string): (self: T) => number {
  return uncurry((getOwnPropertyDescriptor(prototype, key) as PropertyDescriptor).get as (this: T) => number);
}

const TypedArray = getPrototypeOf(Uint8Array.prototype) as Uint8Array;

export { construct, create, defineProperty, getPrototypeOf };
export const { max, min } = Math;
export const U8 = Uint8Array;
export const Bytes = ArrayBuffer;
export const PromiseOf = Promise;
export const RangeErrorOf = RangeError;
export const TypeErrorOf = TypeError;
export const isView = ArrayBuffer.isView;
/** `target.set(source, offset)` for typed arrays: copies without species or iterator look-ups. */
export const setBytes = uncurry(TypedArray.set) as (target: Uint8Array, source: Uint8Array, offset?: number) => void;
export const typedArrayBuffer = getter(TypedArray, "buffer") as unknown as (view: ArrayBufferView) => ArrayBufferLike;
export const typedArrayOffset = getter<ArrayBufferView>(TypedArray, "byteOffset");
export const typedArrayLength = getter<ArrayBufferView>(TypedArray, "byteLength");
export const dataViewBuffer = getter(DataView.prototype, "buffer") as unknown as (view: DataView) => ArrayBufferLike;
export const dataViewOffset = getter<DataView>(DataView.prototype, "byteOffset");
export const dataViewLength = getter<DataView>(DataView.prototype, "byteLength");
export const bufferLength = getter<ArrayBuffer>(ArrayBuffer.prototype, "byteLength");
export const weakGet = uncurry(WeakMap.prototype.get) as <V>(map: WeakMap<object, V>, key: unknown) => V | undefined;
export const weakSet = uncurry(WeakMap.prototype.set) as <V>(map: WeakMap<object, V>, key: object, value: V) => void;
export const register = uncurry(FinalizationRegistry.prototype.register) as <V>(
  registry: FinalizationRegistry<V>,
  target: object,
  held: V,
) => void;

type InstanceExports = (instance: WebAssembly.Instance) => WebAssembly.Exports;

/**
 * The engine's WebAssembly API; only the wasm-* files may hold these. Taken by `takeWasmNatives()`
 * when the isolate connects, still before function code: the V8 snapshot of the bootstrap is made in
 * a context that has no `WebAssembly` (nor `SharedArrayBuffer`).
 */
export const natives = {} as {
  Module: typeof WebAssembly.Module;
  Instance: typeof WebAssembly.Instance;
  Memory: typeof WebAssembly.Memory;
  CompileError: typeof WebAssembly.CompileError;
  grow: (memory: WebAssembly.Memory, delta: number) => number;
  exportsOf: InstanceExports;
  linkErrorPrototype: object;
  /** SharedArrayBuffer is not in the snapshot's context either, and may be off. */
  sharedBufferLength: (buffer: SharedArrayBuffer) => number;
};

/** Fills `natives`; a second call keeps the first, which were taken before any wrapper was installed. */
export function takeWasmNatives(): void {
  if (natives.Module) return;
  const { Module, Instance, Memory, CompileError, LinkError } = WebAssembly;
  const exportsGetter = (getOwnPropertyDescriptor(Instance.prototype, "exports") as PropertyDescriptor).get;
  natives.Module = Module;
  natives.Instance = Instance;
  natives.Memory = Memory;
  natives.CompileError = CompileError;
  natives.grow = uncurry(Memory.prototype.grow);
  natives.exportsOf = uncurry(exportsGetter as (this: WebAssembly.Instance) => WebAssembly.Exports);
  natives.linkErrorPrototype = LinkError.prototype;
  natives.sharedBufferLength =
    typeof SharedArrayBuffer === "function"
      ? getter<SharedArrayBuffer>(SharedArrayBuffer.prototype, "byteLength")
      : () => {
          throw new TypeErrorOf("not a SharedArrayBuffer");
        };
}

export const TYPE_ERROR_PROTOTYPE = TypeError.prototype;
