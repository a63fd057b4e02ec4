import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allows, checkDeployQuota, principalOf } from "../control/index.ts";
import { Gateway, type HttpRequest, type HttpResponse } from "../gateway/index.ts";
import { FunctionStore, hashToken, NamespaceStore, parseScope, parseScopes, TokenStore } from "../protocol/index.ts";
import { HearthApiError, HearthClient } from "../sdk/index.ts";
import { runCli } from "./support/cli.ts";
import { bodyText, type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/**
 * Tokens, scopes, namespaces and private functions against a real cluster in this process: a
 * nats-server, the gateway, a scheduler and a worker whose executors run real isolates.
 */
let cluster: InProcessCluster;
let admin: HearthClient;
const tokens: Record<string, string> = {};
const as = (who: string) => new HearthClient({ url: cluster.gateway.url, token: tokens[who] ?? who });

/** Echoes what it saw of the Authorization header: a private function must never see Hearth's token. */
const ECHO_AUTH = `export default { fetch(r) { return new Response("auth=" + (r.headers.get("authorization") ?? "none")); } };`;

function request(method: string, target: string, token?: string, body?: unknown): HttpRequest {
  const headers: [string, string][] = [["host", "test"]];
  if (token !== undefined) headers.push(["authorization", `Bearer ${token}`]);
  const bytes = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
  return { method, target, headers, body: bytes };
}

function errorOf(res: HttpResponse): { status: number; code: string; message: string } {
  const { code, message } = JSON.parse(bodyText(res)).error;
  return { status: res.status, code, message };
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HearthApiError)) throw new Error(`expected a HearthApiError, got ${String(err)}`);
  return { status: err.status, code: err.code, message: err.message };
}

beforeAll(async () => {
  cluster = await startInProcessCluster();
  admin = cluster.hearth;
  await admin.createNamespace("team-a");
  await admin.createNamespace("team-b");
  await admin.deploy("a-pub", { code: ECHO_AUTH, namespace: "team-a" });
  await admin.deploy("a-priv", { code: ECHO_AUTH, namespace: "team-a", access: "private" });
  await admin.deploy("b-fn", { code: ECHO_AUTH, namespace: "team-b" });
  await admin.deploy("b-priv", { code: ECHO_AUTH, namespace: "team-b", access: "private" });
  for (const [who, scopes] of Object.entries({
    deployA: ["deploy:team-a"],
    reader: ["read"],
    readA: ["read:team-a"],
    invokeB: ["invoke:team-b"],
  })) {
    tokens[who] = (await admin.createToken(who, scopes)).token;
  }
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

describe("tokens", () => {
  it("are hth_ and 256 random bits, shown once; GET /v1/tokens and the bucket hold neither the token nor anything but its SHA-256", async () => {
    const created = await admin.createToken("once", ["read"]);
    expect(created.token).toMatch(/^hth_[A-Za-z0-9_-]{43}$/);
    expect(created.id).toMatch(/^[0-9a-f]{12}$/);
    const listed = (await admin.tokens()).find((t) => t.id === created.id);
    expect(listed).toEqual({ id: created.id, name: "once", scopes: ["read"], createdAt: created.createdAt });
    const raw = bodyText(await cluster.gateway.handle(request("GET", "/v1/tokens", TEST_TOKEN)));
    expect(raw).not.toContain(created.token);
    expect(raw).not.toContain(hashToken(created.token));
    const stored = await (await TokenStore.open(cluster.nc)).get(created.id);
    expect(stored?.sha256).toBe(hashToken(created.token));
    expect(JSON.stringify(stored)).not.toContain(created.token);
  });

  it("missing, malformed, wrong and revoked tokens get 401 on control routes; the bootstrap token stays admin", async () => {
    for (const token of [undefined, "", "hth_wrong", `${TEST_TOKEN}x`]) {
      const res = await cluster.gateway.handle(request("GET", "/v1/functions", token));
      expect(errorOf(res)).toMatchObject({ status: 401, code: "ERR_UNAUTHORIZED" });
    }
    const { id, token } = await admin.createToken("short-lived", ["read"]);
    await expect
      .poll(async () => (await cluster.gateway.handle(request("GET", "/v1/functions", token))).status)
      .toBe(200);
    await admin.revokeToken(id);
    await expect
      .poll(async () => (await cluster.gateway.handle(request("GET", "/v1/functions", token))).status)
      .toBe(401);
    expect(errorOf(await cluster.gateway.handle(request("GET", "/v1/functions", token))).message).toMatch(/revoked/);
    expect(await refusal(admin.revokeToken(id))).toMatchObject({ status: 404, code: "ERR_NOT_FOUND" });
    expect((await admin.list()).length).toBeGreaterThanOrEqual(4);
  });

  it("a control request with a bad token is refused before its body is read (admission)", async () => {
    const big = "x".repeat(2 * 1024 * 1024);
    const res = await fetch(`${cluster.gateway.url}/v1/functions/a-pub`, {
      method: "PUT",
      headers: { authorization: "Bearer hth_wrong", "content-type": "application/json" },
      body: JSON.stringify({ code: big }),
    });
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe("ERR_UNAUTHORIZED");
  });

  it("refuses bad token requests with 400 naming the field", async () => {
    const cases: [unknown, RegExp][] = [
      [[], /JSON object/],
      [{ scopes: ["read"] }, /name must be/],
      [{ name: "x" }, /scopes must be a list/],
      [{ name: "x", scopes: [] }, /scopes must be a list/],
      [{ name: "x", scopes: ["write"] }, /Invalid scope "write"/],
      [{ name: "x", scopes: ["deploy:Team A"] }, /Invalid scope/],
      [{ name: "x", scopes: ["deploy:"] }, /Invalid scope/],
      [{ name: "x".repeat(65), scopes: ["read"] }, /name must be/],
    ];
    for (const [body, message] of cases) {
      const res = await cluster.gateway.handle(request("POST", "/v1/tokens", TEST_TOKEN, body));
      expect(errorOf(res)).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST" });
      expect(errorOf(res).message).toMatch(message);
    }
    const put = await cluster.gateway.handle(request("PUT", "/v1/tokens", TEST_TOKEN, {}));
    expect(errorOf(put).code).toBe("ERR_METHOD_NOT_ALLOWED");
  });

  it("a revoke reaches another gateway within one watch delivery", async () => {
    const other = new Gateway({ nc: cluster.nc, token: TEST_TOKEN, port: 0 });
    await other.start();
    try {
      const { id, token } = await admin.createToken("two-gateways", ["read"]);
      await expect.poll(async () => (await other.handle(request("GET", "/v1/functions", token))).status).toBe(200);
      const start = performance.now();
      await admin.revokeToken(id);
      const answered = performance.now();
      let status = 200;
      while (status === 200 && performance.now() - start < 5_000) {
        status = (await other.handle(request("GET", "/v1/status", token))).status;
        if (status === 200) await new Promise((resolve) => setImmediate(resolve));
      }
      const elapsedMs = performance.now() - start;
      expect(status).toBe(401);
      // Measured on the project's 2-core machine (4 runs): the other gateway refused it 0.2–0.8 ms after
      // the revoke was answered, 2–9 ms after it was sent. A watch delivery is one NATS message.
      expect(elapsedMs).toBeLessThan(1_000);
      console.info(
        `revoke: answered after ${(answered - start).toFixed(1)} ms, refused by the other gateway after ${elapsedMs.toFixed(1)} ms`,
      );
    } finally {
      await other.close();
    }
  });
});

describe("scopes", () => {
  it("parse admin, read, read:<ns>, deploy:<ns>, invoke:<ns> and nothing else", () => {
    for (const scope of ["admin", "read", "read:team-a", "deploy:a1", "invoke:default"])
      expect(parseScope(scope)).toBe(scope);
    for (const scope of ["Admin", "deploy", "deploy:*", "invoke:a.b", "read:-a", 7, null]) {
      expect(() => parseScope(scope)).toThrow(/Invalid scope/);
    }
    expect(parseScopes(["read", "read"])).toEqual(["read"]);
    expect(() => parseScopes(Array.from({ length: 33 }, () => "read"))).toThrow(/1 to 32/);
  });

  it("deploy:<ns> implies read and invoke there and nowhere else; invoke:<ns> reads invocation statuses only", () => {
    const ci = principalOf("ci", "0", ["deploy:a"]);
    expect([allows(ci, "read", "a"), allows(ci, "deploy", "a"), allows(ci, "invoke", "a")]).toEqual([true, true, true]);
    expect([allows(ci, "read", "b"), allows(ci, "deploy", "b"), allows(ci, "invoke", "b")]).toEqual([
      false,
      false,
      false,
    ]);
    const caller = principalOf("caller", "1", ["invoke:a"]);
    expect([allows(caller, "read", "a"), allows(caller, "status", "a"), allows(caller, "invoke", "a")]).toEqual([
      false,
      true,
      true,
    ]);
    const reader = principalOf("reader", "2", ["read"]);
    expect([allows(reader, "read", "z"), allows(reader, "deploy", "z"), allows(reader, "invoke", "z")]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe("namespaces and control routes", () => {
  it("a deploy token of team-a deploys there by default, and reads, redeploys and removes its functions", async () => {
    const ci = as("deployA");
    const deployed = await ci.deploy("a-new", { code: ECHO_AUTH });
    expect(deployed.namespace).toBe("team-a");
    expect((await ci.get("a-new")).namespace).toBe("team-a");
    await ci.deploy("a-new", { code: `${ECHO_AUTH}\n// v2` });
    expect((await ci.get("a-new")).namespace).toBe("team-a");
    await ci.remove("a-new");
    expect(await refusal(ci.get("a-new"))).toMatchObject({ status: 404, code: "ERR_FUNCTION_NOT_FOUND" });
  });

  it("a deploy token of team-a cannot read, deploy over, remove or invoke team-b's functions, nor list them", async () => {
    const ci = as("deployA");
    const forbidden = { status: 403, code: "ERR_FORBIDDEN" };
    expect(await refusal(ci.get("b-fn"))).toMatchObject({
      ...forbidden,
      message: expect.stringMatching(/read:team-b/),
    });
    expect(await refusal(ci.deploy("b-fn", { code: ECHO_AUTH }))).toMatchObject({
      ...forbidden,
      message: expect.stringMatching(/deploy:team-b/),
    });
    expect(await refusal(ci.deploy("b-new", { code: ECHO_AUTH, namespace: "team-b" }))).toMatchObject(forbidden);
    expect(await refusal(ci.remove("b-fn"))).toMatchObject(forbidden);
    for (const sub of ["versions", "secrets", "logs"]) {
      const res = await cluster.gateway.handle(request("GET", `/v1/functions/b-fn/${sub}`, tokens.deployA));
      expect(errorOf(res)).toMatchObject(forbidden);
    }
    const invoked = await ci.invoke("b-priv", { token: tokens.deployA });
    expect(invoked.status).toBe(403);
    expect((await ci.list()).map((f) => f.name).sort()).toEqual(["a-priv", "a-pub"]);
    // And the record is untouched.
    expect((await admin.get("b-fn")).namespace).toBe("team-b");
  });

  it("moving a function to another namespace needs admin", async () => {
    const ci = as("deployA");
    expect(await refusal(ci.deploy("a-pub", { code: ECHO_AUTH, namespace: "team-b" }))).toMatchObject({
      status: 403,
      code: "ERR_FORBIDDEN",
      message: expect.stringMatching(/move function a-pub from namespace team-a to team-b.*admin/),
    });
    await admin.deploy("mover", { code: ECHO_AUTH, namespace: "team-a" });
    expect((await admin.deploy("mover", { code: ECHO_AUTH, namespace: "team-b" })).namespace).toBe("team-b");
    // Not named: it stays where it is, for admin as for anyone.
    expect((await admin.deploy("mover", { code: ECHO_AUTH })).namespace).toBe("team-b");
    await admin.remove("mover");
  });

  it("a read token reads every namespace and the status, but cannot deploy, remove or manage tokens", async () => {
    const reader = as("reader");
    expect((await reader.list()).map((f) => f.name)).toEqual(expect.arrayContaining(["a-pub", "b-fn", "b-priv"]));
    expect((await reader.get("b-fn")).name).toBe("b-fn");
    expect((await reader.status()).leader).toBeTruthy();
    expect(await refusal(reader.deploy("a-pub", { code: ECHO_AUTH }))).toMatchObject({ status: 403 });
    expect(await refusal(reader.deploy("brand-new", { code: ECHO_AUTH }))).toMatchObject({ status: 403 });
    expect(await refusal(reader.remove("a-pub"))).toMatchObject({ status: 403 });
    expect(await refusal(reader.createToken("escalate", ["admin"]))).toMatchObject({
      status: 403,
      message: expect.stringMatching(/scope admin/),
    });
    expect((await reader.invoke("b-priv", { token: tokens.reader })).status).toBe(403);
  });

  it("read:<ns> reads one namespace: no status, no other namespace, no listing across functions", async () => {
    const readA = as("readA");
    expect((await readA.list()).map((f) => f.name).sort()).toEqual(["a-priv", "a-pub"]);
    expect(await refusal(readA.get("b-fn"))).toMatchObject({ status: 403 });
    expect(await refusal(readA.status())).toMatchObject({ status: 403, message: expect.stringMatching(/scope read/) });
    expect(await refusal(readA.deadLetters())).toMatchObject({ status: 403 });
    expect((await readA.deadLetters("a-pub")).deadLetters).toEqual([]);
    expect(await refusal(readA.deadLetters("b-fn"))).toMatchObject({ status: 403 });
    expect(await refusal(readA.triggers())).toMatchObject({ status: 403 });
    expect(await readA.triggers("a-pub")).toEqual([]);
    // An unknown function is a 404 to whoever could not have read it anyway.
    expect(await refusal(readA.get("nowhere"))).toMatchObject({ status: 404, code: "ERR_FUNCTION_NOT_FOUND" });
  });

  it("triggers, dead-letter replays and admin routes are judged by namespace or need admin", async () => {
    const ci = as("deployA");
    expect(await refusal(ci.addTrigger("b-fn", { cron: "* * * * *" }))).toMatchObject({ status: 403 });
    const trigger = await ci.addTrigger("a-pub", { cron: "0 0 1 1 *" });
    expect(await refusal(as("readA").removeTrigger(trigger.id))).toMatchObject({ status: 403 });
    await ci.removeTrigger(trigger.id);
    expect(await refusal(ci.replayDeadLetters("b-fn"))).toMatchObject({ status: 403 });
    expect(await ci.replayDeadLetters("a-pub")).toBe(0);
    for (const [method, target] of [
      ["GET", "/v1/tokens"],
      ["POST", "/v1/tokens"],
      ["DELETE", "/v1/tokens/0123456789ab"],
      ["GET", "/v1/namespaces"],
      ["PUT", "/v1/namespaces/team-a"],
      ["POST", "/v1/nodes/node-1/drain"],
      ["POST", "/v1/backup"],
      ["POST", "/v1/restore"],
      ["GET", "/v1/not-a-route"],
    ] as const) {
      const res = await cluster.gateway.handle(request(method, target, tokens.deployA, {}));
      expect(errorOf(res), `${method} ${target}`).toMatchObject({ status: 403, code: "ERR_FORBIDDEN" });
    }
  });

  it("namespaces: create, set, list with usage, remove; refused while owning functions; bad names and quotas are 400", async () => {
    const created = await admin.createNamespace("team-c", { functions: 2 });
    expect(created).toMatchObject({
      name: "team-c",
      quotas: { functions: 2 },
      usage: { functions: 0, bundleBytes: 0 },
    });
    expect(await refusal(admin.createNamespace("team-c"))).toMatchObject({
      status: 409,
      code: "ERR_NAMESPACE_CONFLICT",
    });
    const set = await admin.setNamespace("team-c", { bundleBytes: 1_000_000, functions: null });
    expect(set.quotas).toEqual({ bundleBytes: 1_000_000 });
    await admin.deploy("c-fn", { code: ECHO_AUTH, namespace: "team-c" });
    const listed = (await admin.namespaces()).find((n) => n.name === "team-c");
    expect(listed?.usage.functions).toBe(1);
    expect((await admin.namespaces()).map((n) => n.name)).toContain("default");
    expect(await refusal(admin.removeNamespace("team-c"))).toMatchObject({
      status: 409,
      code: "ERR_NAMESPACE_CONFLICT",
      message: expect.stringMatching(/c-fn/),
    });
    await admin.remove("c-fn");
    await admin.removeNamespace("team-c");
    expect(await refusal(admin.namespace("team-c"))).toMatchObject({ status: 404, code: "ERR_NAMESPACE_NOT_FOUND" });
    expect(await refusal(admin.removeNamespace("default"))).toMatchObject({ status: 400 });
    expect(await refusal(admin.deploy("lost", { code: ECHO_AUTH, namespace: "nowhere" }))).toMatchObject({
      status: 404,
      code: "ERR_NAMESPACE_NOT_FOUND",
    });
    expect(await refusal(admin.deploy("lost", { code: ECHO_AUTH, namespace: "Bad Name" }))).toMatchObject({
      status: 400,
      code: "ERR_INVALID_NAME",
    });
    expect(await refusal(admin.createNamespace("Bad_Name"))).toMatchObject({ status: 400, code: "ERR_INVALID_NAME" });
    for (const quotas of [{ functions: -1 }, { functions: 1.5 }, { function: 3 }, { bundleBytes: "9" }]) {
      expect(await refusal(admin.setNamespace("team-d", quotas as never))).toMatchObject({ status: 400 });
    }
    expect(await refusal(admin.deploy("x", { code: ECHO_AUTH, access: "secret" as never }))).toMatchObject({
      status: 400,
      message: expect.stringMatching(/access must be/),
    });
  });
});

describe("private functions", () => {
  it("need a token with invoke:<ns>, deploy:<ns> or admin (401 without one, 403 out of scope); the function never sees it", async () => {
    expect((await admin.invoke("b-priv")).status).toBe(401);
    expect((await admin.invoke("b-priv", { token: "hth_wrong" })).status).toBe(401);
    expect((await admin.invoke("b-priv", { token: tokens.readA })).status).toBe(403);
    const answer = await admin.invoke("b-priv", { token: tokens.invokeB });
    expect([answer.status, answer.text()]).toEqual([200, "auth=none"]);
    const byAdmin = await admin.invoke("b-priv", { token: TEST_TOKEN });
    expect([byAdmin.status, byAdmin.text()]).toEqual([200, "auth=none"]);
    const byDeployer = await admin.invoke("a-priv", { token: tokens.deployA });
    expect([byDeployer.status, byDeployer.text()]).toEqual([200, "auth=none"]);
    expect((await admin.invoke("a-priv", { token: tokens.invokeB })).status).toBe(403);
    // A public function is anyone's, and its Authorization header is its own.
    const pub = await admin.invoke("a-pub", { headers: { authorization: "Bearer app-token" } });
    expect([pub.status, pub.text()]).toEqual([200, "auth=Bearer app-token"]);
  }, 30_000);

  it("are checked the same way on their own host (host-based routing)", async () => {
    const byHost = new Gateway({ nc: cluster.nc, token: TEST_TOKEN, port: 0, functionsDomain: "fn.test" });
    await byHost.start();
    try {
      const call = (token?: string): HttpRequest => ({
        method: "GET",
        target: "/",
        headers: [
          ["host", "b-priv.fn.test"],
          ...(token ? [["authorization", `Bearer ${token}`] as [string, string]] : []),
        ],
        body: new Uint8Array(),
      });
      expect(errorOf(await byHost.handle(call()))).toMatchObject({ status: 401, code: "ERR_UNAUTHORIZED" });
      expect(errorOf(await byHost.handle(call(tokens.deployA)))).toMatchObject({ status: 403, code: "ERR_FORBIDDEN" });
      const ok = await byHost.handle(call(tokens.invokeB));
      expect([ok.status, bodyText(ok)]).toEqual([200, "auth=none"]);
    } finally {
      await byHost.close();
    }
  }, 30_000);

  it("async invocations of a private function are checked too, stored without the token, and readable by the invoker", async () => {
    const refused = await admin.invoke("b-priv", { headers: { prefer: "respond-async" } });
    expect(refused.status).toBe(401);
    const caller = as("invokeB");
    const accepted = await caller.invokeAsync("b-priv", { token: tokens.invokeB, body: "hi" });
    await expect.poll(async () => (await caller.invocation(accepted.id)).state, { timeout: 15_000 }).toBe("succeeded");
    const done = await caller.invocation(accepted.id);
    const body = done.response && "body" in done.response ? Buffer.from(done.response.body, "base64").toString() : "";
    expect(body).toBe("auth=none");
    expect(await refusal(as("deployA").invocation(accepted.id))).toMatchObject({ status: 403 });
  }, 30_000);

  it("access is a setting: a redeploy keeps it, --public makes the function public again", async () => {
    await admin.deploy("flip", { code: ECHO_AUTH, access: "private" });
    await admin.deploy("flip", { code: `${ECHO_AUTH}\n// v2` });
    expect((await admin.get("flip")).access).toBe("private");
    expect((await admin.invoke("flip")).status).toBe(401);
    await admin.deploy("flip", { code: ECHO_AUTH, access: "public" });
    await expect.poll(async () => (await admin.invoke("flip")).status, { timeout: 15_000 }).toBe(200);
    await admin.remove("flip");
  }, 30_000);
});

describe("deploy-time quotas (checkDeployQuota)", () => {
  it("counts functions and bundle bytes of the namespace, a redeploy replacing its own bundle", async () => {
    const deps = { store: await FunctionStore.open(cluster.nc), namespaces: await NamespaceStore.open(cluster.nc) };
    await admin.createNamespace("team-q", { functions: 1 });
    await checkDeployQuota(deps, { fn: "q-one", namespace: "team-q", bundleBytes: 100 });
    await admin.deploy("q-one", { code: ECHO_AUTH, namespace: "team-q" });
    const held = (await admin.get("q-one")).bundleBytes;
    // Redeploying the one function is no new function.
    await checkDeployQuota(deps, { fn: "q-one", namespace: "team-q", bundleBytes: 100 });
    await expect(checkDeployQuota(deps, { fn: "q-two", namespace: "team-q", bundleBytes: 100 })).rejects.toMatchObject({
      code: "ERR_QUOTA_EXCEEDED",
      message: expect.stringMatching(/functions quota: 1 deployed besides q-two, limit 1/),
    });
    await admin.setNamespace("team-q", { functions: null, bundleBytes: held + 50 });
    await checkDeployQuota(deps, { fn: "q-one", namespace: "team-q", bundleBytes: held + 50 });
    await checkDeployQuota(deps, { fn: "q-two", namespace: "team-q", bundleBytes: 50 });
    await expect(checkDeployQuota(deps, { fn: "q-two", namespace: "team-q", bundleBytes: 51 })).rejects.toMatchObject({
      code: "ERR_QUOTA_EXCEEDED",
      message: expect.stringMatching(
        new RegExp(`bundleBytes quota: ${held} bytes held besides q-two, \\+ 51 = ${held + 51}, limit ${held + 50}`),
      ),
    });
    await expect(checkDeployQuota(deps, { fn: "x", namespace: "nowhere", bundleBytes: 1 })).rejects.toMatchObject({
      code: "ERR_NAMESPACE_NOT_FOUND",
    });
    await checkDeployQuota(deps, { fn: "x", namespace: "default", bundleBytes: 1 });
    await admin.remove("q-one");
  });
});

describe("the CLI", () => {
  const echo = fileURLToPath(new URL("./fixtures/echo.ts", import.meta.url));
  const env = (token = TEST_TOKEN) => ({
    HEARTH_URL: cluster.gateway.url,
    HEARTH_TOKEN: token,
    HEARTH_HOME: "/nonexistent",
  });
  const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");

  it("creates, lists and revokes tokens; manages namespaces; deploys privately into a namespace and invokes with --auth", async () => {
    const ns = await runCli(["namespaces", "create", "team-cli", "--functions", "3", "--json"], env());
    expect(ns.code, ns.stderr).toBe(0);
    expect(lastJson(ns.stdout)).toMatchObject({ name: "team-cli", quotas: { functions: 3 } });
    const set = await runCli(
      ["namespaces", "set", "team-cli", "--functions", "none", "--bundle-bytes", "5000000"],
      env(),
    );
    expect(set.stdout).toMatch(/Namespace team-cli: bundleBytes 5000000/);
    const created = await runCli(["tokens", "create", "--name", "ci", "--scope", "deploy:team-cli"], env());
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim().split("\n").at(-1) ?? "";
    expect(token).toMatch(/^hth_/);
    const ls = await runCli(["tokens", "ls", "--json"], env());
    const listed = lastJson(ls.stdout).tokens.find((t: { name: string }) => t.name === "ci");
    expect(listed.scopes).toEqual(["deploy:team-cli"]);
    expect(ls.stdout).not.toContain(token);

    const deployed = await runCli(["deploy", echo, "--name", "cli-private", "--private", "--json"], env(token));
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(lastJson(deployed.stdout)).toMatchObject({ namespace: "team-cli", access: "private" });
    const anonymous = await runCli(["invoke", "cli-private"], env(token));
    expect(anonymous.code).toBe(1);
    const invoked = await runCli(["invoke", "cli-private", "--auth", "--json"], env(token));
    expect(invoked.code, invoked.stderr).toBe(0);
    expect(JSON.parse(lastJson(invoked.stdout).body).headers.authorization).toBeUndefined();
    const moved = await runCli(["deploy", echo, "--name", "cli-private", "--namespace", "default"], env(token));
    expect(moved.code).toBe(1);
    expect(moved.stderr).toMatch(/ERR_FORBIDDEN, HTTP 403/);

    const busy = await runCli(["namespaces", "rm", "team-cli"], env());
    expect(busy.stderr).toMatch(/ERR_NAMESPACE_CONFLICT/);
    expect((await runCli(["rm", "cli-private"], env(token))).code).toBe(0);
    expect((await runCli(["namespaces", "rm", "team-cli"], env())).code).toBe(0);
    expect((await runCli(["tokens", "revoke", listed.id], env())).code).toBe(0);
    const after = await runCli(["ls"], env(token));
    expect(after.stderr).toMatch(/ERR_UNAUTHORIZED/);
    const usage = await runCli(["tokens", "create", "--name", "x"], env());
    expect(usage.code).toBe(2);
    const badQuota = await runCli(["namespaces", "set", "team-cli", "--functions", "many"], env());
    expect(badQuota.code).toBe(2);
    const both = await runCli(["deploy", echo, "--name", "x", "--private", "--public"], env());
    expect(both.code).toBe(2);
  }, 60_000);
});
