import { builtinModules } from "node:module";
import { basename, extname, join } from "node:path";
import { type BuildFailure, build, type Plugin } from "esbuild";
import { formatBuildErrors } from "../protocol/index.ts";

/** A function bundle ready to upload. */
export interface Bundle {
  readonly code: string;
  /** Shown in server-side errors. */
  readonly filename: string;
  /**
   * The external source map of `code` (JSON, version 3), sources relative to the project folder and
   * their text included (`sourcesContent`), so a deployed version's stacks name `src/x.ts:line:col`.
   */
  readonly sourceMap: string;
}

/** A bundling failure, already worded for a person: what, where (file:line:column), how to fix. */
export class BundleError extends Error {
  readonly code = "ERR_BUNDLE";
  constructor(message: string) {
    super(message);
    this.name = "BundleError";
  }
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Node built-ins do not exist in an isolate: fail at build time, naming the import. */
const rejectNodeBuiltins: Plugin = {
  name: "hearth-no-node-builtins",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (!NODE_BUILTINS.has(args.path) && !args.path.startsWith("node:")) return undefined;
      return {
        errors: [
          {
            text: `"${args.path}" is a Node.js built-in module; Hearth functions run in V8 isolates with web APIs only (fetch, Request, Response, URL, TextEncoder, ...)`,
          },
        ],
      };
    });
  },
};

/**
 * Bundles a function entry file and its npm imports into one ES module with esbuild, resolving
 * packages the way Workers tooling does (worker/browser conditions, no Node built-ins), and its
 * source map, with paths relative to `projectDir` (the current folder by default).
 *
 * @throws BundleError with esbuild's messages as `file:line:column: text`
 */
export async function buildBundle(entry: string, projectDir: string = process.cwd()): Promise<Bundle> {
  // Never written: the output path only decides what the map's source paths are relative to.
  const outfile = join(projectDir, `${basename(entry, extname(entry))}.bundle.js`);
  try {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2024",
      mainFields: ["module", "main"],
      conditions: ["workerd", "worker", "browser"],
      logLevel: "silent",
      plugins: [rejectNodeBuiltins],
      absWorkingDir: projectDir,
      outfile,
      sourcemap: "external",
      sourcesContent: true,
    });
    const output = result.outputFiles.find((file) => file.path === outfile);
    const map = result.outputFiles.find((file) => file.path === `${outfile}.map`);
    if (!output || !map) throw new BundleError(`esbuild produced no output for ${entry}`);
    return { code: output.text, filename: basename(entry), sourceMap: map.text };
  } catch (err) {
    if (err instanceof BundleError) throw err;
    const failure = err as BuildFailure;
    if (!failure.errors) throw err;
    throw new BundleError(`Could not bundle ${entry}:\n  ${formatBuildErrors(failure).replaceAll("\n", "\n  ")}`);
  }
}
