import { mkdir } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { type OutputChunk, type Plugin, rolldown } from "rolldown";
import { dts } from "rolldown-plugin-dts";
import {
  importedSpecifiers,
  isServerOnly,
  PackagingError,
  packageNameOf,
  pickDependencies,
  type RootManifest,
  writeManifest,
} from "./manifest.ts";

/** Where the server lives once published: the CLI's loadServer() imports it by this name. */
const SERVER_PACKAGE = "hearth-server";

/** sdk/server-loader.ts imports "./server.ts" from source; the package imports hearth-server instead. */
const serverAsPackage: Plugin = {
  name: "hearth-server-as-package",
  resolveId(source, importer) {
    return source === "./server.ts" && importer?.endsWith("server-loader.ts")
      ? { id: SERVER_PACKAGE, external: true }
      : null;
  },
};

/** stdout is pack.ts's report; the plugin's notes ("Emit types with typescript@7") are dropped, its warnings kept. */
const QUIET_ON_SUCCESS = { info: () => {}, warn: console.warn, error: console.error };

/** Bare specifiers (npm packages, node: built-ins) stay imports; our sources are bundled. */
function isPackage(id: string): boolean {
  return !id.startsWith(".") && !isAbsolute(id);
}

/** The npm packages among module ids, less hearth-server. */
function importedPackages(ids: readonly string[]): Set<string> {
  const names = ids.map((id) => (isPackage(id) ? packageNameOf(id) : undefined));
  return new Set(names.filter((name): name is string => name !== undefined && name !== SERVER_PACKAGE));
}

/**
 * What a chunk imports: the ids rolldown lists that an import statement in its code names. Either
 * alone is wrong: rolldown's list keeps imports tree-shaking dropped (the protocol barrel's NATS), and
 * the code's text holds import lines inside strings (`hearth init`'s templates).
 */
function emittedImports(chunk: OutputChunk): string[] {
  const inCode = new Set(importedSpecifiers(chunk.code));
  return [...chunk.imports, ...chunk.dynamicImports].filter((id) => inCode.has(id));
}

/**
 * Builds the `hearth-sdk` package in `outDir`: the CLI and the SDK as ES modules for Node 20 (rolldown;
 * npm packages left external and listed as dependencies) and one bundled declaration file
 * (rolldown-plugin-dts over TypeScript 7's declaration emit).
 *
 * @throws PackagingError when the client imports a server-only package, or its declarations a package
 *   it does not depend on
 */
export async function buildClientPackage(root: string, manifest: RootManifest, outDir: string): Promise<void> {
  const dist = join(outDir, "dist");
  await mkdir(dist, { recursive: true });
  const bundle = await rolldown({
    cwd: root,
    input: { cli: join(root, "sdk/cli/main.ts"), index: join(root, "sdk/public.ts") },
    platform: "node",
    external: isPackage,
    // A module none of whose exports the client uses goes whole, and so does an import of a package
    // none of whose bindings is used: the protocol barrel then brings the constants the client reads,
    // not the NATS imports beside them. (esbuild keeps every import of an included module.)
    treeshake: { moduleSideEffects: false },
    transform: { target: "node20" },
    logLevel: "warn",
    plugins: [serverAsPackage],
  });
  const { output } = await bundle.write({ dir: dist, format: "es" });
  await bundle.close();
  const packages = importedPackages(output.flatMap((chunk) => (chunk.type === "chunk" ? emittedImports(chunk) : [])));
  const serverOnly = [...packages].filter(isServerOnly);
  if (serverOnly.length > 0) {
    throw new PackagingError(
      `the client imports server-only packages: ${serverOnly.join(", ")}; reach the server through sdk/server-loader.ts`,
    );
  }
  // A type import of a package `hearth-sdk` does not depend on fails in every consumer that checks libraries.
  const typePackages = await buildDeclarations(root, dist);
  const undeclared = [...typePackages].filter((name) => !packages.has(name));
  if (undeclared.length > 0) {
    throw new PackagingError(
      `index.d.ts imports ${undeclared.join(", ")}, which the hearth-sdk package does not depend on`,
    );
  }
  await writeManifest(outDir, {
    name: "hearth-sdk",
    version: manifest.version,
    description: "Hearth's CLI and SDK: deploy functions to a Hearth cluster; handler types for function authors.",
    type: "module",
    bin: { hearth: "./dist/cli.js" },
    exports: {
      ".": { types: "./dist/index.d.ts", import: "./dist/index.js" },
      "./package.json": "./package.json",
    },
    types: "./dist/index.d.ts",
    engines: { node: ">=20" },
    dependencies: pickDependencies(manifest, packages),
  });
}

/**
 * One index.d.ts: the types public.ts reaches, inlined, so none of the server's modules come along.
 * Returns the packages it still imports.
 */
async function buildDeclarations(root: string, dist: string): Promise<Set<string>> {
  const bundle = await rolldown({
    cwd: root,
    input: { index: join(root, "sdk/public.ts") },
    // Every bare specifier stays an import; tree-shaking then drops those of server packages no kept type uses.
    external: isPackage,
    treeshake: { moduleSideEffects: false },
    logLevel: "warn",
    checks: { pluginTimings: false },
    plugins: [dts({ emitDtsOnly: true, tsconfig: join(root, "tsconfig.json"), logger: QUIET_ON_SUCCESS })],
  });
  const { output } = await bundle.write({ dir: dist, format: "es" });
  await bundle.close();
  const declarations = output.find((chunk) => chunk.fileName === "index.d.ts");
  if (declarations?.type !== "chunk") throw new PackagingError("rolldown-plugin-dts emitted no index.d.ts");
  return importedPackages(importedSpecifiers(declarations.code));
}
