import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle, HearthClient } from "../sdk/index.ts";
import { type DevCluster, isAlive, runCli, startDevCluster } from "./support/cli.ts";
import { childPids } from "./support/proc.ts";

/** `pid (command line)` of each, for a failure message. */
function describePids(pids: number[]): string {
  return pids
    .map((pid) => {
      try {
        return `${pid} (${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()})`;
      } catch {
        return String(pid);
      }
    })
    .join(", ");
}

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
/** Small so the over-limit tests stay fast; the default is 6 MB. */
const BODY_LIMIT = 256 * 1024;

let cluster: DevCluster;
let hearth: HearthClient;

async function deploy(
  name: string,
  file: string,
  options: { env?: Record<string, string>; timeoutMs?: number; cpuMs?: number } = {},
) {
  const bundle = await buildBundle(fixture(file));
  return hearth.deploy(name, { ...bundle, ...options });
}

async function call(path: string, init: Parameters<typeof request>[1] = {}) {
  const res = await request(`${cluster.url}${path}`, init);
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

beforeAll(async () => {
  cluster = await startDevCluster({ HEARTH_MAX_BODY_BYTES: String(BODY_LIMIT) });
  hearth = new HearthClient({ url: cluster.url, token: cluster.token });
});

afterAll(async () => {
  await cluster?.stop();
});

describe("hearth dev: a local cluster of real processes", () => {
  it("reports healthy and ready", async () => {
    expect((await call("/healthz")).status).toBe(200);
    const ready = await call("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ ready: true, reasons: [] });
  });
});

describe("deploy with the SDK, invoke over HTTP", () => {
  it("answers the first (cold) request through the scheduler, with method, url, headers and body intact", async () => {
    const info = await deploy("hello", "echo.ts", { env: { GREETING: "hey" } });
    expect(info.url).toBe(`${cluster.url}/fn/hello`);
    const res = await call("/fn/hello/some/path?x=1", { method: "POST", headers: { "x-a": "b" }, body: "hi" });
    expect(res.status).toBe(200);
    expect(res.headers["x-echo"]).toBe("1");
    expect(res.headers["x-hearth-id"]).toEqual(expect.any(String));
    const seen = res.json();
    expect(seen.method).toBe("POST");
    expect(seen.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/some\/path\?x=1$/);
    expect(seen.body).toBe("hi");
    expect(seen.env).toEqual({ GREETING: "hey" });
    expect(seen.headers).toMatchObject({
      "x-a": "b",
      "x-forwarded-host": new URL(cluster.url).host,
      "x-forwarded-proto": "http",
      "x-forwarded-prefix": "/fn/hello",
      "x-forwarded-for": "127.0.0.1",
    });
    expect(seen.headers.connection).toBeUndefined();
  });

  it("serves warm requests with any method, the status the function chose, and the root path", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"] as const) {
      const res = await call("/fn/hello?status=202", { method, body: method === "GET" ? undefined : "b" });
      expect([method, res.status, res.json().method]).toEqual([method, 202, method]);
      expect(res.json().url).toMatch(/\/\?status=202$/);
    }
  });

  it("normalizes the URL the function sees, and a path that looks like a host stays a path", async () => {
    const dotted = (await call("/fn/hello/a/./b/../c%7e?q=%20")).json();
    expect(new URL(dotted.url).pathname).toBe("/a/c%7e");
    const sneaky = (await call("/fn/hello//evil.test/x")).json();
    expect(new URL(sneaky.url).host).toBe(new URL(cluster.url).host);
    expect(new URL(sneaky.url).pathname).toBe("//evil.test/x");
  });

  it("serves concurrent requests", async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(`/fn/hello/c/${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(results.map((r) => new URL(r.json().url).pathname)).toEqual(results.map((_, i) => `/c/${i}`));
  });

  it("a redeploy takes effect on the next request", async () => {
    await deploy("hello", "echo.ts", { env: { GREETING: "second" } });
    expect((await call("/fn/hello")).json().env).toEqual({ GREETING: "second" });
  });

  it("lists and removes functions; a removed function is 404", async () => {
    await deploy("to-remove", "echo.ts");
    expect((await call("/fn/to-remove")).status).toBe(200);
    expect((await hearth.list()).map((f) => f.name)).toEqual(expect.arrayContaining(["hello", "to-remove"]));
    await hearth.remove("to-remove");
    const gone = await call("/fn/to-remove");
    expect(gone.status).toBe(404);
    expect(gone.json().error.code).toBe("ERR_FUNCTION_NOT_FOUND");
    await expect(hearth.remove("to-remove")).rejects.toMatchObject({ status: 404, code: "ERR_FUNCTION_NOT_FOUND" });
  });

  it("function code cannot reach Node", async () => {
    await deploy("probe", "node-probe.ts");
    expect((await call("/fn/probe")).json()).toEqual({
      process: "undefined",
      require: "undefined",
      Buffer: "undefined",
      ctor: "undefined",
    });
  });
});

describe("errors: a clear code, and nothing crashes", () => {
  it("unknown function → 404 ERR_FUNCTION_NOT_FOUND", async () => {
    const res = await call("/fn/nope/x");
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ error: { code: "ERR_FUNCTION_NOT_FOUND", message: "Function nope is not deployed" } });
  });

  it("function throws → 500 with an error id, and no stack or message from the function", async () => {
    await deploy("thrower", "throws.ts");
    const res = await call("/fn/thrower");
    expect(res.status).toBe(500);
    const { error } = res.json();
    expect(error.code).toBe("ERR_FUNCTION_THREW");
    expect(error.errorId).toEqual(expect.any(String));
    expect(res.headers["x-hearth-id"]).toBe(error.errorId);
    expect(res.text).not.toContain("secret internal detail");
    expect(res.text).not.toContain("at ");
  });

  it("function returns a non-Response → 500 ERR_INVALID_RESPONSE", async () => {
    await deploy("not-response", "not-response.ts");
    const res = await call("/fn/not-response");
    expect(res.status).toBe(500);
    expect(res.json().error).toMatchObject({
      code: "ERR_INVALID_RESPONSE",
      message: expect.stringMatching(/must return a Response/),
    });
  });

  it("an endless loop → 504 ERR_FUNCTION_CPU_TIME, and the function serves (and fails) again after", async () => {
    await deploy("looper", "loop.ts", { cpuMs: 20 });
    const first = await call("/fn/looper", { method: "POST", body: "x" });
    expect(first.status).toBe(504);
    expect(first.json().error.code).toBe("ERR_FUNCTION_CPU_TIME");
    expect((await call("/fn/looper", { method: "POST", body: "x" })).status).toBe(504);
    expect((await call("/fn/hello")).status).toBe(200);
  });

  it("a function that never answers → 504 ERR_FUNCTION_TIMEOUT after its wall-clock timeout", async () => {
    await deploy("hang", "hang.ts", { timeoutMs: 200 });
    const res = await call("/fn/hang");
    expect(res.status).toBe(504);
    expect(res.json().error.code).toBe("ERR_FUNCTION_TIMEOUT");
  });

  it("deploy of a syntax error → 400 with esbuild's message and file:line, and nothing stored", async () => {
    const before = await hearth.list();
    const err = await hearth
      .deploy("broken", { code: "export default {\n  fetch() { return new Response(; }\n};", filename: "broken.js" })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      status: 400,
      code: "ERR_INVALID_BUNDLE",
      message: expect.stringMatching(/^broken\.js:2:\d+: /),
    });
    expect(await hearth.list()).toEqual(before);
    expect((await call("/fn/broken")).status).toBe(404);
  });

  it("a malformed deploy body → 400 naming the field, nothing stored", async () => {
    const bad = await call("/v1/functions/badbody", {
      method: "PUT",
      headers: { authorization: `Bearer ${cluster.token}`, "content-type": "application/json" },
      body: JSON.stringify({ code: "export default {fetch(){}}", memoryMb: "lots" }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "ERR_BAD_REQUEST", message: expect.stringContaining("memoryMb") });
    const notJson = await call("/v1/functions/badbody", {
      method: "PUT",
      headers: { authorization: `Bearer ${cluster.token}` },
      body: "{nope",
    });
    expect(notJson.status).toBe(400);
    expect((await hearth.list()).map((f) => f.name)).not.toContain("badbody");
  });

  it.each([
    [{ minInstances: -1 }, "minInstances"],
    [{ maxInstances: 0 }, "maxInstances"],
    [{ minInstances: 1.5 }, "minInstances"],
    [{ minInstances: 5, maxInstances: 2 }, "minInstances (5) must not be over maxInstances (2)"],
  ])("scaling bounds %j → 400 naming %s, nothing stored", async (bounds, field) => {
    const bad = await call("/v1/functions/badbounds", {
      method: "PUT",
      headers: { authorization: `Bearer ${cluster.token}`, "content-type": "application/json" },
      body: JSON.stringify({ code: "export default {fetch(){ return new Response('x') }}", ...bounds }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "ERR_BAD_REQUEST", message: expect.stringContaining(field) });
    expect((await hearth.list()).map((f) => f.name)).not.toContain("badbounds");
  });

  it.each(["Bad_Name", "-x", "a".repeat(64)])(
    "bad function name %j → 400 ERR_INVALID_NAME on deploy and invoke",
    async (name) => {
      await expect(
        hearth.deploy(name, { code: "export default { fetch() { return new Response('x'); } };" }),
      ).rejects.toMatchObject({
        status: 400,
        code: "ERR_INVALID_NAME",
      });
      const res = await call(`/fn/${name}`);
      expect(res.status).toBe(400);
      expect(res.json().error.code).toBe("ERR_INVALID_NAME");
    },
  );

  it("request body over the limit → 413, and the function still serves normal requests", async () => {
    const res = await call("/fn/hello", { method: "POST", body: "x".repeat(BODY_LIMIT + 1) });
    expect(res.status).toBe(413);
    expect(res.json().error.code).toBe("ERR_PAYLOAD_TOO_LARGE");
    const atLimit = await call("/fn/hello", { method: "POST", body: "y".repeat(BODY_LIMIT) });
    expect(atLimit.status).toBe(200);
    expect(atLimit.json().bodyLength).toBe(BODY_LIMIT);
  });

  it("response body over the limit → 413 ERR_PAYLOAD_TOO_LARGE", async () => {
    const res = await call(`/fn/hello/big?n=${BODY_LIMIT + 1}`);
    expect(res.status).toBe(413);
    expect(res.json().error.code).toBe("ERR_PAYLOAD_TOO_LARGE");
    expect((await call(`/fn/hello/big?n=${BODY_LIMIT}`)).text).toHaveLength(BODY_LIMIT);
  });

  it("control API without a token or with a wrong one → 401", async () => {
    const none = await call("/v1/functions");
    expect(none.status).toBe(401);
    expect(none.json().error.code).toBe("ERR_UNAUTHORIZED");
    const wrong = await call("/v1/functions", { headers: { authorization: "Bearer wrong" } });
    expect(wrong.status).toBe(401);
    await expect(
      new HearthClient({ url: cluster.url, token: "wrong" }).deploy("sneaky", { code: "x" }),
    ).rejects.toMatchObject({
      status: 401,
    });
    expect((await hearth.list()).map((f) => f.name)).not.toContain("sneaky");
  });

  it("unknown routes → 404 ERR_NOT_FOUND", async () => {
    const res = await call("/nothing-here");
    expect(res.status).toBe(404);
    expect(res.json().error.code).toBe("ERR_NOT_FOUND");
  });
});

describe("the hearth CLI against the cluster", () => {
  const env = () => ({ HEARTH_URL: cluster.url, HEARTH_TOKEN: cluster.token });

  it("deploy bundles the file and prints the function URL", async () => {
    const res = await runCli(["deploy", fixture("echo.ts"), "--name", "cli-fn", "--env", "A=1"], env());
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`${cluster.url}/fn/cli-fn`);
  });

  it("invoke prints the body; ls lists; rm removes", async () => {
    const invoked = await runCli(["invoke", "cli-fn", "--data", "hi"], env());
    expect({ code: invoked.code, stderr: invoked.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(invoked.stdout)).toMatchObject({ body: "hi", method: "POST", env: { A: "1" } });
    const ls = await runCli(["ls", "--json"], env());
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout).map((f: { name: string }) => f.name)).toContain("cli-fn");
    const rm = await runCli(["rm", "cli-fn"], env());
    expect([rm.code, rm.stdout.trim()]).toEqual([0, "✔ Removed cli-fn"]);
    const again = await runCli(["invoke", "cli-fn"], env());
    expect(again.code).toBe(1);
  });

  it("deploy --min-instances keeps a function warm with no traffic; status shows it; nodes drain answers", async () => {
    const deployed = await runCli(
      ["deploy", fixture("echo.ts"), "--name", "always-warm", "--min-instances", "1", "--max-instances", "3"],
      env(),
    );
    expect(deployed.code).toBe(0);
    // Placed by the scheduler without a single request.
    await expect
      .poll(
        async () => {
          const status = await runCli(["status", "--json"], env());
          return JSON.parse(status.stdout).functions.find((f: { name: string }) => f.name === "always-warm")?.actual;
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(1);
    const human = await runCli(["status"], env());
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Scheduler leader: \S+ \(epoch \d+\)/);
    expect(human.stdout).toMatch(/always-warm\s+1\s+1/);
    const unknown = await runCli(["nodes", "drain", "no-such-node"], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("ERR_NOT_FOUND");
    const usage = await runCli(["nodes", "undrain", "x"], env());
    expect(usage.code).toBe(2);
  });

  it("deploy of code importing node:fs fails, naming the import, with exit code 1", async () => {
    const res = await runCli(["deploy", fixture("uses-fs.ts"), "--name", "fs"], env());
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/uses-fs\.ts:1:\d+: "node:fs" is a Node\.js built-in module/);
  });

  it("another shell finds the running cluster with no HEARTH_URL (hearth dev records it)", async () => {
    const listed = await runCli(["ls"], { HEARTH_URL: "", HEARTH_HOME: cluster.home, HEARTH_TOKEN: cluster.token });
    expect(listed.code, listed.stderr).toBe(0);
  });

  it("a second hearth dev on the same port fails at once, before it writes a token", async () => {
    const home = mkdtempSync(join(tmpdir(), "hearth-second-"));
    try {
      const second = await runCli(["dev"], {
        HEARTH_HOME: home,
        HEARTH_PORT: new URL(cluster.url).port,
        HEARTH_TOKEN: "",
        NATS_URL: "",
      });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`Port ${new URL(cluster.url).port} on 127.0.0.1 is in use`);
      expect(existsSync(join(home, "token"))).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("an unreachable gateway: the error names the URL it tried", async () => {
    const unreachable = await runCli(["ls"], { HEARTH_URL: "http://127.0.0.1:1", HEARTH_TOKEN: "x" });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("Could not reach the Hearth gateway at http://127.0.0.1:1");
  });

  it("a wrong token is explained, exit code 1; a usage mistake is exit code 2", async () => {
    const denied = await runCli(["ls"], { HEARTH_URL: cluster.url, HEARTH_TOKEN: "wrong" });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("ERR_UNAUTHORIZED");
    const usage = await runCli(["deploy", fixture("echo.ts")], env());
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("missing --name");
  });
});

describe("hearth dev without nats-server", () => {
  it("says how to install it and exits non-zero", async () => {
    const home = mkdtempSync(join(tmpdir(), "hearth-no-nats-"));
    const res = await runCli(["dev"], {
      HEARTH_NATS_SERVER: "/nonexistent/nats-server",
      NATS_URL: "",
      HEARTH_HOME: home,
    });
    rmSync(home, { recursive: true, force: true });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("apt-get install nats-server");
  });
});

describe("shutdown", () => {
  it("SIGTERM stops every process hearth dev started, executors included, and exits 0", async () => {
    const own = await startDevCluster();
    let exit: Awaited<ReturnType<DevCluster["stop"]>> | undefined;
    const pids = Object.values(own.pids);
    const executors = childPids(own.pids["worker-1"] as number);
    try {
      expect(executors.length).toBeGreaterThan(0);
      expect([...pids, ...executors].every(isAlive)).toBe(true);
    } finally {
      exit = await own.stop();
    }
    expect(exit, `hearth dev output:\n${own.output()}`).toEqual({ code: 0, signal: null });
    // A worker waits for its executors before it exits, unless it was cut off (SIGKILL after the
    // grace); then its executors exit on their own when their IPC channel closes, a moment later.
    // Once (under the whole suite) one was still there when hearth dev had exited: the wait below
    // allows for that, and the message names what lingered.
    const lingering = () => [...pids, ...executors].filter(isAlive);
    await expect
      .poll(lingering, {
        timeout: 3_000,
        interval: 100,
        message: `running when hearth dev had exited: ${describePids(lingering())}`,
      })
      .toEqual([]);
  });

  it("if hearth dev is killed outright (SIGKILL), its components notice and exit by themselves", async () => {
    const own = await startDevCluster();
    const { "nats-server": natsPid, ...components } = own.pids;
    const componentPids = [...Object.values(components), ...childPids(own.pids["worker-1"] as number)];
    try {
      own.process.kill("SIGKILL");
      await expect.poll(() => componentPids.filter(isAlive), { timeout: 15_000 }).toEqual([]);
    } finally {
      // nats-server cannot watch its parent; a killed `hearth dev` leaves it (documented), so clean it up here.
      if (natsPid && isAlive(natsPid)) process.kill(natsPid, "SIGTERM");
      await own.stop();
    }
  });
});
