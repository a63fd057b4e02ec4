#!/usr/bin/env node
/**
 * `npm run pack [-- --out DIR]`: builds the two published packages from the monorepo's sources and
 * packs each into a tarball in DIR (default dist/):
 * - `hearth-sdk`: the CLI and SDK, JavaScript for Node 20+, no native build, no server dependencies;
 * - `hearth-server`: gateway, scheduler, worker and the dev cluster, compiled for Node 24+.
 * Prints one JSON line per package: { name, dir, tarball, bytes }.
 */
import { execFileSync } from "node:child_process";
import { mkdir, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildClientPackage } from "./client-package.ts";
import { readRootManifest } from "./manifest.ts";
import { buildServerPackage } from "./server-package.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { out: { type: "string", default: join(ROOT, "dist") } } });
const out = resolve(values.out);
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const manifest = readRootManifest(ROOT);
const builds = { "hearth-sdk": buildClientPackage, "hearth-server": buildServerPackage };
for (const [name, buildPackage] of Object.entries(builds)) {
  const dir = join(out, name);
  await buildPackage(ROOT, manifest, dir);
  const [packed] = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", out], { cwd: dir, encoding: "utf8" }),
  ) as { filename: string }[];
  const tarball = join(out, packed?.filename ?? `${name}-${manifest.version}.tgz`);
  process.stdout.write(`${JSON.stringify({ name, dir, tarball, bytes: (await stat(tarball)).size })}\n`);
}
