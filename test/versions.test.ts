import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogEntry } from "../protocol/index.ts";
import { HearthApiError } from "../sdk/index.ts";
import { runCli } from "./support/cli.ts";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";
import { until } from "./support/sink.ts";

/** Answers with its plain variable V, so a response names the version that served it. */
const SOURCE = "export default { fetch: (req, env) => new Response(env.V) };";

let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await startInProcessCluster();
});

afterAll(async () => {
  await cluster?.close();
});

async function call(fn: string, headers: Record<string, string> = {}): Promise<{ body: string; version: string }> {
  const res = await request(`${cluster.gateway.url}/fn/${fn}`, { headers });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${res.statusCode}: ${body}`);
  return { body, version: String(res.headers["x-hearth-version"]) };
}

/** Deploys SOURCE with V=`v` (a new version each time V changes). */
function deploy(fn: string, v: string, extra: Record<string, unknown> = {}) {
  return cluster.hearth.deploy(fn, { code: SOURCE, env: { V: v }, ...extra });
}

async function apiError(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HearthApiError);
  return { status: (err as HearthApiError).status, code: (err as HearthApiError).code };
}

describe("versions", () => {
  it("makes a version per change, none for a redeploy that changes nothing, and keeps what a redeploy leaves out", async () => {
    const first = await deploy("keep", "a", { memoryMb: 256, maxInstances: 3 });
    expect(first).toMatchObject({ versionId: 1, newVersion: true, memoryMb: 256, maxInstances: 3 });

    const same = await deploy("keep", "a");
    expect(same).toMatchObject({ versionId: 1, newVersion: false, changes: [] });

    // Only the timeout named: the variables, memory and scaling bound stay.
    const slower = await cluster.hearth.deploy("keep", { code: SOURCE, timeoutMs: 5_000 });
    expect(slower).toMatchObject({ versionId: 2, newVersion: true, memoryMb: 256, maxInstances: 3, env: { V: "a" } });
    expect(slower.changes).toEqual([{ field: "timeoutMs", from: 30_000, to: 5_000 }]);

    // A setting alone makes no version: nothing a worker runs changed.
    const scaled = await cluster.hearth.deploy("keep", { code: SOURCE, maxInstances: 5 });
    expect(scaled).toMatchObject({ versionId: 2, newVersion: false, maxInstances: 5 });
    expect(scaled.changes).toEqual([{ field: "maxInstances", from: 3, to: 5 }]);

    const changed = await deploy("keep", "b", { message: "say b" });
    expect(changed.changes).toEqual([{ field: "env.V", from: "a", to: "b" }]);
    const versions = await cluster.hearth.versions("keep");
    expect(versions.map((v) => [v.id, v.percent, v.env.V, v.message ?? null])).toEqual([
      [3, 100, "b", "say b"],
      [2, 0, "a", null],
      [1, 0, "a", null],
    ]);
    expect((await call("keep")).body).toBe("b");
  });

  it("rolls back to the last version that served alone, or to the one named", async () => {
    await deploy("back", "1");
    await deploy("back", "2");
    expect(await call("back")).toEqual({ body: "2", version: "2" });

    const rolled = await cluster.hearth.rollback("back");
    expect(rolled).toMatchObject({ from: [{ id: 2, percent: 100 }], to: 1, secretsChanged: [] });
    expect(rolled.deployment.versions).toEqual([{ id: 1, percent: 100 }]);
    expect(await call("back")).toEqual({ body: "1", version: "1" });

    // Rolling back again returns to 2, like `wrangler rollback`.
    expect((await cluster.hearth.rollback("back")).to).toBe(2);
    expect((await cluster.hearth.rollback("back", 1)).to).toBe(1);
    expect((await call("back")).body).toBe("1");
  });

  it("splits requests between two versions by percentage (10 % of 10,000 lands within 1,000 ± 120)", async () => {
    await deploy("split", "old");
    const canary = await deploy("split", "new", { percent: 10 });
    expect(canary.canary).toMatchObject({ id: 2, percent: 10 });
    expect(await cluster.hearth.deployment("split")).toEqual({
      versions: [
        { id: 1, percent: 90 },
        { id: 2, percent: 10 },
      ],
      previousVersionId: 1,
    });
    const counts = { old: 0, new: 0 };
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next++ < 10_000) {
          const { body, version } = await call("split");
          expect(version).toBe(body === "new" ? "2" : "1");
          counts[body as "old" | "new"]++;
        }
      }),
    );
    expect(counts.old + counts.new).toBe(10_000);
    expect(Math.abs(counts.new - 1_000)).toBeLessThanOrEqual(120);
  }, 120_000);

  it("keeps a caller with a version key on one version while the percentages stay or grow", async () => {
    await deploy("sticky", "old");
    await deploy("sticky", "new", { percent: 10 });
    const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`);
    const first = new Map<string, string>();
    for (const key of keys) first.set(key, (await call("sticky", { "hearth-version-key": key })).body);
    for (const key of keys) expect((await call("sticky", { "hearth-version-key": key })).body).toBe(first.get(key));
    const onCanary = keys.filter((k) => first.get(k) === "new");
    expect(onCanary.length).toBeGreaterThan(0);
    await cluster.hearth.setDeployment("sticky", [
      { id: 1, percent: 70 },
      { id: 2, percent: 30 },
    ]);
    for (const key of onCanary) expect((await call("sticky", { "hearth-version-key": key })).body).toBe("new");
  });

  it("reaches a version that serves 0 % with an override header and a control token", async () => {
    await deploy("smoke", "live");
    await deploy("smoke", "next", { percent: 10 });
    await cluster.hearth.setDeployment("smoke", [{ id: 1, percent: 100 }]);
    const auth = { authorization: `Bearer ${TEST_TOKEN}` };
    expect(await call("smoke", { "hearth-version": "2", ...auth })).toEqual({ body: "next", version: "2" });
    expect(await call("smoke", { "hearth-version": "1", ...auth })).toEqual({ body: "live", version: "1" });
    // Without the token nobody else may pick a version its owner took out of service.
    const anonymous = await request(`${cluster.gateway.url}/fn/smoke`, { headers: { "hearth-version": "2" } });
    expect(anonymous.statusCode).toBe(401);
    await anonymous.body.dump();
    for (const [value, status, code] of [
      ["9", 404, "ERR_VERSION_NOT_FOUND"],
      ["two", 400, "ERR_BAD_REQUEST"],
    ] as const) {
      const res = await request(`${cluster.gateway.url}/fn/smoke`, { headers: { "hearth-version": value, ...auth } });
      expect(res.statusCode).toBe(status);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    expect((await call("smoke")).body).toBe("live");
  });

  it("attributes a canary's console lines to its own version", async () => {
    const code = 'export default { fetch(req, env) { console.log("from " + env.V); return new Response(env.V); } };';
    await cluster.hearth.deploy("logged", { code, env: { V: "old" } });
    await cluster.hearth.deploy("logged", { code, env: { V: "new" }, percent: 50 });
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) seen.add((await call("logged")).body);
    expect(seen).toEqual(new Set(["old", "new"]));
    const versions = await until(
      "both versions' lines in the function's logs",
      async () => {
        const entries: LogEntry[] = [];
        for await (const entry of cluster.hearth.logs("logged")) entries.push(entry);
        const versionOf = (message: string) => entries.find((e) => e.message === message)?.versionId;
        const [old, next] = [versionOf("from old"), versionOf("from new")];
        return old !== undefined && next !== undefined ? [old, next] : undefined;
      },
      10_000,
    );
    expect(versions).toEqual([1, 2]);
  });

  it("refuses bad deployments and rollbacks and changes nothing", async () => {
    await deploy("strict", "1");
    await deploy("strict", "2");
    const before = await cluster.hearth.deployment("strict");
    const bad: [() => Promise<unknown>, number, string][] = [
      [() => cluster.hearth.setDeployment("strict", [{ id: 1, percent: 50 }]), 400, "ERR_BAD_REQUEST"],
      [
        () =>
          cluster.hearth.setDeployment("strict", [
            { id: 1, percent: 50 },
            { id: 1, percent: 50 },
          ]),
        400,
        "ERR_BAD_REQUEST",
      ],
      [
        () =>
          cluster.hearth.setDeployment("strict", [
            { id: 1, percent: 40 },
            { id: 2, percent: 30 },
            { id: 2, percent: 30 },
          ]),
        400,
        "ERR_BAD_REQUEST",
      ],
      [() => cluster.hearth.setDeployment("strict", [{ id: 7, percent: 100 }]), 404, "ERR_VERSION_NOT_FOUND"],
      [() => cluster.hearth.setDeployment("strict", [{ id: 0, percent: 100 }]), 400, "ERR_BAD_REQUEST"],
      [() => cluster.hearth.rollback("strict", 9), 404, "ERR_VERSION_NOT_FOUND"],
      [() => cluster.hearth.rollback("nothing-here"), 404, "ERR_FUNCTION_NOT_FOUND"],
      [() => cluster.hearth.versions("nothing-here"), 404, "ERR_FUNCTION_NOT_FOUND"],
      [() => deploy("brand-new", "x", { percent: 10 }), 400, "ERR_BAD_REQUEST"],
      [() => deploy("strict", "3", { percent: 0 }), 400, "ERR_BAD_REQUEST"],
      [() => deploy("strict", "3", { message: "m".repeat(501) }), 400, "ERR_BAD_REQUEST"],
    ];
    for (const [attempt, status, code] of bad) expect(await apiError(attempt())).toEqual({ status, code });
    expect(await cluster.hearth.deployment("strict")).toEqual(before);
    await expect(cluster.hearth.get("brand-new")).rejects.toThrow(/not deployed/);

    await deploy("alone", "1");
    expect(await apiError(cluster.hearth.rollback("alone"))).toEqual({ status: 400, code: "ERR_BAD_REQUEST" });
  });
});

describe("versions from the CLI", () => {
  it("deploys saying what changed, lists versions, rolls out a canary and rolls back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hearth-versions-"));
    const entry = join(dir, "cli.ts");
    writeFileSync(entry, SOURCE);
    const env = { HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN };
    const hearth = async (...args: string[]) => {
      const result = await runCli(args, env);
      expect(result.code, result.stderr).toBe(0);
      return result.stdout;
    };
    try {
      expect(await hearth("deploy", entry, "--name", "cli", "--env", "V=1", "--memory", "256")).toMatch(
        /Deployed cli: version 1 /,
      );
      // --env and --memory left out: both stay; the CLI says only the timeout changed.
      const second = await hearth("deploy", entry, "--name", "cli", "--timeout", "5000", "-m", "shorter timeout");
      expect(second).toMatch(/Deployed cli: version 2 /);
      expect(second).toContain("timeoutMs 30000 → 5000");
      expect(second).not.toContain("memoryMb");
      expect((await cluster.hearth.get("cli")).env).toEqual({ V: "1" });
      expect(await hearth("deploy", entry, "--name", "cli")).toContain("cli: nothing changed (version 2)");

      const listed = await hearth("versions", "cli");
      expect(listed).toMatch(/^ {3}2 {2}100 % .* shorter timeout$/m);
      expect(await hearth("rollout", "cli", "1", "--percent", "25")).toContain("cli: version 2 75 %, version 1 25 %");
      expect(await hearth("rollback", "cli")).toContain(
        "cli: version 2 serves every request (was version 2 75 %, version 1 25 %)",
      );
      expect(await hearth("rollback", "cli", "--to", "1")).toContain(
        "cli: version 1 serves every request (was version 2 100 %)",
      );
      expect((await call("cli")).version).toBe("1");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
