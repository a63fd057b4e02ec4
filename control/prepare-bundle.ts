import type { TraceMap } from "@jridgewell/trace-mapping";
import { type BuildFailure, build, transform } from "esbuild";
import { formatBuildErrors, HearthError } from "../protocol/index.ts";
import { composeSourceMaps } from "./source-map.ts";

/** The global the classic-script bundle assigns its module namespace to (read by the bootstrap). */
const MODULE_GLOBAL = "__hearth_module";

/**
 * Turns an uploaded single-file ES module into the classic script workers run. Validates on the way:
 * it must parse, import nothing, and have a default export. Scripts, not modules, because
 * isolated-vm 7 ignores cached compile data for modules (checked with isolated-vm 7.0.1: `cachedDataRejected`).
 *
 * @throws HearthError ERR_INVALID_BUNDLE with esbuild's message and file:line:column
 */
export async function prepareBundle(source: string, filename: string): Promise<string> {
  return (await prepareBundleWithMap(source, filename)).script;
}

/** A prepared script, and its source map back to the original sources when the upload had one. */
export interface PreparedBundle {
  readonly script: string;
  readonly sourceMap?: string;
}

/** The output name esbuild maps from; the step's map has it as its one source. */
const ESM_FILE = "prepared.esm.js";

/**
 * {@link prepareBundle}, and when the deploy sent `sourceMap` (validated, of `source`): the map of
 * the script back to the original sources, through the two esbuild steps here (composed with
 * @jridgewell/remapping). Without one no map is made, so a deploy without a map pays nothing.
 */
export async function prepareBundleWithMap(
  source: string,
  filename: string,
  sourceMap?: TraceMap,
): Promise<PreparedBundle> {
  const mapped = sourceMap !== undefined;
  let esm: string;
  let esmMap: string | undefined;
  try {
    const result = await build({
      stdin: {
        contents: mapped ? withoutMapComments(source) : source,
        sourcefile: filename,
        loader: /\.tsx?$/.test(filename) ? "ts" : "js",
      },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2024",
      metafile: true,
      logLevel: "silent",
      ...(mapped ? { sourcemap: "external", sourcesContent: false, outfile: ESM_FILE } : {}),
      plugins: [
        {
          name: "no-imports",
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) => ({
              errors: [
                {
                  text: `Import of "${args.path}" is not allowed: deploy a single bundled file (hearth deploy bundles for you)`,
                },
              ],
            }));
          },
        },
      ],
    });
    const output = Object.entries(result.metafile.outputs).find(([path]) => !path.endsWith(".map"))?.[1];
    if (!output?.exports.includes("default")) {
      throw new HearthError(
        "ERR_INVALID_BUNDLE",
        `${filename}: no default export; write \`export default { fetch(request, env, ctx) { ... } }\``,
      );
    }
    esm = result.outputFiles.find((f) => !f.path.endsWith(".map"))?.text ?? "";
    esmMap = result.outputFiles.find((f) => f.path.endsWith(".map"))?.text;
  } catch (err) {
    if (err instanceof HearthError) throw err;
    throw new HearthError("ERR_INVALID_BUNDLE", formatBuildErrors(err as BuildFailure), { cause: err });
  }
  const script = await transform(esm, {
    format: "iife",
    globalName: MODULE_GLOBAL,
    target: "es2024",
    ...(mapped ? { sourcemap: "external", sourcefile: ESM_FILE } : {}),
  });
  if (!mapped || esmMap === undefined) return { script: script.code };
  try {
    return { script: script.code, sourceMap: composeSourceMaps([script.map, esmMap, sourceMap]) };
  } catch (err) {
    throw new HearthError("ERR_INVALID_SOURCE_MAP", `sourceMap cannot be applied: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** A `//# sourceMappingURL=` comment in the upload. */
const MAP_COMMENT = /^\/\/[#@]\s*sourceMappingURL=.*$/gm;

/**
 * With source maps on, esbuild follows a `sourceMappingURL` comment of its input (a data URL, or a
 * path it would read from this machine's disk): the deploy's own map is the one to compose, so the
 * comments are blanked, keeping every other position.
 */
function withoutMapComments(source: string): string {
  return source.replace(MAP_COMMENT, "//");
}
