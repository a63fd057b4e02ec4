import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FunctionRecord,
  FunctionStore,
  type LoadReport,
  parseHeartbeat,
  parseLoadReport,
  SUBJECTS,
} from "../protocol/index.ts";
import { buildExecutorEnv } from "../runtime/index.ts";
import { type NatsServer, startNatsServer } from "../sdk/index.ts";
import { type ComponentProcess, spawnComponent } from "./support/components.ts";
import { storeFunction } from "./support/store-function.ts";

/**
 * Issue 7, item 6: executors run untrusted code, so what a sandbox escape would find there is kept to
 * what the executor needs: no admin token, no worker NATS credentials, and the env of the functions
 * it hosts only. A real `hearth worker` process and its real executor, inspected through /proc.
 */
const random = () => Math.random().toString(36).slice(2, 12);
const ADMIN_TOKEN = `admin-token-${random()}`;
const WORKER_PASSWORD = `worker-password-${random()}`;
const EXECUTOR_PASSWORD = `executor-password-${random()}`;
const WORKER_ID = "w-secrets";

describe("buildExecutorEnv", () => {
  it("keeps what an executor needs and drops the admin token, secret-looking names and the worker's NATS identity", () => {
    const env = buildExecutorEnv(
      {
        PATH: "/usr/bin",
        HOME: "/home/h",
        LC_ALL: "C",
        NODE_OPTIONS: "--max-old-space-size=4096",
        HEARTH_LOG_LEVEL: "warn",
        HEARTH_EGRESS_ALLOW: "10.0.0.0/8",
        NATS_TLS_CA: "/etc/ca.pem",
        HEARTH_TOKEN: "t",
        HEARTH_SECRETS_DB: "s",
        NODE_AUTH_TOKEN: "npm",
        AWS_SECRET_ACCESS_KEY: "aws",
        DATABASE_URL: "postgres://u:p@db/x",
        NATS_USER: "worker",
        NATS_PASSWORD: "wp",
        NATS_TOKEN: "wt",
        NATS_CREDS: "/w.creds",
        NATS_NKEY_SEED_FILE: "/w.nk",
        NATS_INBOX_PREFIX: "_INBOX_worker",
        HEARTH_EXECUTOR_NATS_USER: "executor",
        HEARTH_EXECUTOR_NATS_PASSWORD: "ep",
        HEARTH_EXECUTOR_NATS_CREDS: "/e.creds",
        HEARTH_NODE_ID: "spoofed",
        NATS_URL: "nats://spoofed:1",
      },
      { natsUrl: "nats://worker:wp@127.0.0.1:4222,tls://tok@n2:4222", node: "w1" },
    );
    expect(env).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/h",
      LC_ALL: "C",
      NODE_OPTIONS: "--max-old-space-size=4096",
      HEARTH_LOG_LEVEL: "warn",
      HEARTH_EGRESS_ALLOW: "10.0.0.0/8",
      NATS_TLS_CA: "/etc/ca.pem",
      NATS_USER: "executor",
      NATS_PASSWORD: "ep",
      NATS_CREDS: "/e.creds",
      NATS_URL: "nats://127.0.0.1:4222,tls://n2:4222",
      HEARTH_NODE_ID: "w1",
    });
  });
});

describe("a real worker's executor", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let store: FunctionStore;
  let worker: ComponentProcess;
  let executorPid: number;
  let executorId: string;

  beforeAll(async () => {
    nats = await startNatsServer({});
    nc = await connect({ servers: nats.url });
    store = await FunctionStore.open(nc);
    const beats = nc.subscribe(SUBJECTS.heartbeat);
    worker = spawnComponent("worker", {
      NATS_URL: nats.url,
      HEARTH_WORKER_ID: WORKER_ID,
      HEARTH_EXECUTORS: "1",
      // What `hearth dev` and operators put in a worker's environment.
      HEARTH_TOKEN: ADMIN_TOKEN,
      // A well-formed key (32 bytes, base64): a malformed one stops the worker at start.
      HEARTH_SECRETS_KEY: randomBytes(32).toString("base64"),
      NATS_USER: "worker",
      NATS_PASSWORD: WORKER_PASSWORD,
      HEARTH_EXECUTOR_NATS_USER: "executor",
      HEARTH_EXECUTOR_NATS_PASSWORD: EXECUTOR_PASSWORD,
    });
    // Read /proc only once the executor has reported: between fork and exec it still has the worker's env.
    for await (const msg of beats) {
      const executor = parseHeartbeat(msg.data)?.executors.find((e) => e.pid > 0);
      if (parseHeartbeat(msg.data)?.id === WORKER_ID && executor) {
        executorPid = executor.pid;
        executorId = executor.id;
        break;
      }
    }
    beats.unsubscribe();
  });

  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it("has no admin token and no worker NATS credentials in its environment, only its own", () => {
    const environ = (pid: number) =>
      Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, "utf8")
          .split("\0")
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      );
    // The worker itself has them: the test is about what it hands down.
    expect(environ(worker.pid)).toMatchObject({ HEARTH_TOKEN: ADMIN_TOKEN, NATS_PASSWORD: WORKER_PASSWORD });
    const env = environ(executorPid);
    expect(env.HEARTH_NODE_ID).toBe(WORKER_ID);
    expect(env).toMatchObject({ NATS_URL: nats.url, NATS_USER: "executor", NATS_PASSWORD: EXECUTOR_PASSWORD });
    const raw = readFileSync(`/proc/${executorPid}/environ`, "utf8");
    expect(raw).not.toContain(ADMIN_TOKEN);
    expect(raw).not.toContain(WORKER_PASSWORD);
    expect(Object.keys(env).filter((k) => /TOKEN|SECRET|HEARTH_EXECUTOR_/.test(k))).toEqual([]);
  });

  it("holds the env of the functions it hosts and never receives another function's", async () => {
    const a1 = `a-env-${random()}`;
    const b1 = `b-env-${random()}`;
    const b2 = `b-env-${random()}`;
    const a2 = `a-env-${random()}`;
    await deploy(store, "fn-a", { MARK: a1 });
    await deploy(store, "fn-b", { MARK: b1 });
    expect(await assign("fn-a")).toMatchObject({ ok: true, executor: executorId });

    // Redeploy B (not hosted), then A (hosted): once A's new version is loaded, B's change went by too.
    await deploy(store, "fn-b", { MARK: b2 });
    const a = await deploy(store, "fn-a", { MARK: a2 });
    await nextReport(nc, (r) => r.executor === executorId && hasVersion(r, "fn-a", a.version));
    const held = memoryHolds(executorPid, [a2, b1, b2]);
    expect(held.has(a2)).toBe(true); // the scan sees env that is there
    expect(held.has(b1) || held.has(b2)).toBe(false);

    // Hosting B is what brings its env, and only its current version.
    expect(await assign("fn-b")).toMatchObject({ ok: true, executor: executorId });
    expect(memoryHolds(executorPid, [b2]).has(b2)).toBe(true);

    // Removals reach the executors that host the function.
    await store.delete("fn-a");
    await nextReport(nc, (r) => r.executor === executorId && !r.functions.some((f) => f.name === "fn-a"));
  });

  async function assign(fn: string): Promise<unknown> {
    const command = { type: "assign", epoch: 1, fn, executor: executorId, isolates: 1 };
    return (await nc.request(SUBJECTS.workerCommand(WORKER_ID), JSON.stringify(command), { timeout: 10_000 })).json();
  }
});

function deploy(store: FunctionStore, name: string, env: Record<string, string>): Promise<FunctionRecord> {
  return storeFunction(
    store,
    name,
    `export default { fetch(r, env) { return new Response(env.MARK.length + ""); } };`,
    {
      env,
    },
  );
}

function hasVersion(report: LoadReport, fn: string, version: string): boolean {
  return report.functions.some((f) => f.name === fn && f.version === version);
}

/** Waits for a load report that passes `test` (reports come on change and every 500 ms). */
async function nextReport(nc: NatsConnection, test: (report: LoadReport) => boolean): Promise<void> {
  const reports = nc.subscribe(SUBJECTS.load);
  const timer = setTimeout(() => reports.unsubscribe(), 10_000);
  try {
    for await (const msg of reports) {
      const report = parseLoadReport(msg.data);
      if (report && test(report)) return;
    }
    throw new Error("no such load report within 10 s");
  } finally {
    clearTimeout(timer);
    reports.unsubscribe();
  }
}

/**
 * Which markers occur anywhere in a process's anonymous memory (V8 heaps, isolates, IPC buffers), as
 * one-byte or UTF-16 strings, read through /proc/<pid>/mem. File mappings (code) are skipped.
 */
function memoryHolds(pid: number, markers: readonly string[]): Set<string> {
  const needles = markers.flatMap((m) => [
    { marker: m, bytes: Buffer.from(m, "latin1") },
    { marker: m, bytes: Buffer.from(m, "utf16le") },
  ]);
  const overlap = Math.max(...needles.map((n) => n.bytes.length));
  const chunk = Buffer.alloc(16 * 1024 * 1024);
  const found = new Set<string>();
  const fd = openSync(`/proc/${pid}/mem`, "r");
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (!m?.[3]?.startsWith("r")) continue;
      const path = m[4] ?? "";
      if (path !== "" && !path.startsWith("[heap]") && !path.startsWith("[anon")) continue;
      const end = Number.parseInt(m[2] as string, 16);
      for (let pos = Number.parseInt(m[1] as string, 16); pos < end; pos += chunk.length - overlap) {
        let n: number;
        try {
          n = readSync(fd, chunk, 0, Math.min(chunk.length, end - pos), pos);
        } catch {
          break; // a region that went away or cannot be read
        }
        const view = chunk.subarray(0, n);
        for (const { marker, bytes } of needles) if (!found.has(marker) && view.includes(bytes)) found.add(marker);
        if (pos + n >= end) break;
      }
    }
  } finally {
    closeSync(fd);
  }
  return found;
}
