import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { connect } from "@nats-io/transport-node";

/** Debian installs nats-server in /usr/sbin, which is not on every user's PATH. */
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];
/** Bodies up to 6 MB travel in one message (see LIMITS); nats-server's default is 1 MB. */
export const DEV_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
const READY_TIMEOUT_MS = 10_000;

export const NATS_INSTALL_HINT =
  "nats-server was not found. Install it with `sudo apt-get install nats-server` (Debian/Ubuntu), " +
  "or download it from https://github.com/nats-io/nats-server/releases, or set NATS_URL to a running server " +
  "with JetStream, or HEARTH_NATS_SERVER to the binary's path.";

/** Finds the nats-server binary: HEARTH_NATS_SERVER, then PATH, then the usual sbin folders. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.HEARTH_NATS_SERVER) return env.HEARTH_NATS_SERVER;
  const dirs = [...(env.PATH ?? "").split(delimiter), ...EXTRA_DIRS].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (nats-server cannot report a random port back to us). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface NatsServerOptions {
  /** JetStream data folder (created if missing). */
  readonly dataDir: string;
  /** Defaults to a free port. */
  readonly port?: number;
  readonly binary?: string;
}

/** A running nats-server child process. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** SIGTERM and wait; idempotent. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, for fault tests. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data folder (after stop or kill). */
  restart(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts nats-server with JetStream on 127.0.0.1, on its own port and data folder, and resolves once
 * it accepts connections.
 *
 * @example
 * await using nats = await startNatsServer({ dataDir: mkdtempSync(...) });
 */
export async function startNatsServer(options: NatsServerOptions): Promise<NatsServer> {
  const binary = options.binary ?? findNatsServer();
  if (!binary) throw new Error(NATS_INSTALL_HINT);
  const port = options.port ?? (await freePort());
  mkdirSync(options.dataDir, { recursive: true });
  const configPath = join(options.dataDir, "nats-server.conf");
  writeFileSync(
    configPath,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${DEV_MAX_PAYLOAD_BYTES}`,
      `jetstream { store_dir: ${JSON.stringify(join(options.dataDir, "jetstream"))} }`,
    ].join("\n"),
  );
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const launch = async () => {
    const proc = spawn(binary, ["-c", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 10_000) stderr += chunk.toString();
    });
    child = proc;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    await waitForServer(url, proc, () => stderr);
  };
  const signal = async (sig: NodeJS.Signals) => {
    const proc = child as ChildProcess | null;
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    await exited;
    child = null;
  };

  await launch();
  const server: NatsServer = {
    url,
    port,
    get pid() {
      return (child as ChildProcess | null)?.pid;
    },
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
    restart: async () => {
      await signal("SIGTERM");
      await launch();
    },
    [Symbol.asyncDispose]: () => signal("SIGTERM"),
  };
  return server;
}

async function waitForServer(url: string, proc: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited with code ${proc.exitCode}: ${stderr()}`);
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 500 });
      await nc.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  proc.kill("SIGKILL");
  throw new Error(`nats-server did not accept connections on ${url} within ${READY_TIMEOUT_MS} ms: ${stderr()}`);
}
