import type { TraceMap } from "@jridgewell/trace-mapping";
import { type BuildFailure, build, stop, transform } from "esbuild";
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
    const result = await restartingBundler(filename, () =>
      build({
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
      }),
    );
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
  const script = await restartingBundler(filename, () =>
    transform(esm, {
      format: "iife",
      globalName: MODULE_GLOBAL,
      target: "es2024",
      ...(mapped ? { sourcemap: "external", sourcefile: ESM_FILE } : {}),
    }),
  );
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

/** What esbuild's API says once its service process has died, for the call in flight and every later one. */
const BUNDLER_GONE = /^The service (was stopped|is no longer running)/;

/**
 * Runs an esbuild call; when esbuild's service process died under it, stops the dead service so the
 * next call starts a fresh one, and refuses this deploy. Measured: esbuild's parser recurses per
 * nesting level, and a 2 MB upload of a million nested brackets overflowed its 1 GB Go stack in
 * about a second; until this, every later deploy through that gateway failed with "The service is no
 * longer running".
 */
async function restartingBundler<T>(filename: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!BUNDLER_GONE.test((err as Error)?.message ?? "")) throw err;
    await stop();
    throw new HearthError(
      "ERR_INVALID_BUNDLE",
      `${filename}: the bundler stopped while preparing this deploy (it does on code nested deeper than it can parse, such as a million nested brackets) and has been restarted; if deploying again fails the same way, the code is the cause`,
      { cause: err },
    );
  }
}
