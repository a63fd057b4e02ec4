import { fileURLToPath } from "node:url";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { buildBundle, HearthClient } from "../sdk/index.ts";
import { type DevCluster, isAlive, startDevCluster } from "./support/cli.ts";

/**
 * Ctrl-C in a terminal sends SIGINT to every process of the foreground process group at once:
 * `hearth dev`, its components, their executors. Each test starts `hearth dev` as the leader of its
 * own group and signals the whole group, as the terminal does.
 */
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const ERROR_LEVEL = 50;

let cluster: DevCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** SIGINT to the whole process group of `hearth dev`; resolves with how `hearth dev` exited. */
async function ctrlC(dev: DevCluster): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    dev.process.once("exit", (code, signal) => resolve({ code, signal })),
  );
  process.kill(-(dev.process.pid as number), "SIGINT");
  return exited;
}

/** The pino records among the lines `hearth dev` printed (its own result lines are JSON too, without a level). */
function recordsIn(output: string): { level: number; component: string; msg: string }[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith('{"level"'))
    .map((line) => JSON.parse(line));
}

describe("Ctrl-C stops hearth dev cleanly", () => {
  it("with JSON logs: every component shuts down, nothing is logged at error level, and no process is left", async () => {
    cluster = await startDevCluster({ HEARTH_LOG_LEVEL: "info" }, { processGroup: true });
    const pids = Object.values(cluster.pids);
    expect(await ctrlC(cluster)).toEqual({ code: 0, signal: null });
    const records = recordsIn(cluster.output());
    // The records were captured: each component said it was shutting down.
    const shuttingDown = records.filter((r) => r.msg === "shutting down").map((r) => r.component);
    expect(shuttingDown.sort()).toEqual(["gateway", "scheduler", "worker"]);
    expect(records.filter((r) => r.level >= ERROR_LEVEL)).toEqual([]);
    // nats-server too: it is out of the terminal's group, so `hearth dev` stops it after the others.
    await expect.poll(() => pids.filter(isAlive), { timeout: 5_000, interval: 50 }).toEqual([]);
  });

  it("with pretty logs: an executor's line names its worker and the invocation, and the last lines are printed", async () => {
    cluster = await startDevCluster({ HEARTH_LOG_LEVEL: "info", HEARTH_LOG_FORMAT: "pretty" }, { processGroup: true });
    const hearth = new HearthClient({ url: cluster.url, token: cluster.token });
    await hearth.deploy("hello", await buildBundle(fixture("echo.ts")));
    const res = await request(`${cluster.url}/fn/hello/x`);
    await res.body.dump();
    const invocationId = String(res.headers["x-hearth-id"]);
    // echo.ts logs `console.log("echo", method, path)`: the executor copies it into its process log.
    const consoleLine = new RegExp(
      String.raw`^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker-1/executor\[\d+\] hello \[[0-9a-f]{7}\] ${invocationId.slice(-8)} echo GET /x \{"source":"console","consoleLevel":"log"\}$`,
      "m",
    );
    await expect.poll(() => cluster?.output(), { timeout: 5_000, interval: 50 }).toMatch(consoleLine);

    expect(await ctrlC(cluster)).toEqual({ code: 0, signal: null });
    const output = cluster.output();
    // Rendered, not raw: no pino JSON reaches the terminal.
    expect(output).not.toMatch(/^\{"level"/m);
    expect(output).not.toMatch(/^\[[\d:.]+\] (ERROR|FATAL):/m);
    // Printed after the worker drained, just before it exited: `hearth dev` waited for its last lines.
    expect(output).toMatch(/^\[[\d:.]+\] INFO: worker-1 worker stopped$/m);
  });
});
