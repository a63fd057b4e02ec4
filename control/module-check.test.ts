import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { HearthError } from "../protocol/index.ts";
import { buildBundle } from "../sdk/index.ts";
import { ModuleChecker } from "./module-check.ts";
import { prepareBundleWithMap } from "./prepare-bundle.ts";
import { validateSourceMap } from "./source-map.ts";

const dir = mkdtempSync(join(tmpdir(), "hearth-module-check-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const checker = new ModuleChecker();

/** Bundles `files` as `hearth deploy` does and prepares them as the gateway does: the script and its map. */
async function prepared(files: Record<string, string>, entry = "index.ts") {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const bundle = await buildBundle(join(dir, entry), dir);
  const { script, sourceMap } = await prepareBundleWithMap(
    bundle.code,
    bundle.filename,
    validateSourceMap(bundle.sourceMap, bundle.code),
  );
  return { script, ...(sourceMap ? { sourceMap } : {}) };
}

const HANDLER = `export default { fetch(): Response { return new Response("ok"); } };\n`;

describe("deploy-time evaluation of a module's top level", () => {
  it("accepts a module whose top level runs and binds a handler, in a few milliseconds", async () => {
    const module = await prepared({ "ok.ts": `const greeting: string = "hi";\n${HANDLER}` }, "ok.ts");
    await checker.check({ name: "ok", memoryMb: 128, ...module }); // warms the bootstrap
    const started = performance.now();
    await checker.check({ name: "ok", memoryMb: 128, ...module });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("refuses a module whose top level throws, with the message and the mapped .ts line", async () => {
    const module = await prepared({
      "config.ts": `export function readConfig(): string {\n  const raw = "{";\n  return JSON.parse(raw).url;\n}\n\nexport function requireUrl(): never {\n  throw new TypeError("CONFIG_URL is not set");\n}\n`,
      "index.ts": `import { requireUrl } from "./config.ts";\n\nconst url: string = requireUrl();\n\n${HANDLER}`,
    });
    const refused = await checker.check({ name: "cfg", memoryMb: 128, ...module }).then(
      () => expect.fail("deployed"),
      (err: HearthError) => err,
    );
    expect(refused.code).toBe("ERR_MODULE_INIT");
    const { message } = refused;
    expect(message).toContain("cfg was not deployed: its top level threw:\nTypeError: CONFIG_URL is not set");
    expect(message).toMatch(/at requireUrl \(config\.ts:7:9\)/);
    expect(message).toMatch(/at index\.ts:3:21/);
    expect(message).not.toMatch(/cfg\.js:|hearth:bootstrap|isolated-vm|file:\/\//);
  });

  it("without a map, names the frames in the deployed script", async () => {
    const { script } = await prepared({ "plain.ts": `throw new Error("no map");\n${HANDLER}` }, "plain.ts");
    await expect(checker.check({ name: "plain", memoryMb: 128, script })).rejects.toMatchObject({
      code: "ERR_MODULE_INIT",
      message: expect.stringMatching(/Error: no map\n\s+at plain\.js:\d+:\d+/),
    });
  });

  it("refuses a thrown non-Error value, a module with no handler, and a top level past its time", async () => {
    const cases: Array<[string, RegExp]> = [
      [`throw "plain string";\n${HANDLER}`, /its top level threw:\nplain string$/],
      [`export default { hello: 1 };\n`, /has no `export default \{ fetch\(request, env, ctx\) \}` handler/],
      [`while (true) {}\n${HANDLER}`, /its top level ran past 1000 ms/],
    ];
    for (const [source, why] of cases) {
      const { script } = await prepared({ "case.ts": source }, "case.ts");
      await expect(checker.check({ name: "case", memoryMb: 128, script })).rejects.toMatchObject({
        code: "ERR_MODULE_INIT",
        message: expect.stringMatching(why),
      });
    }
  });

  it("refuses a top level over its memory limit, but not over the sandbox's smaller one", async () => {
    const hungry = `const held: number[][] = [];\nfor (let i = 0; i < 40; i++) held.push(new Array(1_000_000).fill(i));\n${HANDLER}`;
    const { script } = await prepared({ "hungry.ts": hungry }, "hungry.ts");
    const small = new ModuleChecker({ maxMemoryMb: 32 });
    await expect(small.check({ name: "hungry", memoryMb: 32, script })).rejects.toMatchObject({
      code: "ERR_MODULE_INIT",
      message: expect.stringMatching(/ran out of the function's 32 MB of memory/),
    });
    // Its own limit is 512 MB: the 32 MB sandbox cannot judge it, so it is let through.
    await expect(small.check({ name: "hungry", memoryMb: 512, script })).resolves.toBeUndefined();
  });
});
