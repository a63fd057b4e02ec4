import { spawn } from "node:child_process";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOG_STREAM, type LogEntry } from "../protocol/index.ts";
import { type FunctionInfo, HearthApiError } from "../sdk/index.ts";
import { CLI, runCli } from "./support/cli.ts";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/**
 * Function logs end to end: executors (real child processes) publish console lines and errors to
 * HEARTH_LOGS on a real nats-server; the gateway serves them over HTTP; the client and CLI read them.
 */
let cluster: InProcessCluster;
let greeter: FunctionInfo;

const GREETER = `export default { async fetch(req) {
  const url = new URL(req.url);
  if (url.pathname === "/throw") throw new Error("kaboom");
  if (url.pathname === "/long") { console.log("y".repeat(5000)); return new Response("ok"); }
  if (url.pathname === "/many") {
    const n = Number(url.searchParams.get("n")), p = url.searchParams.get("p");
    for (let i = 0; i < n; i++) console.log(p + " " + i);
    return new Response("ok");
  }
  console.log("hello " + url.searchParams.get("q"));
  console.warn("careful");
  console.error("bad");
  return new Response("ok");
} };`;

async function logsOf(
  fn: string,
  options: Parameters<InProcessCluster["hearth"]["logs"]>[1] = {},
): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for await (const entry of cluster.hearth.logs(fn, options)) entries.push(entry);
  return entries;
}

async function invoke(fn: string, path: string): Promise<string> {
  const res = await cluster.hearth.invoke(fn, { path });
  return String(res.headers["x-hearth-id"]);
}

beforeAll(async () => {
  cluster = await startInProcessCluster({
    // A per-function burst of 1,500 lines lets the history test write 1,200 at once; the flood's 2,000 overflow it.
    worker: { executorEnv: { HEARTH_LOG_LINES_PER_SECOND: "100", HEARTH_LOG_BURST: "1500" } },
  });
  greeter = await cluster.hearth.deploy("greeter", { code: GREETER, cpuMs: 2_000 });
  await cluster.hearth.deploy("many", { code: GREETER, cpuMs: 2_000 });
  await cluster.hearth.deploy("flood", {
    code: `export default { fetch() { for (let i = 0; i < 1100; i++) console.log("flood " + i); return new Response("ok"); } };`,
    cpuMs: 2_000,
  });
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

describe("function logs", () => {
  it("console lines and errors appear with their invocation id, version and level", async () => {
    const hello = await invoke("greeter", "/?q=world");
    const thrown = await invoke("greeter", "/throw");
    await expect.poll(async () => (await logsOf("greeter")).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
    const entries = await logsOf("greeter");
    const mine = entries.filter((e) => e.invocationId === hello);
    expect(mine.map((e) => [e.level, e.message, e.kind])).toEqual([
      ["info", "hello world", "console"],
      ["warn", "careful", "console"],
      ["error", "bad", "console"],
    ]);
    for (const e of entries) {
      expect(e).toMatchObject({ fn: "greeter", version: greeter.version });
      if (greeter.versionId !== undefined) expect(e.versionId).toBe(greeter.versionId);
      expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    }
    const error = entries.find((e) => e.invocationId === thrown);
    expect(error).toMatchObject({ kind: "error", level: "error" });
    expect(error?.message).toMatch(/kaboom/);
  });

  it("filters by status, search, level and version", async () => {
    await expect.poll(async () => (await logsOf("greeter", { status: "error" })).length, { timeout: 10_000 }).toBe(1);
    expect((await logsOf("greeter", { status: "ok" })).map((e) => e.message)).toEqual([
      "hello world",
      "careful",
      "bad",
    ]);
    expect((await logsOf("greeter", { search: "care" })).map((e) => e.message)).toEqual(["careful"]);
    expect((await logsOf("greeter", { level: "warn" })).map((e) => e.level)).toEqual(["warn", "error", "error"]);
    expect(await logsOf("greeter", { version: greeter.version.slice(0, 8) })).toHaveLength(4);
    expect(await logsOf("greeter", { version: "zzzzzzzz" })).toEqual([]);
    expect((await logsOf("greeter", { tail: 1 })).map((e) => e.kind)).toEqual(["error"]);
  });

  it("a long line is truncated with a visible marker", async () => {
    const id = await invoke("greeter", "/long");
    await expect
      .poll(async () => (await logsOf("greeter")).some((e) => e.invocationId === id), { timeout: 10_000 })
      .toBe(true);
    const long = (await logsOf("greeter")).find((e) => e.invocationId === id);
    expect(long?.message).toMatch(/^y+…\[truncated \d+ bytes\]$/);
    expect(long?.message.length).toBeLessThan(1024);
  });

  it("keeps the last 1,000 lines of a function, oldest first", async () => {
    await invoke("many", "/many?n=600&p=a");
    await invoke("many", "/many?n=600&p=b");
    await expect.poll(async () => (await logsOf("many", { tail: 1 }))[0]?.message, { timeout: 15_000 }).toBe("b 599");
    const entries = await logsOf("many");
    expect(entries).toHaveLength(1000);
    expect(entries[0]?.message).toBe("a 200");
    expect(entries.at(-1)?.message).toBe("b 599");
  });

  it("never drops silently: the isolate's per-invocation cap and the executor's rate cap leave markers", async () => {
    await Promise.all([invoke("flood", "/"), invoke("flood", "/")]);
    await expect
      .poll(async () => (await logsOf("flood")).filter((e) => /rate limit/.test(e.message)).length, { timeout: 10_000 })
      .toBeGreaterThan(0);
    const dropped = (await logsOf("flood")).filter((e) => e.kind === "dropped");
    expect(dropped.some((e) => /^\[hearth\] 100 console line\(s\)/.test(e.message) && e.invocationId)).toBe(true);
    const rate = dropped.filter((e) => /rate limit/.test(e.message));
    // 2 × 1,001 entries against a burst of 1,500 at 100/s: about 500 refused, all of them counted.
    const refused = rate.reduce((n, e) => n + Number(/^(\d+) lines dropped/.exec(e.message)?.[1]), 0);
    expect(refused).toBeGreaterThan(300);
    expect(rate.every((e) => e.level === "warn" && e.invocationId === null)).toBe(true);
  });

  it("an unknown function is a 404, a bad filter a 400, and no token a 401", async () => {
    await expect(logsOf("nope")).rejects.toMatchObject({ status: 404, code: "ERR_FUNCTION_NOT_FOUND" });
    await expect(logsOf("greeter", { status: "bad" as "ok" })).rejects.toBeInstanceOf(HearthApiError);
    await expect(logsOf("greeter", { status: "bad" as "ok" })).rejects.toMatchObject({ status: 400 });
    const res = await fetch(`${cluster.gateway.url}/v1/functions/greeter/logs`);
    expect(res.status).toBe(401);
  });
});

describe("following a function's logs", () => {
  it("streams new lines and heartbeats, and the consumer goes when the client does", async () => {
    const abort = new AbortController();
    const seen: string[] = [];
    let heartbeats = 0;
    const reading = (async () => {
      for await (const entry of cluster.hearth.logs("greeter", {
        follow: true,
        tail: 1,
        heartbeatMs: 100,
        signal: abort.signal,
        onHeartbeat: () => heartbeats++,
      }))
        seen.push(entry.message);
    })();
    const jsm = await jetstreamManager(cluster.nc);
    const consumers = async () => (await jsm.consumers.list(LOG_STREAM).next()).length;
    await expect.poll(consumers).toBe(1);
    await expect.poll(() => seen.length).toBe(1); // the tail of the history
    await invoke("greeter", "/?q=live");
    await expect.poll(() => seen.slice(1)).toEqual(["hello live", "careful", "bad"]);
    await expect.poll(() => heartbeats, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    abort.abort();
    await reading;
    await expect.poll(consumers, { timeout: 5_000 }).toBe(0);
  });

  it("hearth logs prints the human format, --json the entries, and --follow exits 0 on Ctrl-C", async () => {
    const env = { HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN };
    const human = await runCli(["logs", "greeter", "--status", "error"], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z \[\S+\] ERROR [\w-]{8} ✘ Error: kaboom/m);
    const json = await runCli(["logs", "greeter", "--search", "careful", "--json"], env);
    expect(
      json.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).message),
    ).toEqual(["careful", "careful"]);
    const usage = await runCli(["logs", "greeter", "--status", "maybe"], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/'--status <status>' argument 'maybe' is invalid\. Allowed choices are ok, error/);

    const child = spawn(process.execPath, [CLI, "logs", "greeter", "--follow", "--tail", "1"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await expect.poll(() => stdout, { timeout: 10_000 }).toMatch(/\n$/);
    await invoke("greeter", "/?q=cli");
    await expect.poll(() => stdout, { timeout: 10_000 }).toMatch(/INFO {2}[\w-]{8} hello cli/);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
  });
});
