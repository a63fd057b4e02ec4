import { fileURLToPath } from "node:url";

/**
 * The path of a module beside `base` (a module's `import.meta.url`), written as in the sources
 * (`"./executor/main.ts"`) and given the extension `base` has: `.ts` when Node runs the monorepo's
 * sources, `.js` when it runs the compiled hearth-server package (Node does not strip types under
 * node_modules, so that package ships JavaScript). For paths handed to a child process or esbuild,
 * which an `import` statement's rewrite at compile time does not reach.
 *
 * @example modulePath("../cli/main.ts", import.meta.url) // …/sdk/cli/main.ts or …/sdk/cli/main.js
 */
export function modulePath(relative: string, base: string | URL): string {
  if (!relative.endsWith(".ts")) throw new TypeError(`modulePath expects a .ts path, got "${relative}"`);
  const extension = /\.js$/.test(new URL(base).pathname) ? ".js" : ".ts";
  return fileURLToPath(new URL(relative.slice(0, -".ts".length) + extension, base));
}
