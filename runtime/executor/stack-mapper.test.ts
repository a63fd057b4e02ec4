import { describe, expect, it } from "vitest";
import { prepareBundleWithMap, validateSourceMap } from "../../control/index.ts";
import { mapStack, parseSourceMap } from "../isolate/map-stack.ts";
import { StackMapper } from "./stack-mapper.ts";

/** A module as esbuild writes it from `src/greet.ts`, with its map: the map the deploy stores. */
async function deployedWithMap() {
  const code = `// src/greet.ts\nfunction greet(name) {\n  throw new Error("no " + name);\n}\nvar greet_default = { fetch() { return greet("x"); } };\nexport {\n  greet_default as default\n};\n`;
  // Line 3 of the bundle is line 7 of src/greet.ts, at the same column.
  const map = JSON.stringify({
    version: 3,
    sources: ["src/greet.ts"],
    names: [],
    mappings: ";;AAMA",
    sourcesContent: [null],
  });
  const prepared = await prepareBundleWithMap(code, "greet.js", validateSourceMap(map, code));
  const line = prepared.script.split("\n").findIndex((l) => l.includes("throw new Error")) + 1;
  const column = (prepared.script.split("\n")[line - 1] ?? "").indexOf("throw") + 1;
  return { map: prepared.sourceMap ?? "", line, column };
}

describe("StackMapper (executor side)", () => {
  it("maps the function's frames through its version's map, read once and only when a stack needs it", async () => {
    const { map, line, column } = await deployedWithMap();
    const reads: string[] = [];
    const mapper = new StackMapper({
      source: {
        get: async (digest) => {
          reads.push(digest);
          return map;
        },
      },
    });
    const stack = `Error: no x\n    at greet (greet.js:${line}:${column})\n    at a (hearth:bootstrap.js:13:5712)`;
    const fn = { name: "greet", sourceMapDigest: "m1" };
    expect(reads).toEqual([]);
    const mapped = await Promise.all([mapper.map(fn, stack), mapper.map(fn, stack)]);
    expect(mapped[0]).toBe("Error: no x\n    at greet (src/greet.ts:7:1)\n    at a (hearth:bootstrap.js:13:5712)");
    expect(mapped[1]).toBe(mapped[0]);
    await mapper.map(fn, stack);
    expect(reads).toEqual(["m1"]);
  });

  it("leaves a stack as it is without a map, or when the map cannot be read", async () => {
    const mapper = new StackMapper({
      source: {
        get: async () => {
          throw new Error("missing from the object store");
        },
      },
    });
    const stack = "Error: x\n    at greet (greet.js:3:3)";
    expect(await mapper.map({ name: "greet" }, stack)).toBe(stack);
    expect(await mapper.map({ name: "greet", sourceMapDigest: "gone" }, stack)).toBe(stack);
  });

  it("keeps at most `keep` parsed maps, the least recently used out first", async () => {
    const { map, line, column } = await deployedWithMap();
    const reads: string[] = [];
    const mapper = new StackMapper({
      keep: 1,
      source: {
        get: async (digest) => {
          reads.push(digest);
          return map;
        },
      },
    });
    const stack = `Error\n    at greet (greet.js:${line}:${column})`;
    await mapper.map({ name: "greet", sourceMapDigest: "a" }, stack);
    await mapper.map({ name: "greet", sourceMapDigest: "b" }, stack);
    await mapper.map({ name: "greet", sourceMapDigest: "a" }, stack);
    expect(reads).toEqual(["a", "b", "a"]);
  });
});

describe("mapStack", () => {
  it("maps only frames of the function's own script, not a bootstrap file that ends with its name", async () => {
    const { map, line, column } = await deployedWithMap();
    const stack = `Error: x\n    at greet (bootstrap.js:${line}:${column})\n    at a (hearth:bootstrap.js:${line}:${column})`;
    expect(mapStack(stack, "bootstrap.js", parseSourceMap(map))).toBe(
      `Error: x\n    at greet (src/greet.ts:7:1)\n    at a (hearth:bootstrap.js:${line}:${column})`,
    );
  });
});
