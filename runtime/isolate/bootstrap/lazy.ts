import { host } from "./host.ts";

/** The parts bootstrap-source.ts builds apart from the bootstrap (its LAZY_PARTS). */
export type LazyPartName = "inspect" | "formData" | "subtle";

// Captured while the bootstrap runs, before function code can replace the global. Called through a
// variable, so an indirect eval: the part's script sees only the global scope. The script is the
// host's (built from this repository), never the function's.
// biome-ignore lint/security/noGlobalEval: compiling the runtime's own lazy parts is the point.
const evaluate = globalThis.eval;

/** The bootstrap modules the lazy parts import, by path; index.ts passes them in (shareWithLazyParts). */
let shared: Readonly<Record<string, object>> = {};

/**
 * Called once by index.ts with the registry bootstrap-source.ts generates. Not imported here, so that
 * Node can import the bootstrap's modules for their constants without knowing the build's virtual module.
 */
export function shareWithLazyParts(modules: Readonly<Record<string, object>>): void {
  shared = modules;
}

/**
 * A part of the runtime that is not in the snapshot, compiled into this isolate the first time it is
 * asked for: its script comes from the host (bootstrap-source.ts built it) and evaluates to a
 * function of `shared`, the bootstrap's own modules the part imports, so both use the same `Blob`,
 * the same host bridge and the same queues.
 *
 * @example
 * const formData = lazyPart<typeof import("./lazy/form-data-codec.ts")>("formData");
 * formData().parseFormData(bytes, contentType);
 */
export function lazyPart<T>(name: LazyPartName): () => T {
  let part: T | undefined;
  return () => {
    part ??= (evaluate(host.lazySource(name)) as (modules: typeof shared) => T)(shared);
    return part;
  };
}
