import { dirname, relative, resolve } from "node:path";
import { type BuildOptions, build, type Plugin } from "esbuild";
import ivm from "isolated-vm";
import { modulePath } from "../../protocol/index.ts";
import type { LazyPartName } from "./bootstrap/lazy.ts";

const ENTRY = modulePath("./bootstrap/index.ts", import.meta.url);
const BOOTSTRAP_DIR = dirname(ENTRY);
/** Node's `util`, which object-inspect (console formatting) asks for, does not exist in an isolate. */
const NO_UTIL = modulePath("./bootstrap/no-util.ts", import.meta.url);
const FILENAME = "hearth:bootstrap.js";

/**
 * Parts of the web API most functions never use, kept out of the snapshot every isolate starts from
 * and compiled into an isolate the first time it uses one (bootstrap/lazy.ts): console's rendering of
 * objects, FormData's parser and serializer, crypto.subtle. Measured on this machine kind: 251 KiB
 * less heap in every fresh isolate (2,109 → 1,858 KiB), for 1.3–1.9 ms more on a part's first use
 * (numbers and trade-offs: docs/architecture.md, "Lazy parts of the runtime").
 */
const LAZY_PARTS: Readonly<Record<LazyPartName, string>> = {
  inspect: modulePath("./bootstrap/lazy/inspect.ts", import.meta.url),
  formData: modulePath("./bootstrap/lazy/form-data-codec.ts", import.meta.url),
  subtle: modulePath("./bootstrap/lazy/subtle.ts", import.meta.url),
};

/** What index.ts imports for lazy.ts: the bootstrap modules the lazy parts use, made by buildBootstrap. */
const SHARED_REGISTRY = "hearth:lazy-shared";
/** The parameter through which an evaluated lazy part receives that registry (buildLazyPart). */
const SHARED_PARAMETER = "__hearth_shared";

/** The in-isolate runtime, as source and (when V8 could make one) as a snapshot of it evaluated. */
export interface Bootstrap {
  readonly source: string;
  readonly filename: string;
  /** Null when snapshots are off or creating one failed: isolates then compile the source. */
  readonly snapshot: ivm.ExternalCopy<ArrayBuffer> | null;
  /**
   * Each lazy part as a script that evaluates to a function of the shared registry (lazy.ts). Held
   * as external copies: isolated-vm hands a copy of 1 KiB or more to an isolate as an external string
   * over the same buffer, so the sources take no memory per isolate.
   */
  readonly lazyParts: Readonly<Record<LazyPartName, ivm.ExternalCopy<string>>>;
}

/** The bootstrap's scripts, before any snapshot is made of them. */
export interface BootstrapSources {
  readonly source: string;
  readonly lazyParts: Readonly<Record<LazyPartName, string>>;
}

const COMMON = {
  bundle: true,
  write: false,
  platform: "neutral",
  mainFields: ["module", "main"],
  alias: { util: NO_UTIL },
  target: "es2024",
  minify: true,
  legalComments: "none",
} as const satisfies BuildOptions;

let cachedSources: Promise<BootstrapSources> | undefined;

/**
 * The bootstrap as one classic script plus its lazy parts, built by esbuild on first use (≈200 ms)
 * and kept for the life of the process. Built, not shipped prebuilt, so the source in git is the only
 * truth.
 *
 * A lazy part must share the bootstrap's module instances (one `Blob` class, one `host` bridge, one
 * crypto queue), so it bundles only what the bootstrap lacks: its imports of bootstrap modules become
 * reads of a registry the bootstrap passes in. Three builds: the bootstrap, to learn its modules; the
 * parts, to learn which of those they import; the bootstrap again, with that registry.
 */
export function loadBootstrapSources(): Promise<BootstrapSources> {
  cachedSources ??= buildSources();
  return cachedSources;
}

async function buildSources(): Promise<BootstrapSources> {
  const first = await buildBootstrap([]);
  // Our own modules only. Sharing a library's too was measured: its files then keep every export in
  // the bootstrap (+15 KiB of heap per isolate, to save 23 KB of FormData's code where it is used).
  const inBootstrap = new Set(
    Object.keys(first.metafile.inputs)
      .map((input) => resolve(input))
      .filter((file) => file.startsWith(BOOTSTRAP_DIR)),
  );
  const imported = new Set<string>();
  const lazyParts = {} as Record<LazyPartName, string>;
  for (const [name, entry] of Object.entries(LAZY_PARTS) as Array<[LazyPartName, string]>) {
    if (inBootstrap.has(entry)) throw new Error(`lazy part ${name}: the bootstrap imports ${entry} itself`);
    lazyParts[name] = await buildLazyPart(entry, inBootstrap, imported);
  }
  const { text } = await buildBootstrap([...imported]);
  return { source: text, lazyParts };
}

/** The bootstrap, with lazy.ts's registry holding `shared` (absolute paths of bootstrap modules). */
async function buildBootstrap(shared: readonly string[]): Promise<{ text: string; metafile: { inputs: object } }> {
  const registry: Plugin = {
    name: "hearth-lazy-registry",
    setup(b) {
      b.onResolve({ filter: /^hearth:lazy-shared$/ }, () => ({ path: SHARED_REGISTRY, namespace: "hearth-registry" }));
      b.onLoad({ filter: /.*/, namespace: "hearth-registry" }, () => ({
        contents: `${shared.map((file, i) => `import * as m${i} from ${JSON.stringify(file)};`).join("\n")}
export default { ${shared.map((file, i) => `${JSON.stringify(registryKey(file))}: m${i}`).join(", ")} };`,
        resolveDir: BOOTSTRAP_DIR,
        loader: "js",
      }));
    },
  };
  const result = await build({ ...COMMON, entryPoints: [ENTRY], format: "iife", metafile: true, plugins: [registry] });
  const file = result.outputFiles[0];
  if (!file) throw new Error("esbuild produced no bootstrap output");
  return { text: file.text, metafile: result.metafile };
}

/**
 * A lazy part as a script that evaluates to `function (registry) { return exports }`. Imports of
 * modules in `inBootstrap` read the registry instead of bundling a second copy; `imported`
 * collects them.
 */
async function buildLazyPart(entry: string, inBootstrap: Set<string>, imported: Set<string>): Promise<string> {
  const shareBootstrapModules: Plugin = {
    name: "hearth-lazy-shared",
    setup(b) {
      b.onResolve({ filter: /^\./ }, (args) => {
        const file = resolve(args.resolveDir, args.path);
        if (!inBootstrap.has(file)) return undefined;
        imported.add(file);
        return { path: file, namespace: "hearth-shared" };
      });
      // A CommonJS stub: esbuild reads named imports from it as properties, so they stay live.
      b.onLoad({ filter: /.*/, namespace: "hearth-shared" }, (args) => ({
        contents: `module.exports = ${SHARED_PARAMETER}[${JSON.stringify(registryKey(args.path))}];`,
        loader: "js",
      }));
    },
  };
  const result = await build({
    ...COMMON,
    entryPoints: [entry],
    format: "iife",
    globalName: "__hearth_part",
    plugins: [shareBootstrapModules],
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced no output for ${entry}`);
  return `(function (${SHARED_PARAMETER}) {\n${file.text}return __hearth_part;\n})`;
}

function registryKey(file: string): string {
  return relative(BOOTSTRAP_DIR, file);
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
  const { source, lazyParts } = await loadBootstrapSources();
  let snapshot: ivm.ExternalCopy<ArrayBuffer> | null = null;
  if (options.snapshot !== false) {
    try {
      snapshot = ivm.Isolate.createSnapshot([{ code: source, filename: FILENAME }]);
    } catch (err) {
      options.onFallback?.(err);
    }
  }
  const external = Object.fromEntries(
    Object.entries(lazyParts).map(([name, script]) => [name, new ivm.ExternalCopy(script)]),
  ) as Record<LazyPartName, ivm.ExternalCopy<string>>;
  return { source, filename: FILENAME, snapshot, lazyParts: external };
}
