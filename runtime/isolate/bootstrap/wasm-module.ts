/**
 * Compiling and instantiating user Wasm with its memories bounded. Every compile goes through
 * `compileModule`, which rewrites the memories a module defines to a maximum within the free budget
 * (wasm-binary.ts); every instance reserves those maxima up front, so `memory.grow` run by Wasm code
 * fails the Wasm way (-1) at the maximum instead of growing the executor past the function's limit.
 */
import { copyBufferSource, limitMemories } from "./wasm-binary.ts";
import {
  type Account,
  accountOf,
  freePages,
  hold,
  limitText,
  PAGE_BYTES,
  pin,
  release,
  reserve,
} from "./wasm-budget.ts";
import {
  construct,
  create,
  getPrototypeOf,
  natives,
  TYPE_ERROR_PROTOTYPE,
  TypeErrorOf,
  weakGet,
  weakSet,
} from "./wasm-intrinsics.ts";

type Descriptors = ReadonlyArray<{ readonly module?: string; readonly name: string; readonly kind: string }>;

interface ModuleInfo {
  /** What each instance reserves: the maxima of the memories the module defines. */
  readonly reserveBytes: number;
  readonly hasStart: boolean;
  readonly importCount: number;
  /** The module's imports when one is a memory (those are read once and pinned), else null. */
  readonly imports: Descriptors | null;
  /** The module's exports when it defines a memory (an exported memory keeps the reservation). */
  readonly exports: Descriptors | null;
}

const modules = new WeakMap<object, ModuleInfo>();

/**
 * A reservation is returned only when V8 collects the instance, which an idle function may not do for
 * a long time (measured: a module without a maximum instantiated in every request failed from the
 * second request on, in a 64 MB function).
 */
const REUSE_HINT =
  ". Wasm instances not yet garbage-collected still hold their memory: instantiate once, outside fetch(), and reuse the instance";

/** A module compiled here; the only kind V8 may instantiate. */
export function isModule(value: unknown): boolean {
  return weakGet(modules, value) !== undefined;
}

/** `new WebAssembly.Module(source, options)` with the module's memories bounded. */
export function compileModule(source: unknown, options: unknown, newTarget: NewableFunction): WebAssembly.Module {
  const { bytes, length } = copyBufferSource(source);
  const limited = limitMemories(bytes, length, freePages(), `${limitText()}${REUSE_HINT}`);
  const module = construct(natives.Module, [limited.bytes, options], newTarget) as WebAssembly.Module;
  const imports = natives.Module.imports(module) as Descriptors;
  let importsMemory = false;
  for (let i = 0; i < imports.length; i++) if ((imports[i] as Descriptors[0]).kind === "memory") importsMemory = true;
  weakSet(modules, module, {
    reserveBytes: limited.maxPages * PAGE_BYTES,
    hasStart: limited.hasStart,
    importCount: imports.length,
    imports: importsMemory ? imports : null,
    exports: limited.maxPages > 0 ? (natives.Module.exports(module) as Descriptors) : null,
  });
  return module;
}

/**
 * Reads every import once into a fresh object, so the memory pinned here is the memory V8 links,
 * whatever getters the import object has.
 */
function readImports(imports: Descriptors, importObject: object): Record<string, Record<string, unknown>> {
  const sources: Record<string, Record<string, unknown>> = create(null);
  const read: Record<string, Record<string, unknown>> = create(null);
  for (let i = 0; i < imports.length; i++) {
    const { module = "", name } = imports[i] as Descriptors[0];
    let source = sources[module];
    if (source === undefined) {
      source = (importObject as Record<string, Record<string, unknown>>)[module];
      if ((typeof source !== "object" && typeof source !== "function") || source === null) {
        throw new TypeErrorOf(`WebAssembly.Instance(): Import #${i} "${module}": module is not an object or function`);
      }
      sources[module] = source;
      read[module] = create(null);
    }
    (read[module] as Record<string, unknown>)[name] = source[name];
  }
  return read;
}

/** `new WebAssembly.Instance(module, importObject)`, paying for the memories Wasm code can grow. */
export function instantiateModule(
  module: unknown,
  importObject: unknown,
  newTarget: NewableFunction,
): WebAssembly.Instance {
  const info = weakGet(modules, module);
  if (!info) throw new TypeErrorOf("WebAssembly.Instance(): Argument 0 must be a WebAssembly.Module");
  // Checked here, not left to V8, so that this failure never counts as one that may have made memories.
  const importsGiven =
    (typeof importObject === "object" || typeof importObject === "function") && importObject !== null;
  if (importObject !== undefined ? !importsGiven : info.importCount > 0) {
    throw new TypeErrorOf("WebAssembly.Instance(): Imports argument must be present and must be an object");
  }
  const imports = info.imports ? readImports(info.imports, importObject as object) : importObject;
  reserve(info.reserveBytes, "WebAssembly.Instance()", REUSE_HINT);
  try {
    for (let i = 0; info.imports && i < info.imports.length; i++) {
      const { module = "", name, kind } = info.imports[i] as Descriptors[0];
      const account =
        kind === "memory" ? accountOf((imports as Record<string, Record<string, unknown>>)[module]?.[name]) : undefined;
      if (account) pin(account, `WebAssembly.Instance(): imported memory "${module}.${name}"`);
    }
  } catch (err) {
    release(info.reserveBytes);
    throw err;
  }
  let instance: WebAssembly.Instance;
  try {
    instance = construct(natives.Instance, [module, imports], newTarget) as WebAssembly.Instance;
  } catch (err) {
    // Linking fails before V8 makes the memories. Anything later (a trapping start function, a data
    // segment out of bounds after element segments wrote this instance's functions into an imported
    // table) may leave the instance reachable, so its reservation stays for the life of the isolate.
    const proto = typeof err === "object" && err !== null ? getPrototypeOf(err) : null;
    if (
      !info.hasStart &&
      newTarget === natives.Instance &&
      (proto === natives.linkErrorPrototype || proto === TYPE_ERROR_PROTOTYPE)
    ) {
      release(info.reserveBytes);
    }
    throw err;
  }
  if (info.reserveBytes > 0) keepReservation(instance, info);
  return instance;
}

/**
 * Returns the reservation when the instance and every memory it exports are collected: an exported
 * memory outlives its instance when function code keeps only it (measured), and its ArrayBuffer keeps
 * the memory (measured: V8 links the two). A memory the module imported keeps its own account.
 */
function keepReservation(instance: WebAssembly.Instance, info: ModuleInfo): void {
  const account: Account = { bytes: info.reserveBytes, maxBytes: info.reserveBytes, pinned: true, holders: 0 };
  hold(account, instance, false);
  const exports = natives.exportsOf(instance) as Record<string, unknown>;
  for (let i = 0; info.exports && i < info.exports.length; i++) {
    const { name, kind } = info.exports[i] as Descriptors[0];
    const memory = exports[name] as object;
    if (kind === "memory" && !accountOf(memory)) hold(account, memory, true);
  }
}
