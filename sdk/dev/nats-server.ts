import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
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
  const candidates = env.HEARTH_NATS_SERVER
    ? [env.HEARTH_NATS_SERVER]
    : [...(env.PATH ?? "").split(delimiter), ...EXTRA_DIRS].filter(Boolean).map((dir) => join(dir, "nats-server"));
  return candidates.find(isExecutable) ?? null;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
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
  /** JetStream data folder (created if missing). Omitted: a temp folder, removed by stop(). */
  readonly dataDir?: string;
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
 * const nats = await startNatsServer({}); // temp data folder, removed by stop()
 */
export async function startNatsServer(options: NatsServerOptions, env = process.env): Promise<NatsServer> {
  const binary = options.binary ?? findNatsServer(env);
  if (!binary) throw new Error(NATS_INSTALL_HINT);
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "hearth-nats-"));
  mkdirSync(dataDir, { recursive: true });
  const configPath = join(dataDir, "nats-server.conf");
  writeFileSync(
    configPath,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${DEV_MAX_PAYLOAD_BYTES}`,
      `jetstream { store_dir: ${JSON.stringify(join(dataDir, "jetstream"))} }`,
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
    stop: async () => {
      await signal("SIGTERM");
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    kill: () => signal("SIGKILL"),
    restart: async () => {
      await signal("SIGTERM");
      await launch();
    },
    [Symbol.asyncDispose]: () => server.stop(),
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
