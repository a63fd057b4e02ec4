/**
 * `npm run bench`: warm hello-world through Hearth's full path, side by side with bare node:http and
 * workerd in one run (method: ../shared/DESIGN.md "Targets"). Servers are pinned to CPU 1, the load
 * generator (wrk) to CPU 0; CPU µs per request sums every server process. Rounds are interleaved
 * and the median is reported. Env: BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_COLD_FUNCTIONS (100).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { buildBundle, freePort, HearthClient } from "../sdk/index.ts";
import { startDevCluster } from "../test/support/cli.ts";
import { cpuMicros, processTree } from "../test/support/proc.ts";
import { writeWorkerdConfig } from "./peers/workerd-config.ts";
import { type LoadResult, runWrk } from "./wrk.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HELLO = join(ROOT, "bench/hello.js");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COLD_FUNCTIONS = Number(process.env.BENCH_COLD_FUNCTIONS ?? 100);
const WARMUP_SECONDS = 3;
/** The workerd release measured in ../shared/research/peers.md. */
const WORKERD_VERSION = "1.20261117.1";

interface Target {
  readonly name: string;
  readonly url: string;
  pids(): number[];
  stop(): Promise<void>;
}

interface Sample extends LoadResult {
  readonly cpuMicrosPerRequest: number;
  /** CPU µs per request by process (its command line, shortened), to see where the time goes. */
  readonly byProcess: Record<string, number>;
}

function processLabel(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const script = argv.find((a) => /\.(ts|js)$/.test(a));
    const role = script ? `${script.split("/").slice(-2).join("/")} ${argv.at(-1) ?? ""}` : (argv[0] ?? "?");
    return role.replace(/^.*\//, "").trim() || String(pid);
  } catch {
    return String(pid);
  }
}

function pinned(command: string, args: string[], options: Parameters<typeof spawn>[2] = {}): ChildProcess {
  return spawn("taskset", ["-c", "1", command, ...args], { stdio: ["ignore", "ignore", "inherit"], ...options });
}

async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
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

async function startNodeHttp(): Promise<Target> {
  const port = await freePort();
  const child = pinned(process.execPath, [join(ROOT, "bench/peers/node-http.ts"), String(port)]);
  const url = `http://127.0.0.1:${port}/`;
  await waitForHttp(url, child);
  return { name: "bare Node `node:http`", url, pids: () => processTree(child.pid as number), stop: stopper(child) };
}

function workerdBinary(): string {
  const bin = join(ROOT, "node_modules/.bin/workerd");
  if (!existsSync(bin)) {
    console.log(`installing workerd@${WORKERD_VERSION} for the benchmark (not saved to package.json)`);
    execFileSync("npm", ["install", "--no-save", `workerd@${WORKERD_VERSION}`], { cwd: ROOT, stdio: "inherit" });
  }
  return bin;
}

async function startWorkerd(): Promise<Target> {
  const port = await freePort();
  const child = pinned(workerdBinary(), ["serve", writeWorkerdConfig(HELLO, port)]);
  const url = `http://127.0.0.1:${port}/`;
  await waitForHttp(url, child);
  return { name: "workerd", url, pids: () => processTree(child.pid as number), stop: stopper(child) };
}

async function startHearth(): Promise<{ target: Target; client: HearthClient }> {
  const cluster = await startDevCluster({}, { cpu: 1 });
  const client = new HearthClient({ url: cluster.url, token: cluster.token });
  await client.deploy("hello", await buildBundle(HELLO));
  const url = `${cluster.url}/fn/hello`;
  await waitForHttp(url, cluster.process);
  return {
    client,
    target: {
      name: "Hearth (gateway → NATS → executor isolate)",
      url,
      pids: () => processTree(cluster.process.pid as number),
      stop: async () => {
        await cluster.stop();
      },
    },
  };
}

async function measure(target: Target): Promise<Sample> {
  await runWrk(target.url, WARMUP_SECONDS);
  const pids = target.pids();
  const before = new Map(pids.map((pid) => [pid, cpuMicros([pid])]));
  const result = await runWrk(target.url, SECONDS);
  const requests = Math.max(1, result.requests);
  const byProcess: Record<string, number> = {};
  let used = 0;
  for (const pid of pids) {
    const delta = cpuMicros([pid]) - (before.get(pid) ?? 0);
    used += delta;
    const label = `${processLabel(pid)} (${pid})`;
    byProcess[label] = Number((delta / requests).toFixed(1));
  }
  return { ...result, cpuMicrosPerRequest: used / requests, byProcess };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};
const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};

/** Deploys N functions, then times each one's first request (no warm isolate anywhere). */
async function measureColdStarts(client: HearthClient, n: number): Promise<number[]> {
  const bundle = await buildBundle(HELLO);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `cold-${i}`;
    await client.deploy(name, { ...bundle, env: { N: String(i) } });
    const started = performance.now();
    const res = await client.invoke(name);
    times.push(performance.now() - started);
    if (res.status !== 200) throw new Error(`cold start of ${name} answered ${res.status}`);
  }
  return times;
}

async function main(): Promise<void> {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") throw new Error("wrk is needed: sudo apt-get install wrk");
  }
  const node = await startNodeHttp();
  const workerd = await startWorkerd();
  const { target: hearth, client } = await startHearth();
  const targets = [node, workerd, hearth];
  const samples = new Map<Target, Sample[]>(targets.map((t) => [t, []]));
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of targets) {
        const sample = await measure(target);
        samples.get(target)?.push(sample);
        console.log(
          `round ${round} ${target.name}: ${sample.requestsPerSecond.toFixed(0)} req/s, p50 ${sample.p50Ms} ms, p99 ${sample.p99Ms} ms, ${sample.cpuMicrosPerRequest.toFixed(1)} µs CPU/req, ${sample.errors} errors`,
        );
        if (target === hearth) console.log("  CPU µs/req by process:", JSON.stringify(sample.byProcess));
      }
    }
    const cold = await measureColdStarts(client, COLD_FUNCTIONS);
    const baseline = median((samples.get(node) ?? []).map((s) => s.requestsPerSecond));
    const rows = targets.map((t) => {
      const s = samples.get(t) ?? [];
      const rps = median(s.map((x) => x.requestsPerSecond));
      return {
        peer: t.name,
        requestsPerSecond: Math.round(rps),
        ratioVsNodeHttp: Number((rps / baseline).toFixed(2)),
        p50Ms: median(s.map((x) => x.p50Ms)),
        p99Ms: median(s.map((x) => x.p99Ms)),
        cpuMicrosPerRequest: Number(median(s.map((x) => x.cpuMicrosPerRequest)).toFixed(1)),
        errors: s.reduce((sum, x) => sum + x.errors, 0),
      };
    });
    const coldStart = {
      functions: cold.length,
      p50Ms: Number(pct(cold, 50).toFixed(1)),
      p99Ms: Number(pct(cold, 99).toFixed(1)),
    };
    const table = [
      "| peer | req/s | ratio vs node:http | p50 ms | p99 ms | server CPU µs/req |",
      "|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.peer} | ${r.requestsPerSecond} | ${r.ratioVsNodeHttp} | ${r.p50Ms} | ${r.p99Ms} | ${r.cpuMicrosPerRequest} |`,
      ),
    ].join("\n");
    console.log(`\nwarm hello world, wrk -t1 -c64, ${SECONDS}s x ${ROUNDS} rounds, medians:\n\n${table}\n`);
    console.log(
      `cold start (deployed, never run → first response, end to end): p50 ${coldStart.p50Ms} ms, p99 ${coldStart.p99Ms} ms over ${coldStart.functions} functions`,
    );
    const resultsDir = join(ROOT, "bench/results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(
      join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
      JSON.stringify(
        { rows, coldStart, samples: [...samples.entries()].map(([t, s]) => ({ peer: t.name, s })) },
        null,
        2,
      ),
    );
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
}

await main();
