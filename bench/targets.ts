import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { freePort } from "../sdk/index.ts";
import { processTree } from "../test/support/proc.ts";
import { writeWorkerdConfig } from "./peers/workerd-config.ts";

/** A server under load: where to send requests and which processes to charge CPU to. */
export interface Target {
  readonly name: string;
  readonly url: string;
  /** wrk Lua script (e.g. a POST body), if the target needs one. */
  readonly script?: string;
  pids(): number[];
  stop(): Promise<void>;
}

/** The workerd release the peer figures were first measured with (docs/benchmarks.md). */
const WORKERD_VERSION = "1.20261117.1";

/** Runs a server command pinned to CPU 1 (the load generator gets CPU 0). */
export function pinned(command: string, args: string[], options: Parameters<typeof spawn>[2] = {}): ChildProcess {
  return spawn("taskset", ["-c", "1", command, ...args], { stdio: ["ignore", "ignore", "inherit"], ...options });
}

export async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: server exited with ${child.exitCode}`);
    try {
      const res = await request(url);
      await res.body.dump();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
}

export async function startNodeHttp(root: string): Promise<Target> {
  const port = await freePort();
  const child = pinned(process.execPath, [join(root, "bench/peers/node-http.ts"), String(port)]);
  const url = `http://127.0.0.1:${port}/`;
  await waitForHttp(url, child);
  return { name: "bare Node `node:http`", url, pids: () => processTree(child.pid as number), stop: stopper(child) };
}

function workerdBinary(root: string): string {
  const bin = join(root, "node_modules/.bin/workerd");
  if (!existsSync(bin)) {
    console.log(`installing workerd@${WORKERD_VERSION} for the benchmark (not saved to package.json)`);
    execFileSync("npm", ["install", "--no-save", `workerd@${WORKERD_VERSION}`], { cwd: root, stdio: "inherit" });
  }
  return bin;
}

/** workerd serving one ES module; `path` and `script` pick the route and the wrk script. */
export async function startWorkerd(
  root: string,
  name: string,
  moduleCode: string,
  options: { path?: string; script?: string } = {},
): Promise<Target> {
  const port = await freePort();
  const child = pinned(workerdBinary(root), ["serve", writeWorkerdConfig(moduleCode, port)]);
  await waitForHttp(`http://127.0.0.1:${port}/`, child);
  return {
    name,
    url: `http://127.0.0.1:${port}${options.path ?? "/"}`,
    script: options.script,
    pids: () => processTree(child.pid as number),
    stop: stopper(child),
  };
}

/** Label of a process for the per-process CPU breakdown: its script and role, or its binary. */
export function processLabel(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const script = argv.find((a) => /\.(ts|js)$/.test(a));
    const role = script ? `${script.split("/").slice(-2).join("/")} ${argv.at(-1) ?? ""}` : (argv[0] ?? "?");
    return role.replace(/^.*\//, "").trim() || String(pid);
  } catch {
    return String(pid);
  }
}
