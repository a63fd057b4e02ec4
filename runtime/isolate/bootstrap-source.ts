import { build } from "esbuild";
import ivm from "isolated-vm";
import { modulePath } from "../../protocol/index.ts";

const ENTRY = modulePath("./bootstrap/index.ts", import.meta.url);
/** Node's `util`, which object-inspect (console formatting) asks for, does not exist in an isolate. */
const NO_UTIL = modulePath("./bootstrap/no-util.ts", import.meta.url);
const FILENAME = "hearth:bootstrap.js";

/** The in-isolate runtime, as source and (when V8 could make one) as a snapshot of it evaluated. */
export interface Bootstrap {
  readonly source: string;
  readonly filename: string;
  /** Null when snapshots are off or creating one failed: isolates then compile the source. */
  readonly snapshot: ivm.ExternalCopy<ArrayBuffer> | null;
}

let cachedSource: Promise<string> | undefined;

/**
 * The bootstrap as one classic script, built by esbuild on first use (≈50 ms) and kept for the
 * life of the process. Built, not shipped prebuilt, so the source in git is the only truth.
 */
export function loadBootstrapSource(): Promise<string> {
  cachedSource ??= build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: "iife",
    platform: "neutral",
    mainFields: ["module", "main"],
    alias: { util: NO_UTIL },
    target: "es2024",
    minify: true,
    legalComments: "none",
  }).then((result) => {
    const file = result.outputFiles[0];
    if (!file) throw new Error("esbuild produced no bootstrap output");
    return file.text;
  });
  return cachedSource;
}

/**
 * Builds the bootstrap and, unless `snapshot` is false, a V8 snapshot with it already evaluated:
 * measured on this machine kind (isolated-vm 7.0.1): isolate + context from a snapshot at 4.4 ms against 19–27 ms
 * for compiling and running a bootstrap of this size. isolated-vm's README calls createSnapshot
 * "never all that stable", so a failure here is not fatal: `onFallback` hears why, and isolates
 * compile the source with cached data instead.
 */
export async function loadBootstrap(
  options: { snapshot?: boolean; onFallback?: (err: unknown) => void } = {},
): Promise<Bootstrap> {
  const source = await loadBootstrapSource();
  let snapshot: ivm.ExternalCopy<ArrayBuffer> | null = null;
  if (options.snapshot !== false) {
    try {
      snapshot = ivm.Isolate.createSnapshot([{ code: source, filename: FILENAME }]);
    } catch (err) {
      options.onFallback?.(err);
    }
  }
  return { source, filename: FILENAME, snapshot };
}
