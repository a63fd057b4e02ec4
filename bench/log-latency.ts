/**
 * Console line → `hearth logs --follow` output latency. A gateway, scheduler and worker in this
 * process (executors are child processes) on a nats-server of their own; the real CLI follows the
 * function's logs in a child process with `--json`. The function writes one line per invocation
 * carrying `Date.now()` at the console.log call; each line is timed from there to the moment the
 * CLI's stdout delivers it here (both clocks are this machine's, whole milliseconds). Invocations
 * are paced (`RATE` per second) so that the figure is the pipeline's latency, not a queue's.
 *
 *   node bench/log-latency.ts [lines=300] [rate=50]
 */
import { spawn } from "node:child_process";
import { CLI } from "../test/support/cli.ts";
import { startInProcessCluster, TEST_TOKEN } from "../test/support/in-process.ts";
import { percentile } from "./stats.ts";

const LINES = Number(process.argv[2] ?? 300);
const RATE = Number(process.argv[3] ?? 50);

const cluster = await startInProcessCluster();
try {
  await cluster.hearth.deploy("chatty", {
    code: `export default { fetch() { console.log("t=" + Date.now()); return new Response("ok"); } };`,
  });
  await cluster.hearth.invoke("chatty"); // warm: the first line also tells us the CLI is following
  const cli = spawn(process.execPath, [CLI, "logs", "chatty", "--follow", "--tail", "0", "--json"], {
    env: { ...process.env, HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const latencies: number[] = [];
  const warm = Promise.withResolvers<void>();
  let counting = false;
  const allSeen = Promise.withResolvers<void>();
  let buffered = "";
  cli.stdout.on("data", (chunk: Buffer) => {
    const now = Date.now();
    buffered += chunk;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!counting) {
        warm.resolve();
        continue;
      }
      latencies.push(now - Number(/t=(\d+)/.exec(JSON.parse(line).message)?.[1]));
      if (latencies.length === LINES) allSeen.resolve();
    }
  });
  // The CLI is following once a probe's line comes through.
  const probe = setInterval(() => void cluster.hearth.invoke("chatty"), 200);
  await warm.promise;
  clearInterval(probe);
  await new Promise((resolve) => setTimeout(resolve, 500)); // let stray probes land before counting
  counting = true;
  for (let i = 0; i < LINES; i++) {
    void cluster.hearth.invoke("chatty");
    await new Promise((resolve) => setTimeout(resolve, 1000 / RATE));
  }
  await Promise.race([allSeen.promise, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  cli.kill("SIGINT");
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      lines: LINES,
      ratePerSecond: RATE,
      received: latencies.length,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.at(-1),
    }),
  );
} finally {
  await cluster.close();
}
