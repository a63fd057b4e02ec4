/**
 * `npm run bench`: Hearth side by side with bare node:http and workerd in one run (method:
 * docs/benchmarks.md). Servers are pinned to CPU 1, the load generator (wrk) to CPU 0; CPU
 * µs per request sums every server process. Rounds are interleaved and medians reported.
 *
 * 1. warm hello world: node:http, workerd, Hearth (full path: gateway → NATS → executor isolate)
 * 2. realistic function, a Hono app echoing 1 KB of JSON: workerd and Hearth
 * 3. the runtime alone: invocations straight to the executor over NATS (no gateway)
 * 4. cold starts: deployed, never run → first response, end to end
 * 5. density: warm idle isolates per GiB of RSS
 * 6. isolation: hello world's p99 while a neighbour on the same worker loops forever, against its baseline
 *
 * Env: BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_COLD_FUNCTIONS (200), BENCH_DENSITY (500),
 * BENCH_PARTS (all of "warm,runtime,cold,density,isolation,keepalive,routing,scaling,placement,async"; e.g.
 * BENCH_PARTS=cold for cold starts alone).
 *
 * 7. keep-alive: the Azure 2019 trace replayed in virtual time against each policy (bench/keepalive-replay.ts, ~5 s)
 * Cluster parts, on 3 worker processes + a scheduler (3–12 min each at 3 rounds; BENCH_ROUNDS=1 for a
 * quick look): 8. "routing" (bench/routing.ts), 9. "scaling" (bench/scaling.ts), 10. "placement"
 * (bench/placement.ts). Each also runs alone: `node bench/routing.ts`.
 * 11. "async" (bench/async.ts): async invocations (accepted/s and CPU per accept, backlog drain,
 * accept → start latency) and a jetstream:// trigger through queue(), on the `hearth dev` processes;
 * then bench/ingest-latency.ts (needs RabbitMQ and Mosquitto on 127.0.0.1; reported, not fatal, if
 * absent). ~2 min at 3 rounds, so in the default set; alone: BENCH_PARTS=async.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildBundle, HearthClient } from "../sdk/index.ts";
import { startDevCluster } from "../test/support/cli.ts";
import { childPids, cpuMicros, processTree } from "../test/support/proc.ts";
import { runAsync } from "./async.ts";
import { runPlacement } from "./placement.ts";
import { runRouting } from "./routing.ts";
import { measureRuntimeOnly } from "./runtime-only.ts";
import { runScaling } from "./scaling.ts";
import { processLabel, startNodeHttp, startWorkerd, type Target, waitForHttp } from "./targets.ts";
import { type LoadResult, runWrk } from "./wrk.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COLD_FUNCTIONS = Number(process.env.BENCH_COLD_FUNCTIONS ?? 200);
const DENSITY_ISOLATES = Number(process.env.BENCH_DENSITY ?? 500);
const WARMUP_SECONDS = 3;
const DEFAULT_PARTS = "warm,runtime,cold,density,isolation,keepalive,routing,scaling,placement,async";
const PARTS = new Set((process.env.BENCH_PARTS ?? DEFAULT_PARTS).split(","));
/** Parts that run on their own (not against the peers). */
const CLUSTER_PARTS: Record<string, () => Promise<string>> = {
  keepalive: async () =>
    execFileSync(process.execPath, [join(ROOT, "bench/keepalive-replay.ts"), "--seeds=1,2,3,4,5"], {
      encoding: "utf8",
    }),
  scaling: runScaling,
  routing: runRouting,
  placement: runPlacement,
  async: runAsync,
};

interface Sample extends LoadResult {
  readonly cpuMicrosPerRequest: number;
  /** CPU µs per request by process, to see where the time goes. */
  readonly byProcess: Record<string, number>;
}

async function measure(target: Target): Promise<Sample> {
  await runWrk(target.url, WARMUP_SECONDS, { script: target.script });
  const pids = target.pids();
  const before = new Map(pids.map((pid) => [pid, cpuMicros([pid])]));
  const result = await runWrk(target.url, SECONDS, { script: target.script });
  const requests = Math.max(1, result.requests);
  const byProcess: Record<string, number> = {};
  let used = 0;
  for (const pid of pids) {
    const delta = cpuMicros([pid]) - (before.get(pid) ?? 0);
    used += delta;
    if (delta > 0) byProcess[processLabel(pid)] = Number((delta / requests).toFixed(1));
  }
  return { ...result, cpuMicrosPerRequest: used / requests, byProcess };
}

const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
const median = (values: number[]) => sorted(values)[Math.floor(values.length / 2)] as number;
const percentile = (values: number[], p: number) =>
  sorted(values)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] as number;

/** A wrk script that POSTs `body` as JSON. */
function postScript(body: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "hearth-bench-wrk-")), "post.lua");
  writeFileSync(
    file,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  return file;
}

/** Deploys N functions, then times each one's first request (no warm isolate anywhere). */
async function measureColdStarts(client: HearthClient, code: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `cold-${i}`;
    await client.deploy(name, { code, env: { N: String(i) } });
    const started = performance.now();
    const res = await client.invoke(name);
    times.push(performance.now() - started);
    if (res.status !== 200) throw new Error(`cold start of ${name} answered ${res.status}`);
  }
  return times;
}

/**
 * The healthy function's latency (wrk, as for warm) alone, then while 2 callers keep invoking a
 * neighbour on the same worker that loops forever (each call ends at its CPU limit).
 */
async function measureIsolation(
  client: HearthClient,
  healthyUrl: string,
): Promise<{
  baselineP99Ms: number;
  withNeighbourP99Ms: number;
  baselineRps: number;
  withNeighbourRps: number;
  neighbourCalls: number;
  errors: number;
}> {
  await client.deploy("hostile-loop", { code: "export default { fetch() { while (true) {} } };" });
  await runWrk(healthyUrl, WARMUP_SECONDS);
  const baseline = await runWrk(healthyUrl, SECONDS);
  let stop = false;
  let neighbourCalls = 0;
  const neighbour = Promise.all(
    Array.from({ length: 2 }, async () => {
      while (!stop) {
        await client.invoke("hostile-loop");
        neighbourCalls++;
      }
    }),
  );
  const loaded = await runWrk(healthyUrl, SECONDS);
  stop = true;
  await neighbour;
  return {
    baselineP99Ms: baseline.p99Ms,
    withNeighbourP99Ms: loaded.p99Ms,
    baselineRps: Math.round(baseline.requestsPerSecond),
    withNeighbourRps: Math.round(loaded.requestsPerSecond),
    neighbourCalls,
    errors: baseline.errors + loaded.errors,
  };
}

function measureDensity(count: number): { perIsolateMiB: number; per4GiB: number } {
  const out = execFileSync(
    process.execPath,
    ["--no-node-snapshot", "--expose-gc", join(ROOT, "bench/density.ts"), String(count)],
    {
      encoding: "utf8",
    },
  );
  return JSON.parse(out.trim().split("\n").at(-1) as string);
}

function table(title: string, rows: Array<Record<string, string | number>>): string {
  const keys = Object.keys(rows[0] ?? {});
  return [
    `${title}\n`,
    `| ${keys.join(" | ")} |`,
    `|${keys.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${keys.map((k) => r[k]).join(" | ")} |`),
  ].join("\n");
}

async function main(): Promise<void> {
  if ([...PARTS].some((part) => !(part in CLUSTER_PARTS))) await measurePeers();
  for (const [part, run] of Object.entries(CLUSTER_PARTS)) if (PARTS.has(part)) console.log(`\n${await run()}\n`);
}

async function measurePeers(): Promise<void> {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") throw new Error("wrk is needed: sudo apt-get install wrk");
  }
  const hello = await buildBundle(join(ROOT, "bench/hello.js"));
  const hono = await buildBundle(join(ROOT, "bench/hono-echo.ts"));
  const json1k = JSON.stringify({
    items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ["a", "b", "c"] })),
  }).padEnd(1024, " ");
  const post = postScript(json1k);

  const cluster = await startDevCluster({}, { cpu: 1 });
  const client = new HearthClient({ url: cluster.url, token: cluster.token });
  await client.deploy("hello", hello);
  await client.deploy("hono", hono);
  await waitForHttp(`${cluster.url}/fn/hello`, cluster.process);
  await waitForHttp(`${cluster.url}/fn/hono/`, cluster.process);
  const hearthPids = () => processTree(cluster.process.pid as number);
  const hearthHello: Target = {
    name: "Hearth",
    url: `${cluster.url}/fn/hello`,
    pids: hearthPids,
    stop: async () => {},
  };
  const hearthHono: Target = {
    name: "Hearth, Hono echo",
    url: `${cluster.url}/fn/hono/echo`,
    script: post,
    pids: hearthPids,
    stop: async () => {},
  };

  const node = await startNodeHttp(ROOT);
  const workerd = await startWorkerd(ROOT, "workerd", hello.code);
  const workerdHono = await startWorkerd(ROOT, "workerd, Hono echo", hono.code, { path: "/echo", script: post });
  const targets = [node, workerd, hearthHello, workerdHono, hearthHono];
  const samples = new Map<Target, Sample[]>(targets.map((t) => [t, []]));
  try {
    for (let round = 1; PARTS.has("warm") && round <= ROUNDS; round++) {
      for (const target of targets) {
        const sample = await measure(target);
        samples.get(target)?.push(sample);
        console.log(
          `round ${round} ${target.name}: ${sample.requestsPerSecond.toFixed(0)} req/s, p50 ${sample.p50Ms} ms, p99 ${sample.p99Ms} ms, ${sample.cpuMicrosPerRequest.toFixed(1)} µs CPU/req, ${sample.errors} errors`,
        );
        if (target.name.startsWith("Hearth")) console.log("  CPU µs/req by process:", JSON.stringify(sample.byProcess));
      }
    }
    const summary = (t: Target) => {
      const s = samples.get(t) ?? [];
      return {
        rps: median(s.map((x) => x.requestsPerSecond)),
        p50: median(s.map((x) => x.p50Ms)),
        p99: median(s.map((x) => x.p99Ms)),
        cpu: median(s.map((x) => x.cpuMicrosPerRequest)),
        errors: s.reduce((sum, x) => sum + x.errors, 0),
      };
    };
    const baseline = summary(node).rps;
    const warm = PARTS.has("warm");
    const warmRows = (warm ? [node, workerd, hearthHello] : []).map((t) => {
      const s = summary(t);
      return {
        peer: t.name,
        "req/s": Math.round(s.rps),
        "vs node:http": (s.rps / baseline).toFixed(2),
        "p50 ms": s.p50,
        "p99 ms": s.p99,
        "CPU µs/req": s.cpu.toFixed(1),
        errors: s.errors,
      };
    });
    const honoBase = summary(workerdHono);
    const honoRows = (warm ? [workerdHono, hearthHono] : []).map((t) => {
      const s = summary(t);
      return {
        peer: t.name,
        "req/s": Math.round(s.rps),
        "vs workerd": (s.rps / honoBase.rps).toFixed(2),
        "p50 ms": s.p50,
        "p99 ms": s.p99,
        "CPU µs/req": s.cpu.toFixed(1),
        errors: s.errors,
      };
    });

    const workerPid = cluster.pids["worker-1"] as number;
    const record = await client.get("hello");
    const runtime = PARTS.has("runtime")
      ? await measureRuntimeOnly(cluster, record, childPids(workerPid), SECONDS)
      : null;
    const cold = PARTS.has("cold") ? await measureColdStarts(client, hello.code, COLD_FUNCTIONS) : [];
    const density = PARTS.has("density") ? measureDensity(DENSITY_ISOLATES) : null;
    const isolation = PARTS.has("isolation") ? await measureIsolation(client, hearthHello.url) : null;

    const report = [
      PARTS.has("warm") && table(`Warm hello world, wrk -t1 -c64, ${SECONDS} s × ${ROUNDS} rounds, medians:`, warmRows),
      PARTS.has("warm") && table("Realistic function, Hono app echoing 1 KB JSON (POST), same method:", honoRows),
      runtime &&
        `Runtime alone (NATS → executor → isolate → reply, no gateway, 64 in flight): ${runtime.perSecond} invocations/s, executor CPU ${runtime.executorCpuMicrosPerInvocation} µs/invocation`,
      cold.length > 0 &&
        `Cold start (deployed, never run → first response, end to end): p50 ${percentile(cold, 50).toFixed(1)} ms, p99 ${percentile(cold, 99).toFixed(1)} ms over ${cold.length} functions`,
      density &&
        `Density: ${density.perIsolateMiB.toFixed(2)} MiB RSS per warm idle isolate → ${density.per4GiB} per 4 GiB (${DENSITY_ISOLATES} isolates)`,
      isolation &&
        `Isolation: hello world p99 ${isolation.baselineP99Ms} ms alone, ${isolation.withNeighbourP99Ms} ms next to an endless loop (${(isolation.withNeighbourP99Ms / isolation.baselineP99Ms).toFixed(2)}×); ${isolation.baselineRps} → ${isolation.withNeighbourRps} req/s; ${isolation.neighbourCalls} neighbour calls, ${isolation.errors} errors`,
    ]
      .filter(Boolean)
      .join("\n\n");
    console.log(`\n${report}\n`);
    const resultsDir = join(ROOT, "bench/results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(
      join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
      JSON.stringify(
        {
          warmRows,
          honoRows,
          runtime,
          cold,
          density,
          isolation,
          samples: [...samples.entries()].map(([t, s]) => ({ peer: t.name, s })),
        },
        null,
        2,
      ),
    );
  } finally {
    await Promise.all([node, workerd, workerdHono].map((t) => t.stop()));
    await cluster.stop();
  }
}

await main();
