import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { intFromEnv, terminate } from "../../protocol/index.ts";
import { hearthHome, tokenPath } from "../config.ts";
import { type NatsServer, startNatsServer } from "./nats-server.ts";

const CLI_MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface LocalClusterOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Called when a component dies on its own after startup. */
  readonly onComponentExit?: (role: string, code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface LocalCluster {
  readonly url: string;
  readonly token: string;
  /** Where the token was saved, or null when it came from HEARTH_TOKEN. */
  readonly tokenPath: string | null;
  readonly natsUrl: string;
  /** Every child process we started, by role (`nats-server`, `gateway`, `scheduler`, `worker-1`, ...). */
  readonly pids: Readonly<Record<string, number | undefined>>;
  /** SIGTERM to every component, SIGKILL after a grace period; then nats-server. Idempotent. */
  stop(): Promise<void>;
}

/**
 * `hearth dev`: a whole cluster on this machine, each component its own process, as in production.
 * Uses NATS_URL if set, else starts nats-server with JetStream in $HEARTH_HOME/nats.
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const env = options.env ?? process.env;
  const home = hearthHome(env);
  mkdirSync(home, { recursive: true });
  const { token, savedAt } = resolveToken(env);
  const port = intFromEnv(env, "HEARTH_PORT", 8080);
  const workers = intFromEnv(env, "HEARTH_WORKERS", 1);
  const host = env.HEARTH_HOST || "127.0.0.1";

  const nats: NatsServer | null = env.NATS_URL ? null : await startNatsServer({ dataDir: join(home, "nats") }, env);
  const natsUrl = nats?.url ?? (env.NATS_URL as string);
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  // Until startup completes, a dying component fails startLocalCluster itself (waitUntilReady).
  let started = false;

  // The same promise for every caller, so "stopped" always means every child is gone.
  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopping = true;
    stopped ??= (async () => {
      await Promise.all([...children.values()].map((child) => terminate(child, STOP_GRACE_MS)));
      await nats?.stop();
    })();
    return stopped;
  };

  try {
    const roles = ["scheduler", ...Array.from({ length: workers }, (_, i) => `worker-${i + 1}`), "gateway"];
    for (const role of roles) {
      const child = spawn(process.execPath, [CLI_MAIN, role.replace(/-\d+$/, "")], {
        env: { ...env, NATS_URL: natsUrl, HEARTH_TOKEN: token, HEARTH_PORT: String(port), HEARTH_WORKER_ID: role },
        // The IPC channel carries nothing; its closing tells the child that `hearth dev` is gone.
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      children.set(role, child);
      child.once("exit", (code, signal) => {
        if (started && !stopping) options.onComponentExit?.(role, code, signal);
      });
    }
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    await waitUntilReady(url, children);
    const pids: Record<string, number | undefined> = { "nats-server": nats?.pid };
    for (const [role, child] of children) pids[role] = child.pid;
    started = true;
    return { url, token, tokenPath: savedAt, natsUrl, pids, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** HEARTH_TOKEN, else the saved token, else a new one saved (mode 0600) where the CLI looks. */
function resolveToken(env: NodeJS.ProcessEnv): { token: string; savedAt: string | null } {
  if (env.HEARTH_TOKEN) return { token: env.HEARTH_TOKEN, savedAt: null };
  const path = tokenPath(env);
  try {
    const saved = readFileSync(path, "utf8").trim();
    if (saved) return { token: saved, savedAt: path };
  } catch {}
  const token = randomBytes(24).toString("base64url");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return { token, savedAt: path };
}

async function waitUntilReady(url: string, children: Map<string, ChildProcess>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    for (const [role, child] of children) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${role} exited during startup (code ${child.exitCode}, signal ${child.signalCode}); see its log above`,
        );
      }
    }
    try {
      const res = await request(`${url}/readyz`);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`The gateway at ${url} was not ready within ${READY_TIMEOUT_MS} ms`);
}
