import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { join } from "node:path";

/** The fields of the monorepo's package.json the packages are made from. */
export interface RootManifest {
  readonly version: string;
  readonly description: string;
  readonly dependencies: Readonly<Record<string, string>>;
}

/** A packaging step that cannot go on: what is wrong and how to fix it. */
export class PackagingError extends Error {
  readonly code = "ERR_PACKAGING";
  constructor(message: string) {
    super(message);
    this.name = "PackagingError";
  }
}

export function readRootManifest(root: string): RootManifest {
  return JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as RootManifest;
}

const BUILTINS = new Set(builtinModules);

/** Server-side packages: a `hearth-sdk` that imported one would drag the native build and NATS into every project. */
export const SERVER_ONLY_PACKAGES: readonly string[] = ["isolated-vm", "pino", "prom-client", "amqplib", "mqtt"];

export function isServerOnly(name: string): boolean {
  return SERVER_ONLY_PACKAGES.includes(name) || name.startsWith("@nats-io/");
}

/** `"@nats-io/kv/lib/x"` → `"@nats-io/kv"`, `"undici"` → `"undici"`; undefined for Node built-ins. */
export function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith("node:") || BUILTINS.has(specifier.split("/")[0] ?? "")) return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** The module specifiers in emitted JavaScript or declarations: static imports, re-exports, `import("x")`. */
export function importedSpecifiers(code: string): string[] {
  const pattern = /^\s*(?:import|export)\s[^;]*?from\s*"([^"]+)"|^\s*import\s*"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/gm;
  return [...code.matchAll(pattern)].map((m) => m[1] ?? m[2] ?? m[3] ?? "");
}

/** The root's version ranges of `names`, sorted; a name the root does not depend on is an error. */
export function pickDependencies(root: RootManifest, names: Iterable<string>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of [...new Set(names)].sort()) {
    const range = root.dependencies[name];
    if (!range) throw new PackagingError(`"${name}" is imported but not in package.json's dependencies: npm i ${name}`);
    picked[name] = range;
  }
  return picked;
}

export async function writeManifest(dir: string, manifest: object): Promise<void> {
  await writeFile(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}
