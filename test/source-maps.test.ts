import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle, HearthApiError, HearthClient } from "../sdk/index.ts";
import { loggedError } from "../sdk/invocation-error.ts";
import { type DevCluster, runCli, startDevCluster } from "./support/cli.ts";
import { PROCESS_KILLER } from "./support/hostile-cases.ts";

let cluster: DevCluster;
let hearth: HearthClient;
const project = mkdtempSync(join(tmpdir(), "hearth-maps-project-"));

/** A TypeScript project on disk, as a user would have it: `src/...` under its folder. */
function write(files: Record<string, string>): void {
  mkdirSync(join(project, "src"), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(project, "src", name), text);
}

const cli = (args: string[]) => runCli(args, { HEARTH_URL: cluster.url, HEARTH_TOKEN: cluster.token });

/** The error a call answered, as HearthApiError (the SDK's), or a test failure when it succeeded. */
async function refusal(deploying: Promise<unknown>): Promise<HearthApiError> {
  return deploying.then(
    () => expect.fail("the deploy was accepted"),
    (err: unknown) => {
      expect(err).toBeInstanceOf(HearthApiError);
      return err as HearthApiError;
    },
  );
}

beforeAll(async () => {
  write({
    "config.ts": `export function requireSetting(name: string): string {\n  const value: string | undefined = undefined;\n  if (value === undefined) {\n    throw new Error(\`setting \${name} is missing\`);\n  }\n  return value;\n}\n`,
    "init-throws.ts": `import { requireSetting } from "./config.ts";\n\nconst url = requireSetting("DATABASE_URL");\n\nexport default {\n  fetch(): Response {\n    return new Response(url);\n  },\n};\n`,
    "parse.ts": `interface Order {\n  id: number;\n}\n\nexport function parseOrder(text: string): Order {\n  const order = JSON.parse(text) as Order;\n  if (!order.id) throw new RangeError("order has no id");\n  return order;\n}\n`,
    "fetch-throws.ts": `import { parseOrder } from "./parse.ts";\n\nexport default {\n  async fetch(request: Request): Promise<Response> {\n    const order = parseOrder(await request.text());\n    return Response.json(order);\n  },\n};\n`,
  });
  cluster = await startDevCluster();
  hearth = new HearthClient({ url: cluster.url, token: cluster.token });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(project, { recursive: true, force: true });
});

describe("deploy evaluates the module's top level once, before storing anything", () => {
  it("refuses a module that throws at its top level with ERR_MODULE_INIT, the message and the .ts line", async () => {
    const bundle = await buildBundle(join(project, "src", "init-throws.ts"), project);
    const err = await refusal(hearth.deploy("init-throws", bundle));
    expect([err.status, err.code]).toEqual([400, "ERR_MODULE_INIT"]);
    expect(err.message).toContain(
      "init-throws was not deployed: its top level threw:\nError: setting DATABASE_URL is missing",
    );
    expect(err.message).toContain("at requireSetting (src/config.ts:4:11)");
    expect(err.message).toContain("at src/init-throws.ts:3:13");
    // Nothing was stored: no function, no version.
    expect((await refusal(hearth.get("init-throws"))).code).toBe("ERR_FUNCTION_NOT_FOUND");
  });

  it("`hearth deploy` prints the refusal with the mapped line and exits 1", async () => {
    const run = await cli(["deploy", join(project, "src", "init-throws.ts"), "--name", "init-cli"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("setting DATABASE_URL is missing");
    expect(run.stderr).toContain("src/config.ts:4:11");
    expect(run.stderr).toContain("ERR_MODULE_INIT");
  });

  it("refuses a module with no handler", async () => {
    const err = await refusal(hearth.deploy("no-handler", { code: "export default { hello: 1 };" }));
    expect(err.code).toBe("ERR_MODULE_INIT");
    expect(err.message).toMatch(/has no `export default \{ fetch\(request, env, ctx\) \}` handler/);
  });

  it("refuses a module whose top level brings V8 down for its whole process; the gateway goes on", async () => {
    // In a 16 MB function: an out-of-memory isolated-vm cannot contain.
    const code = `${PROCESS_KILLER}\nexport default { fetch: () => new Response("never") };`;
    const err = await refusal(hearth.deploy("process-killer", { code, memoryMb: 16 }));
    expect([err.status, err.code]).toEqual([400, "ERR_MODULE_INIT"]);
    expect(err.message).toContain("process-killer was not deployed: evaluating its top level brought V8 down");
    expect((await refusal(hearth.get("process-killer"))).code).toBe("ERR_FUNCTION_NOT_FOUND");
    // The same gateway deploys (in a fresh check process) and serves.
    await hearth.deploy("after-killer", { code: `export default { fetch: () => new Response("still here") };` });
    expect((await hearth.invoke("after-killer")).text()).toBe("still here");
  });

  it("refuses a malformed source map with ERR_INVALID_SOURCE_MAP, storing nothing", async () => {
    const bundle = await buildBundle(join(project, "src", "fetch-throws.ts"), project);
    const err = await refusal(
      hearth.deploy("bad-map", { ...bundle, sourceMap: '{"version":3,"sources":[],"mappings":"AAAA;"' }),
    );
    expect([err.status, err.code]).toEqual([400, "ERR_INVALID_SOURCE_MAP"]);
    expect(err.message).toMatch(/^sourceMap is not JSON/);
    const wrong = await refusal(
      hearth.deploy("bad-map", {
        ...bundle,
        sourceMap: JSON.stringify({ version: 3, sources: ["a.ts"], mappings: "AKAA" }),
      }),
    );
    expect(wrong.code).toBe("ERR_INVALID_SOURCE_MAP");
    expect((await refusal(hearth.get("bad-map"))).code).toBe("ERR_FUNCTION_NOT_FOUND");
  });

  it("a deploy without a map still works, and its stacks name the deployed script", async () => {
    const { code, filename } = await buildBundle(join(project, "src", "fetch-throws.ts"), project);
    const started = performance.now();
    const info = await hearth.deploy("no-map", { code, filename });
    const deployMs = performance.now() - started;
    expect(info.sourceMapDigest).toBeUndefined();
    const res = await hearth.invoke("no-map", { body: '{"id":7}' });
    expect([res.status, res.text()]).toEqual([200, '{"id":7}']);
    const failed = await hearth.invoke("no-map", { body: "{}" });
    const { errorId } = JSON.parse(failed.text()).error;
    expect(await loggedError(hearth, "no-map", errorId, 10_000)).toMatch(
      /RangeError: order has no id\n\s+at parseOrder \(no-map\.js:\d+:\d+\)/,
    );
    console.info(`deploy round trip (bundle ${code.length} B, top level evaluated): ${deployMs.toFixed(1)} ms`);
  });
});

describe("a function that throws: its stack names the .ts file and line", () => {
  beforeAll(async () => {
    const info = await hearth.deploy("orders", await buildBundle(join(project, "src", "fetch-throws.ts"), project));
    expect(info.sourceMapDigest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("the caller gets a 500 with an error id and no stack; the log line under that id has the mapped stack", async () => {
    const res = await hearth.invoke("orders", { body: "{}" });
    expect(res.status).toBe(500);
    const { error } = JSON.parse(res.text());
    expect(error).toMatchObject({ code: "ERR_FUNCTION_THREW", errorId: expect.any(String) });
    expect(res.text()).not.toContain("order has no id");
    const stack = await loggedError(hearth, "orders", error.errorId, 10_000);
    expect(stack).toContain("RangeError: order has no id");
    expect(stack).toContain("at parseOrder (src/parse.ts:7:24)");
    expect(stack).toContain("at Object.fetch (src/fetch-throws.ts:5:19)");
    expect(stack).not.toMatch(/orders\.js:/);
  });

  it("`hearth invoke` prints the error and its mapped stack on stderr, and exits 1", async () => {
    const run = await cli(["invoke", "orders", "--data", "{}"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("ERR_FUNCTION_THREW");
    expect(run.stderr).toContain("at parseOrder (src/parse.ts:7:24)");
    expect(run.stderr).toContain("at Object.fetch (src/fetch-throws.ts:5:19)");
  });

  it("`hearth logs --status error` shows the mapped line", async () => {
    // Its own failure, waited for in the logs, so the test does not lean on the ones above.
    const { error } = JSON.parse((await hearth.invoke("orders", { body: "{}" })).text());
    await loggedError(hearth, "orders", error.errorId, 10_000);
    const run = await cli(["logs", "orders", "--status", "error"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("src/parse.ts:7:24");
  });
});
