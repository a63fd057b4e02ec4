import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findNatsServer, freePort, NATS_INSTALL_HINT } from "../../sdk/index.ts";

/** A nats-server with a config of the test's own (TLS, tokens, nkeys), no JetStream. */
export interface CustomNatsServer {
  readonly port: number;
  /** Its temp folder, for the test's certificates and key files; removed by stop(). */
  readonly dir: string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts nats-server on a free port of 127.0.0.1 with `config(dir)` (lines after `listen`), written
 * in a temp folder that `prepare(dir)` may fill first (certificates). Resolves once the server logs
 * that it is ready: a NATS-level probe would need the credentials under test.
 */
export async function startCustomNatsServer(
  config: (dir: string) => string[],
  prepare: (dir: string) => void = () => {},
): Promise<CustomNatsServer> {
  const binary = findNatsServer();
  if (!binary) throw new Error(NATS_INSTALL_HINT);
  const dir = mkdtempSync(join(tmpdir(), "hearth-nats-custom-"));
  prepare(dir);
  const port = await freePort();
  const configPath = join(dir, "nats-server.conf");
  writeFileSync(configPath, [`listen: 127.0.0.1:${port}`, ...config(dir)].join("\n"));
  const child: ChildProcess = spawn(binary, ["-c", configPath], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${log}`)), 10_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with code ${code}: ${log}`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  return { port, dir, stop, [Symbol.asyncDispose]: stop };
}
