import { describe, expect, it } from "vitest";
import { prepareBundle } from "./prepare-bundle.ts";

describe("prepareBundle (server-side deploy check)", () => {
  it("turns a module into a classic script that assigns __hearth_module", async () => {
    const script = await prepareBundle(`export default { fetch() { return new Response("x"); } };`, "ok.js");
    expect(script).toMatch(/^var __hearth_module = /);
    expect(script).not.toMatch(/^\s*export /m);
  });

  it("reports a syntax error with esbuild's message and file:line:column", async () => {
    await expect(prepareBundle("export default {\n  fetch() { return 1 +; }\n};", "broken.ts")).rejects.toMatchObject({
      code: "ERR_INVALID_BUNDLE",
      message: expect.stringMatching(/^broken\.ts:2:\d+: Unexpected ";"/),
    });
  });

  it("rejects code that still imports a module, naming the import", async () => {
    await expect(
      prepareBundle(`import x from "lodash"; export default { fetch() { return x; } };`, "imp.js"),
    ).rejects.toMatchObject({
      code: "ERR_INVALID_BUNDLE",
      message: expect.stringContaining('imp.js:1:15: Import of "lodash" is not allowed'),
    });
  });

  it("code that crashes the bundler is refused, and the bundler is back for the next deploy", async () => {
    // A million nested brackets: esbuild's parser overflows its 1 GB Go stack and its process dies.
    const nested = `export const x = ${"[".repeat(1e6)}${"]".repeat(1e6)};\nexport default { fetch() { return new Response("x"); } };`;
    await expect(prepareBundle(nested, "nested.js")).rejects.toMatchObject({
      code: "ERR_INVALID_BUNDLE",
      message: expect.stringContaining("nested.js: the bundler stopped while preparing this deploy"),
    });
    const script = await prepareBundle(`export default { fetch() { return new Response("after"); } };`, "after.js");
    expect(script).toContain("after");
  });

  it("rejects a module without a default export", async () => {
    await expect(prepareBundle(`export const fetch = () => new Response("x");`, "nodefault.js")).rejects.toMatchObject({
      code: "ERR_INVALID_BUNDLE",
      message: expect.stringContaining("no default export"),
    });
  });
});
