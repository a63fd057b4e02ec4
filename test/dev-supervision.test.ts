import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { Pool, request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { nextRestartDelayMs } from "../sdk/dev/cluster.ts";
import { buildBundle, freePort, HearthClient, type NatsServer, startNatsServer } from "../sdk/index.ts";
import { CLI, type DevCluster, isAlive, startDevCluster } from "./support/cli.ts";
import { childPids, processTree } from "./support/proc.ts";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Alive and not a zombie waiting for its new parent to reap it. */
function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function get(url: string): Promise<{ status: number; text: string }> {
  try {
    const res = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    return { status: res.statusCode, text: await res.body.text() };
  } catch {
    return { status: 0, text: "" };
  }
}

describe("restart back-off", () => {
  it("starts at 250 ms, doubles to 10 s, and starts over after 30 s up", () => {
    const delays: number[] = [];
    let delay = 0;
    for (let i = 0; i < 8; i++) {
      delay = nextRestartDelayMs(delay, 100);
      delays.push(delay);
    }
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    expect(nextRestartDelayMs(10_000, 30_000)).toBe(250);
  });
});

describe("hearth dev supervises each component", () => {
  let cluster: DevCluster;

  /** The `{"restarted": role}` line hearth dev --json prints once it started `role` again. */
  async function restartOf(role: string, previousPid: number): Promise<{ pid: number; atMs: number }> {
    let found: { pid: number } | undefined;
    await expect
      .poll(
        () => {
          const lines = cluster
            .output()
            .split("\n")
            .filter((line) => line.startsWith('{"restarted"'));
          found = lines
            .map((line) => JSON.parse(line))
            .find((r) => r.restarted === role && r.previousPid === previousPid);
          return found;
        },
        { timeout: 5_000, interval: 20 },
      )
      .toBeDefined();
    return { pid: (found as { pid: number }).pid, atMs: Date.now() };
  }

  async function serves(): Promise<boolean> {
    const res = await get(`${cluster.url}/fn/hello/x`);
    return res.status === 200 && JSON.parse(res.text).method === "GET";
  }

  beforeAll(async () => {
    cluster = await startDevCluster();
    const hearth = new HearthClient({ url: cluster.url, token: cluster.token });
    await hearth.deploy("hello", await buildBundle(fixture("echo.ts")));
    expect(await serves()).toBe(true);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("a killed gateway is restarted alone and serves again within 2 s", async () => {
    const before = { ...cluster.pids };
    const killedAt = Date.now();
    process.kill(before.gateway as number, "SIGKILL");
    await expect
      .poll(async () => (await get(`${cluster.url}/readyz`)).status, { timeout: 2_000, interval: 20 })
      .toBe(200);
    expect(await serves()).toBe(true);
    const servingMs = Date.now() - killedAt;
    const { pid } = await restartOf("gateway", before.gateway as number);
    console.info(`gateway: serving again ${servingMs} ms after SIGKILL`);
    expect(servingMs).toBeLessThan(2_000);
    expect(pid).not.toBe(before.gateway);
    expect(isRunning(pid)).toBe(true);
    // Nothing else was restarted.
    const { gateway: _old, ...others } = before;
    expect(Object.values(others).every((p) => isRunning(p as number))).toBe(true);
  });

  it("a killed worker is restarted with a new pid, and the cluster serves from it", async () => {
    const old = cluster.pids["worker-1"] as number;
    const oldExecutors = childPids(old);
    const killedAt = Date.now();
    process.kill(old, "SIGKILL");
    const { pid, atMs } = await restartOf("worker-1", old);
    console.info(`worker-1: restarted ${atMs - killedAt} ms after SIGKILL`);
    expect(pid).not.toBe(old);
    expect(isRunning(pid)).toBe(true);
    // The old worker's executors leave once they notice it is gone; then only the new one can serve.
    await expect.poll(() => oldExecutors.filter(isRunning), { timeout: 10_000, interval: 50 }).toEqual([]);
    await expect.poll(serves, { timeout: 10_000, interval: 100 }).toBe(true);
    console.info(`worker-1: serving from the new worker ${Date.now() - killedAt} ms after SIGKILL`);
  });

  it("a killed scheduler is restarted, and a new function still gets placed", async () => {
    const old = cluster.pids.scheduler as number;
    const killedAt = Date.now();
    process.kill(old, "SIGKILL");
    const { pid, atMs } = await restartOf("scheduler", old);
    console.info(`scheduler: restarted ${atMs - killedAt} ms after SIGKILL`);
    expect(pid).not.toBe(old);
    expect(isRunning(pid)).toBe(true);
    const hearth = new HearthClient({ url: cluster.url, token: cluster.token });
    await hearth.deploy("after-scheduler", await buildBundle(fixture("echo.ts")));
    await expect
      .poll(async () => (await get(`${cluster.url}/fn/after-scheduler`)).status, { timeout: 10_000, interval: 100 })
      .toBe(200);
  });
});

describe("hearth dev killed outright", () => {
  it("leaves no process behind, nats-server included, within 10 s", async () => {
    const own = await startDevCluster();
    const tree = processTree(own.process.pid as number);
    try {
      expect(tree).toContain(own.pids["nats-server"]);
      expect(tree.length).toBeGreaterThan(Object.keys(own.pids).length); // executors and the watcher too
      const killedAt = Date.now();
      own.process.kill("SIGKILL");
      await expect.poll(() => tree.filter(isRunning), { timeout: 10_000, interval: 50 }).toEqual([]);
      console.info(`hearth dev SIGKILL: all ${tree.length} processes gone after ${Date.now() - killedAt} ms`);
    } finally {
      for (const pid of tree.filter(isRunning)) process.kill(pid, "SIGKILL");
      await own.stop();
    }
  }, 30_000);
});

const BODY = Buffer.alloc(64 * 1024, "x");

describe("gateway shutdown is bounded", () => {
  let nats: NatsServer;
  const gateways: ChildProcess[] = [];

  beforeAll(async () => {
    nats = await startNatsServer({});
  });

  afterEach(() => {
    // A failed test must not leave its gateway running.
    for (const proc of gateways.splice(0)) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  });

  afterAll(async () => {
    await nats?.stop();
  });

  /** A real gateway process (no IPC: SIGTERM is its only stop). */
  async function startGateway(): Promise<{ url: string; port: number; proc: ChildProcess; exited: Promise<number> }> {
    const port = await freePort();
    const proc = spawn(process.execPath, [CLI, "gateway"], {
      env: { ...process.env, NATS_URL: nats.url, HEARTH_TOKEN: "t", HEARTH_PORT: String(port) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    gateways.push(proc);
    const exited = new Promise<number>((resolve) => proc.once("exit", () => resolve(Date.now())));
    const url = `http://127.0.0.1:${port}`;
    await expect.poll(async () => (await get(`${url}/healthz`)).status, { timeout: 15_000, interval: 50 }).toBe(200);
    return { url, port, proc, exited };
  }

  /**
   * Requests on kept-alive connections, back to back, until `until` settles. Each carries a 64 KB
   * body so that a SIGTERM finds some in the middle of being read, not only between requests.
   */
  async function hammer(url: string, until: Promise<unknown>) {
    let done = false;
    void until.then(() => {
      done = true;
    });
    const pool = new Pool(url, { connections: 4, keepAliveTimeout: 60_000 });
    const seen = { ok: 0, connectionClose: 0, errors: 0, codes: new Set<string>() };
    const loop = async () => {
      for (let i = 0; i < 100_000 && !done; i++) {
        try {
          const res = await pool.request({ path: "/healthz", method: "POST", body: BODY });
          await res.body.dump();
          seen.ok++;
          if (res.headers.connection === "close") seen.connectionClose++;
        } catch (err) {
          seen.codes.add(String((err as { code?: string }).code));
          seen.errors++;
          await new Promise((resolve) => setTimeout(resolve, 10)); // refused: the listener is closed
        }
      }
    };
    const loops = Promise.all(Array.from({ length: 8 }, loop));
    return { seen, finished: loops.then(() => pool.destroy()) };
  }

  it("after SIGTERM, busy keep-alive clients get Connection: close and the gateway exits within 10 s", async () => {
    const gw = await startGateway();
    const timeout = new Promise((resolve) => setTimeout(resolve, 12_000));
    const { seen, finished } = await hammer(gw.url, Promise.race([gw.exited, timeout]));
    await expect.poll(() => seen.ok, { timeout: 5_000 }).toBeGreaterThan(200);
    const termAt = Date.now();
    gw.proc.kill("SIGTERM");
    const exitedAt = await Promise.race([gw.exited, timeout.then(() => Number.NaN)]);
    await finished;
    if (Number.isNaN(exitedAt)) gw.proc.kill("SIGKILL");
    console.info(`gateway under keep-alive load: exited ${exitedAt - termAt} ms after SIGTERM`, seen);
    expect(exitedAt - termAt).toBeLessThan(10_000);
    expect(gw.proc.exitCode).toBe(0);
    expect(seen.connectionClose).toBeGreaterThan(0);
    // Refused once the listener closed, but nothing already sent was reset.
    expect([...seen.codes].filter((code) => code !== "ECONNREFUSED")).toEqual([]);
  }, 30_000);

  it("idle connections close after a grace, a request finished after SIGTERM gets Connection: close, one stalled past the deadline is cut", async () => {
    const gw = await startGateway();
    const idle = rawSocket(gw.port);
    idle.socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    await expect.poll(() => idle.data(), { timeout: 2_000 }).toContain('{"ok":true}');
    expect(idle.data()).toMatch(/connection: keep-alive/i);
    // Headers and part of a body: a request still arriving when the SIGTERM comes.
    const late = rawSocket(gw.port);
    late.socket.write("POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n\r\n0123456789");
    // The same, but its body never comes: the socket stays busy, never idle.
    const stalled = rawSocket(gw.port);
    stalled.socket.write("POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789");
    await new Promise((resolve) => setTimeout(resolve, 200));

    const termAt = Date.now();
    gw.proc.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 100));
    late.socket.write("0123456789");
    await late.closed;
    expect(late.data()).toMatch(/^HTTP\/1\.1 200 .*\r\nconnection: close\r\n/is);
    expect(await connectionRefused(gw.port)).toBe(true); // no longer accepting
    const idleClosedMs = (await idle.closed) - termAt;
    expect(gw.proc.exitCode).toBe(null); // still waiting for the stalled request
    const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(Number.NaN), 12_000));
    const exitedAt = await Promise.race([gw.exited, timeout]);
    if (Number.isNaN(exitedAt)) gw.proc.kill("SIGKILL");
    const stalledClosedMs = (await stalled.closed) - termAt;
    console.info(
      `gateway closing: idle connection closed after ${idleClosedMs} ms, stalled request cut after ${stalledClosedMs} ms, exited after ${exitedAt - termAt} ms`,
    );
    expect(idleClosedMs).toBeLessThan(2_000);
    expect(exitedAt - termAt).toBeLessThan(10_000);
    expect(gw.proc.exitCode).toBe(0);
  }, 30_000);
});

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

/** A plain TCP connection: what was received, and when it closed. */
function rawSocket(port: number): { socket: Socket; data(): string; closed: Promise<number> } {
  const socket = connect(port, "127.0.0.1");
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString();
  });
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
  return { socket, data: () => received, closed };
}
