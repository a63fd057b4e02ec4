import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../sdk/index.ts";

export const CLI = fileURLToPath(new URL("../../sdk/cli/main.ts", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the `hearth` CLI to completion (with this Node binary) and captures its output; `input` is its
 * stdin, `cwd` its working directory (where it looks for hearth.toml).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string, cwd?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d;
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface DevCluster {
  url: string;
  natsUrl: string;
  /** `nats://app:<password>@host:port`, as `hearth dev` printed it: the app identity (null under NATS_URL). */
  appNatsUrl: string | null;
  token: string;
  home: string;
  process: ChildProcess;
  /** Every process `hearth dev` started, by role. */
  pids: Record<string, number>;
  /** What the cluster printed so far (for failure messages). */
  output(): string;
  /** SIGTERM to `hearth dev`; resolves with how it exited. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The line `hearth dev --json` prints once it is ready. */
type DevStarted = Pick<DevCluster, "url" | "natsUrl" | "appNatsUrl" | "pids">;

/**
 * Starts `hearth dev --json` as a real process tree, on free ports, in a temp HEARTH_HOME.
 * `cpu` pins the whole tree to one core (taskset), as the benchmark does. `processGroup` starts it as
 * the leader of its own process group, as a shell does: `process.kill(-pid, "SIGINT")` is then a Ctrl-C.
 */
export async function startDevCluster(
  env: NodeJS.ProcessEnv = {},
  options: { cpu?: number; processGroup?: boolean; args?: string[]; cwd?: string } = {},
): Promise<DevCluster> {
  const home = mkdtempSync(join(tmpdir(), "hearth-home-"));
  const token = `test-${Math.random().toString(36).slice(2)}`;
  const port = await freePort();
  const command = [process.execPath, CLI, "dev", "--json", ...(options.args ?? [])];
  if (options.cpu !== undefined) command.unshift("taskset", "-c", String(options.cpu));
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: options.cwd,
    env: {
      ...process.env,
      HEARTH_HOME: home,
      HEARTH_PORT: String(port),
      HEARTH_TOKEN: token,
      HEARTH_LOG_LEVEL: "warn",
      NATS_URL: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.processGroup ?? false,
  });
  let output = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const started = new Promise<DevStarted>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      output += d;
      // Only whole lines: a chunk may end in the middle of the JSON line.
      for (const line of output.split("\n").slice(0, -1)) {
        if (line.startsWith('{"url"')) resolve(JSON.parse(line));
      }
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d;
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`hearth dev exited (code ${code}, signal ${signal}) before it was ready:\n${output}`)),
    );
  });
  // A `hearth dev` that never gets ready must not outlive the test.
  const startup = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const { url, natsUrl, appNatsUrl, pids } = await started.finally(() => clearTimeout(startup));
  return {
    url,
    natsUrl,
    appNatsUrl,
    token,
    home,
    process: child,
    pids,
    output: () => output,
    stop: async () => {
      child.kill("SIGTERM");
      const how = await exited;
      rmSync(home, { recursive: true, force: true });
      return how;
    },
  };
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
