import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { Writable } from "node:stream";
import { connect, usernamePasswordAuthenticator } from "@nats-io/transport-node";
import { writePrivateFile } from "./nats-identities.ts";
import { type NatsUserConfig, renderAuthorization } from "./nats-permissions.ts";

/** Debian installs nats-server in /usr/sbin, which is not on every user's PATH. */
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];
/** Bodies up to 6 MB travel in one message (see LIMITS); nats-server's default is 1 MB. */
export const DEV_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
const READY_TIMEOUT_MS = 10_000;

/**
 * nats-server cannot watch its parent, so a killed `hearth dev` used to leave it running. This sh
 * prologue ties its lifetime to a pipe with no extra dependency: the shell moves the pipe's read end
 * (our stdin) to fd 3, forks a watcher that blocks reading it, then execs nats-server (`$0`), so the
 * pid we hold is nats-server's. Once every write end is closed (ours, and the copies in `lifeline`
 * holders), whatever killed their processes, `read` hits EOF and the watcher sends SIGTERM to `$$`,
 * which is nats-server. After nats-server exits we write a line instead, which lets the watcher go
 * without a kill (the pid may be reused by then). The watcher is the only reader of the pipe.
 */
const FOLLOW_PARENT_SCRIPT =
  'exec 3<&0 0</dev/null; (if ! read -r _ <&3; then kill -TERM $$; fi) >/dev/null 2>&1 & exec "$0" "$@" 3<&-';

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
  /**
   * With users, the server refuses anonymous clients and each user gets its permissions
   * (nats-permissions.ts); the readiness check connects as the first. Omitted: anyone may connect.
   */
  readonly users?: readonly NatsUserConfig[];
}

/** A running nats-server child process. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /**
   * The write end of the pipe that keeps this nats-server running (see FOLLOW_PARENT_SCRIPT): it gets
   * SIGTERM once we and every process given this stream in its `stdio` are gone. `hearth dev` gives it
   * to its components, so when `hearth dev` is killed they still drain against a live server, and the
   * server goes after the last of them. null while not running.
   */
  readonly lifeline: Writable | null;
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
  const users = options.users ?? [];
  // Mode 0600: with users, the config holds their passwords.
  writePrivateFile(
    configPath,
    [
      `listen: 127.0.0.1:${port}`,
      `max_payload: ${DEV_MAX_PAYLOAD_BYTES}`,
      `jetstream { store_dir: ${JSON.stringify(join(dataDir, "jetstream"))} }`,
      ...(users.length > 0 ? [renderAuthorization(users)] : []),
    ].join("\n"),
  );
  const probe = users[0];
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const launch = async () => {
    const proc = spawn("/bin/sh", ["-c", FOLLOW_PARENT_SCRIPT, binary, "-c", configPath], {
      stdio: ["pipe", "ignore", "pipe"],
      // Its own session, out of the terminal's process group: a Ctrl-C there signals every process of
      // the group at once, and nats-server exits on SIGINT at once, so the components' drains and
      // lease releases failed against a dead server ("shutdown failed"). It stops when its owner
      // says so (stop()), or when the lifeline closes.
      detached: true,
    });
    // EPIPE here only means the watcher is gone already; nothing to do.
    proc.stdin?.on("error", () => {});
    let stderr = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 10_000) stderr += chunk.toString();
    });
    child = proc;
    exited = new Promise((resolve) =>
      proc.once("exit", () => {
        proc.stdin?.end("\n"); // releases the watcher: nats-server is gone, its pid may be reused
        resolve();
      }),
    );
    await waitForServer(url, proc, () => stderr, probe);
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
    get lifeline() {
      const proc = child as ChildProcess | null;
      return proc && proc.exitCode === null && proc.signalCode === null ? proc.stdin : null;
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

async function waitForServer(
  url: string,
  proc: ChildProcess,
  stderr: () => string,
  probe: NatsUserConfig | undefined,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const authenticator = probe && usernamePasswordAuthenticator(probe.user, probe.password);
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited with code ${proc.exitCode}: ${stderr()}`);
    try {
      const nc = await connect({
        servers: url,
        reconnect: false,
        timeout: 500,
        ...(authenticator && { authenticator }),
      });
      await nc.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  proc.kill("SIGKILL");
  throw new Error(`nats-server did not accept connections on ${url} within ${READY_TIMEOUT_MS} ms: ${stderr()}`);
}
