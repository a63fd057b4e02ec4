import { describe, expect, it } from "vitest";
import { loadServer } from "./server-loader.ts";

const missing = () =>
  Promise.reject(
    Object.assign(new Error("Cannot find package 'hearth-server' imported from /p/node_modules/hearth/dist/cli.js"), {
      code: "ERR_MODULE_NOT_FOUND",
    }),
  );

describe("loadServer", () => {
  it("loads the server module from the sources in the monorepo", async () => {
    const server = await loadServer("dev");
    expect(typeof server.startLocalCluster).toBe("function");
    expect(typeof server.runRole).toBe("function");
  });

  it("refuses a Node.js older than 24, naming the command, the package and the version", async () => {
    await expect(loadServer("gateway", "20.20.2", missing)).rejects.toMatchObject({
      code: "ERR_SERVER_UNAVAILABLE",
      message:
        "hearth gateway needs the server: npm i -D hearth-server (Node.js 24 or later); this is Node.js 20.20.2.",
    });
  });

  it("says to install hearth-server when it is not installed", async () => {
    await expect(loadServer("dev", "24.11.0", missing)).rejects.toMatchObject({
      code: "ERR_SERVER_UNAVAILABLE",
      message: "hearth dev needs the server: npm i -D hearth-server (Node.js 24 or later); it is not installed.",
    });
  });

  it("lets any other failure of the server's import through as it is", async () => {
    const broken = Object.assign(new Error("Cannot find package 'pino'"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(loadServer("worker", "24.11.0", () => Promise.reject(broken))).rejects.toBe(broken);
  });
});
