import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LIMITS } from "../protocol/index.ts";
import { mapStack, parseSourceMap } from "../runtime/index.ts";
import { buildBundle } from "../sdk/index.ts";
import { prepareBundleWithMap } from "./prepare-bundle.ts";
import { validateSourceMap } from "./source-map.ts";

const dir = mkdtempSync(join(tmpdir(), "hearth-source-map-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A two-file TypeScript project bundled the way `hearth deploy` does, from its own folder. */
async function bundleProject() {
  writeFileSync(
    join(dir, "lib.ts"),
    `export function boom(x: number): number {\n  if (x > 0) {\n    throw new Error("boom");\n  }\n  return x;\n}\n`,
  );
  writeFileSync(
    join(dir, "index.ts"),
    `import { boom } from "./lib.ts";\n\ninterface Env { A?: string }\n\nexport default {\n  fetch(req: Request, env: Env): Response {\n    return new Response(String(boom(1)));\n  },\n};\n`,
  );
  return buildBundle(join(dir, "index.ts"), dir);
}

describe("source maps on deploy", () => {
  it("the SDK's map names sources relative to the project, with their text", async () => {
    const bundle = await bundleProject();
    const map = JSON.parse(bundle.sourceMap);
    expect(map.version).toBe(3);
    expect(map.sources).toEqual(["lib.ts", "index.ts"]);
    expect(map.sourcesContent[0]).toContain('throw new Error("boom")');
    expect(bundle.code).not.toContain("sourceMappingURL");
  });

  it("the prepared script maps back through both esbuild steps to the .ts line", async () => {
    const bundle = await bundleProject();
    const prepared = await prepareBundleWithMap(
      bundle.code,
      bundle.filename,
      validateSourceMap(bundle.sourceMap, bundle.code),
    );
    expect(prepared.sourceMap).toBeDefined();
    const lines = prepared.script.split("\n");
    const line = lines.findIndex((l) => l.includes("throw new Error")) + 1;
    const column = (lines[line - 1] ?? "").indexOf("throw") + 1;
    const stack = `Error: boom\n    at boom (fn.js:${line}:${column})`;
    expect(mapStack(stack, "fn.js", parseSourceMap(prepared.sourceMap ?? ""))).toBe(
      "Error: boom\n    at boom (lib.ts:3:5)",
    );
  });

  it("a deploy without a map prepares no map", async () => {
    const prepared = await prepareBundleWithMap(`export default { fetch() { return new Response("x"); } };`, "x.js");
    expect(prepared.sourceMap).toBeUndefined();
  });

  it("refuses maps that are not JSON, not version 3, or not a map of this code, naming why", async () => {
    const { code, sourceMap } = await bundleProject();
    const map = JSON.parse(sourceMap);
    const refused = (json: string, why: RegExp) =>
      expect(() => validateSourceMap(json, code)).toThrow(
        expect.objectContaining({ code: "ERR_INVALID_SOURCE_MAP", message: expect.stringMatching(why) }),
      );
    refused("{nope", /^sourceMap is not JSON/);
    refused("[]", /must be a JSON object/);
    refused(JSON.stringify({ ...map, version: 2 }), /version must be 3, got 2/);
    refused(JSON.stringify({ ...map, mappings: 7 }), /mappings must be a string/);
    refused(JSON.stringify({ ...map, sources: [1] }), /sources must be strings/);
    refused(JSON.stringify({ ...map, sourcesContent: ["only one"] }), /one string \(or null\) per source/);
    // Source index 5 of a map that lists two sources (VLQ "K" = 5).
    refused(JSON.stringify({ ...map, mappings: "AKAA" }), /bad mapping on generated line 1/);
    refused(JSON.stringify({ ...map, mappings: ";".repeat(code.split("\n").length + 5) }), /belongs to other code/);
    refused(JSON.stringify({ ...map, sections: [] }), /not an index map/);
    expect(() => validateSourceMap(" ".repeat(LIMITS.maxSourceMapBytes + 1), code)).toThrow(
      expect.objectContaining({ code: "ERR_PAYLOAD_TOO_LARGE" }),
    );
  });
});
