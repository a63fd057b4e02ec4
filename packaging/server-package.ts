import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type RootManifest, writeManifest } from "./manifest.ts";

const TSCONFIG = join(import.meta.dirname, "tsconfig.server.json");

/**
 * Builds the `hearth-server` package in `outDir`: the server's folders compiled to JavaScript by
 * TypeScript 7 with their layout kept (the paths the server computes at run time, see
 * protocol/module-path.ts, then hold in both forms), with declarations and all the monorepo's
 * dependencies. Type errors are `npm run typecheck`'s business, so the emit does not check.
 */
export async function buildServerPackage(root: string, manifest: RootManifest, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const typescript = createRequire(join(root, "package.json")).resolve("typescript/package.json");
  const tsc = join(dirname(typescript), "bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", TSCONFIG, "--outDir", outDir], { cwd: root, stdio: "inherit" });
  await writeManifest(outDir, {
    name: "hearth-server",
    version: manifest.version,
    description: "Hearth's server: gateway, scheduler, worker (V8 isolates via isolated-vm) and the local dev cluster.",
    type: "module",
    exports: {
      ".": { types: "./sdk/server.d.ts", import: "./sdk/server.js" },
      "./package.json": "./package.json",
    },
    engines: { node: ">=24" },
    dependencies: { ...manifest.dependencies },
  });
}
