import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildBundle } from "./bundle.ts";

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "hearth-bundle-"));
  made.push(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe("buildBundle (CLI-side esbuild bundling)", () => {
  it("bundles a TypeScript entry and its local imports into one ES module", async () => {
    const dir = project({
      "index.ts": `import { greet } from "./greet.ts";\nexport default { fetch(): Response { return new Response(greet("x")); } };`,
      "greet.ts": `export const greet = (name: string): string => "hi " + name;`,
    });
    const bundle = await buildBundle(join(dir, "index.ts"));
    expect(bundle.filename).toBe("index.ts");
    expect(bundle.code).toContain('"hi " + name');
    expect(bundle.code).toMatch(/export\s*\{[^}]*default/);
    expect(bundle.code).not.toContain("./greet");
  });

  it("names a Node built-in import and where it is", async () => {
    const dir = project({
      "fs.ts": `import { readFileSync } from "node:fs";\nexport default { fetch() { return new Response(String(readFileSync)); } };`,
    });
    await expect(buildBundle(join(dir, "fs.ts"))).rejects.toMatchObject({
      code: "ERR_BUNDLE",
      message: expect.stringMatching(/fs\.ts:1:\d+: "node:fs" is a Node\.js built-in module/),
    });
  });

  it("catches bare Node built-ins too (without the node: prefix)", async () => {
    const dir = project({
      "path.ts": `import path from "path";\nexport default { fetch() { return new Response(path.sep); } };`,
    });
    await expect(buildBundle(join(dir, "path.ts"))).rejects.toThrow(/"path" is a Node\.js built-in module/);
  });

  it("names an unresolvable module with file:line", async () => {
    const dir = project({
      "missing.ts": `\nimport x from "no-such-package-hearth";\nexport default { fetch() { return new Response(x); } };`,
    });
    await expect(buildBundle(join(dir, "missing.ts"))).rejects.toThrow(
      /missing\.ts:2:\d+: Could not resolve "no-such-package-hearth"/,
    );
  });

  it("reports syntax errors with file:line:column", async () => {
    const dir = project({ "syntax.ts": `export default {\n  fetch() { return new Response( }\n};` });
    await expect(buildBundle(join(dir, "syntax.ts"))).rejects.toThrow(/syntax\.ts:2:\d+: /);
  });
});
