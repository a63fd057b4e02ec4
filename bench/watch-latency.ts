/**
 * Save → new code answering, for `hearth deploy --watch`. A gateway, scheduler and worker in this
 * process (executors are child processes) on a nats-server of their own; the real CLI watches a
 * two-function project in a temp folder. Each round rewrites one function's source and times, from
 * the write, (a) the moment an invocation first answers with the new text and (b) the CLI's own
 * "done N ms after the save" line.
 *
 *   node bench/watch-latency.ts [saves=10]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI } from "../test/support/cli.ts";
import { startInProcessCluster, TEST_TOKEN } from "../test/support/in-process.ts";
import { percentile } from "./stats.ts";

const SAVES = Number(process.argv[2] ?? 10);
const source = (text: string) => `export default { fetch: () => new Response(${JSON.stringify(text)}) };`;

const dir = mkdtempSync(join(tmpdir(), "hearth-watch-bench-"));
const cluster = await startInProcessCluster();
try {
  writeFileSync(
    join(dir, "hearth.toml"),
    '[[functions]]\nname = "w"\nentry = "w.ts"\n\n[[functions]]\nname = "other"\nentry = "o.ts"\n',
  );
  writeFileSync(join(dir, "w.ts"), source("v0"));
  writeFileSync(join(dir, "o.ts"), source("other"));
  const cli = spawn(process.execPath, [CLI, "deploy", "--watch"], {
    cwd: dir,
    env: { ...process.env, HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  cli.stdout.on("data", (d: Buffer) => {
    stdout += d;
  });
  const until = async (check: () => boolean | Promise<boolean>) => {
    const deadline = Date.now() + 15_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  await until(() => stdout.includes("Watching"));
  await cluster.hearth.invoke("w"); // warm
  const answered: number[] = [];
  const reported: number[] = [];
  for (let i = 1; i <= SAVES; i++) {
    const seen = stdout.length;
    const savedAt = performance.now();
    writeFileSync(join(dir, "w.ts"), source(`v${i}`));
    await until(async () => (await cluster.hearth.invoke("w")).text() === `v${i}`);
    answered.push(performance.now() - savedAt);
    await until(() => /done (\d+) ms after the save/.test(stdout.slice(seen)));
    reported.push(Number(/done (\d+) ms after the save/.exec(stdout.slice(seen))?.[1]));
    await new Promise((resolve) => setTimeout(resolve, 200)); // a quiet gap between saves
  }
  cli.kill("SIGINT");
  const show = (values: number[]) =>
    `p50 ${percentile(values, 50).toFixed(0)} ms, max ${Math.max(...values).toFixed(0)} ms`;
  console.log(`${SAVES} saves: new code answering ${show(answered)}; CLI's "done" line ${show(reported)}`);
} finally {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
