import { describe, expect, it } from "vitest";
import { modulePath } from "./module-path.ts";

describe("modulePath", () => {
  it("keeps .ts beside a source module", () => {
    expect(modulePath("./executor/main.ts", "file:///repo/runtime/executor-process.ts")).toBe(
      "/repo/runtime/executor/main.ts",
    );
  });

  it("gives .js beside a compiled module, as in the hearth-server package", () => {
    expect(modulePath("../cli/main.ts", "file:///p/node_modules/hearth-server/sdk/dev/cluster.js")).toBe(
      "/p/node_modules/hearth-server/sdk/cli/main.js",
    );
  });

  it("rejects a path that is not written as a .ts source", () => {
    expect(() => modulePath("./main.js", "file:///repo/x.ts")).toThrow(
      'modulePath expects a .ts path, got "./main.js"',
    );
  });
});
