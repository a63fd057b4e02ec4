import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ENTRY = fileURLToPath(new URL("./bootstrap/index.ts", import.meta.url));

let cached: Promise<string> | undefined;

/**
 * The bootstrap as one classic script, built by esbuild on first use (≈50 ms) and kept for the
 * life of the process. Built, not shipped prebuilt, so the source in git is the only truth.
 */
export function loadBootstrapSource(): Promise<string> {
  cached ??= build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: "iife",
    platform: "neutral",
    mainFields: ["module", "main"],
    target: "es2024",
    minify: true,
    legalComments: "none",
  }).then((result) => {
    const file = result.outputFiles[0];
    if (!file) throw new Error("esbuild produced no bootstrap output");
    return file.text;
  });
  return cached;
}
