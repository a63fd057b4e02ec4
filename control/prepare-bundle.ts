import { type BuildFailure, build, transform } from "esbuild";
import { formatBuildErrors, HearthError } from "../protocol/index.ts";

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
  let esm: string;
  try {
    const result = await build({
      stdin: { contents: source, sourcefile: filename, loader: /\.tsx?$/.test(filename) ? "ts" : "js" },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2024",
      metafile: true,
      logLevel: "silent",
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
    const output = Object.values(result.metafile.outputs)[0];
    if (!output?.exports.includes("default")) {
      throw new HearthError(
        "ERR_INVALID_BUNDLE",
        `${filename}: no default export; write \`export default { fetch(request, env, ctx) { ... } }\``,
      );
    }
    esm = result.outputFiles[0]?.text ?? "";
  } catch (err) {
    if (err instanceof HearthError) throw err;
    throw new HearthError("ERR_INVALID_BUNDLE", formatBuildErrors(err as BuildFailure), { cause: err });
  }
  const script = await transform(esm, { format: "iife", globalName: MODULE_GLOBAL, target: "es2024" });
  return script.code;
}
