/**
 * Placement throughput: `BENCH_PARTS=placement node bench/run.ts`, or `node bench/placement.ts`.
 *
 * 1. The pure `place()`: one more function (desired 1) onto 3 nodes already holding N = 100 and 1,000
 *    functions (desired 1 each, placed beforehand, so `current` is sticky). Nodes have room for all
 *    (64 GB each; the real ones offer the machine's RAM). Also with 4 executors per node, and the
 *    leader's whole pass (ScalingLoop.tick: collect, decide every function, place, act with a
 *    no-op node client), which is what every cold request's poke runs.
 * 2. End to end on bench/cluster.ts (3 workers × 1 executor, 1 scheduler, 1 gateway process), a fresh
 *    cluster per round: deploy BENCH_PLACEMENT_FUNCTIONS (500) hello-world functions plus 50 more, then
 *    first requests to the 50 one at a time (cold start without queueing), then to the 500 with
 *    BENCH_PLACEMENT_CONCURRENCY (32) at once. Cold placements/s = functions ÷ wall time; latency per
 *    first request, client side. CPU per activation by process shows where the time goes.
 *    BENCH_PLACEMENT_PROFILE=1 also writes a CPU profile of the scheduler (round 1) and prints its
 *    top functions by self time.
 *
 * Env: BENCH_ROUNDS (3), BENCH_PLACEMENT_FUNCTIONS (500), BENCH_PLACEMENT_CONCURRENCY (32), BENCH_PLACEMENT_PROFILE.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Pool } from "undici";
import { type FunctionLoad, type LoadReport, silentLogger, type WorkerHeartbeat } from "../protocol/index.ts";
import type { Assignment, Demand, NodeView } from "../scheduler/index.ts";
import { ClusterView, fixedKeepAlive, place } from "../scheduler/index.ts";
import type { NodeClient } from "../scheduler/node-client.ts";
import { ScalingLoop } from "../scheduler/scaling-loop.ts";
import { cpuMicros } from "../test/support/proc.ts";
import { type BenchCluster, startBenchCluster } from "./cluster.ts";
import { runBounded } from "./load.ts";
import { median, met, percentile, ROOT, saveResults, spread, table } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FUNCTIONS = Number(process.env.BENCH_PLACEMENT_FUNCTIONS ?? 500);
const CONCURRENCY = Number(process.env.BENCH_PLACEMENT_CONCURRENCY ?? 32);
const SEQUENTIAL = 50;
const PROFILE = process.env.BENCH_PLACEMENT_PROFILE === "1";
const HELLO = `export default { fetch() { return new Response("hello"); } };`;

// ---------------------------------------------------------------- pure place()

const nodesOf = (executors: number): NodeView[] =>
  ["n1", "n2", "n3"].map((id) => ({
    id,
    state: "ready",
    memoryMb: 64 * 1024,
    executors: Array.from({ length: executors }, (_, i) => ({ id: `${id}-e${i}` })),
    bundles: new Set(),
  }));

const demandOf = (name: string): Demand => ({ name, desired: 1, memoryMb: 128, digest: `d-${name}` });

/** ms per place() of N + 1 demands over a sticky placement of N: median of 5 runs, each the median of many calls. */
function measurePlace(n: number, executors: number): number[] {
  const nodes = nodesOf(executors);
  const existing = Array.from({ length: n }, (_, i) => demandOf(`fn-${i}`));
  const current: Assignment = place(existing, new Map(), nodes).assignment;
  const demands = [...existing, demandOf("new-fn")];
  const calls = Math.max(5, Math.round(20_000 / n));
  const runOnce = () => {
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      const placement = place(demands, current, nodes);
      times.push(performance.now() - started);
      if (!placement.assignment.has("new-fn")) throw new Error("new-fn not placed");
    }
    return median(times);
  };
  runOnce(); // warm-up
  return Array.from({ length: 5 }, runOnce);
}

/**
 * ms per ScalingLoop.tick with N functions warm (1 isolate each) on 3 nodes × `executors`, ticking
 * every `periodMs` of virtual time for `virtualMs` (the 250 ms ticker, or pokes: every cold request
 * pokes a tick); the last 50 ticks, as 5 medians of 10.
 */
function measureTick(n: number, executors: number, periodMs = 250, virtualMs = 22_500): number[] {
  const view = new ClusterView();
  const nodes = nodesOf(executors);
  let now = 1_000_000;
  const names = Array.from({ length: n }, (_, i) => `fn-${i}`);
  const executorIds = nodes.flatMap((node) => node.executors.map((e) => ({ node: node.id, id: e.id })));
  const held = new Map(executorIds.map((e) => [e.id, [] as string[]]));
  for (const [i, name] of names.entries()) held.get(executorIds[i % executorIds.length]?.id ?? "")?.push(name);
  let seq = 0;
  const report = () => {
    seq++;
    for (const node of nodes) {
      const executors = node.executors.map((e) => ({ id: e.id, pid: 1, functions: held.get(e.id) ?? [] }));
      const beat: WorkerHeartbeat = {
        id: node.id,
        pid: 1,
        state: "ready",
        memoryMb: node.memoryMb,
        functions: executors.flatMap((e) => e.functions),
        executors,
        intervalMs: 500,
      };
      view.observeHeartbeat(beat, now);
      for (const e of executors) {
        const functions: FunctionLoad[] = e.functions.map((name) => ({
          name,
          version: "v",
          inFlight: 0,
          isolates: 1,
          maxIsolates: 1,
          concurrency: 32,
          invocations: seq,
        }));
        const load: LoadReport = { node: node.id, executor: e.id, pid: 1, seq, intervalMs: 500, functions };
        view.observeReport(load, now);
      }
    }
  };
  const nodeClient = { assign: async (_n: string, _f: string, executor: string | undefined) => executor ?? "" };
  const loop = new ScalingLoop({
    view,
    nodes: nodeClient as unknown as NodeClient,
    keepAlive: fixedKeepAlive(600_000),
    log: silentLogger(),
  });
  for (const name of names) {
    loop.setRecord({
      name,
      digest: `d-${name}`,
      bundleBytes: 100,
      version: "v",
      versionId: 1,
      env: {},
      memoryMb: 128,
      timeoutMs: 30_000,
      cpuMs: 50,
      concurrency: 32,
      maxBodyBytes: 1024,
      createdAt: "",
      updatedAt: "",
    });
  }
  report();
  const times: number[] = [];
  const ticks = Math.round(virtualMs / periodMs);
  for (let i = 0; i < ticks; i++) {
    now += periodMs;
    if (i % Math.max(1, Math.round(500 / periodMs)) === 0) report(); // reports every 500 ms
    const started = performance.now();
    loop.tick(now, 1);
    if (i >= ticks - 50) times.push(performance.now() - started);
  }
  return Array.from({ length: 5 }, (_, r) => median(times.slice(r * 10, r * 10 + 10)));
}

// ---------------------------------------------------------------- end to end

interface RoundResult {
  readonly round: number;
  readonly deploysPerSecond: number;
  readonly sequentialMs: number[];
  readonly concurrentMs: number[];
  readonly placementsPerSecond: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
  /** CPU ms per activation by process (the concurrent phase). */
  readonly cpuMsPerActivation: Record<string, number>;
  readonly profileTop?: string[];
}

async function firstRequests(
  cluster: BenchCluster,
  names: readonly string[],
  concurrency: number,
): Promise<{ ms: number[]; wallMs: number; failures: Map<string, number> }> {
  const pool = new Pool(cluster.gateway.url, { connections: concurrency, headersTimeout: 60_000 });
  const failures = new Map<string, number>();
  const started = performance.now();
  const ms = await runBounded(names, concurrency, async (name) => {
    const t = performance.now();
    try {
      const res = await pool.request({ method: "GET", path: `/fn/${name}` });
      const text = await res.body.text();
      if (res.statusCode !== 200) {
        const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? `HTTP ${res.statusCode}`;
        failures.set(code, (failures.get(code) ?? 0) + 1);
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? "transport error";
      failures.set(code, (failures.get(code) ?? 0) + 1);
    }
    return performance.now() - t;
  });
  const wallMs = performance.now() - started;
  await pool.close();
  return { ms, wallMs, failures };
}

/** Top functions by self time over .cpuprofile files, as a share of the non-idle samples. */
function summarizeProfile(files: string[], top = 15): string[] {
  const nodes = files.flatMap(
    (file) =>
      (
        JSON.parse(readFileSync(file, "utf8")) as {
          nodes: { callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
        }
      ).nodes,
  );
  const busy = nodes.filter((n) => n.callFrame.functionName !== "(idle)");
  const total = busy.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
  const bySite = new Map<string, number>();
  for (const n of busy) {
    const { functionName, url, lineNumber } = n.callFrame;
    const site = `${functionName || "(anonymous)"} ${url.replace(/^.*\/main\//, "")}:${lineNumber + 1}`;
    bySite.set(site, (bySite.get(site) ?? 0) + (n.hitCount ?? 0));
  }
  return [...bySite]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([site, hits]) => `${((hits / total) * 100).toFixed(1)}% ${site}`);
}

async function endToEnd(round: number): Promise<RoundResult> {
  const profileDir = join(ROOT, "bench/results/profiles", `placement-${Date.now()}`);
  const profiling = PROFILE && round === 1;
  if (profiling) mkdirSync(profileDir, { recursive: true });
  const profileEnv = (dir: string) => {
    mkdirSync(join(profileDir, dir), { recursive: true });
    return { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(profileDir, dir)}` };
  };
  // Workers pass NODE_OPTIONS on to their executors, so each leaves a profile in workers/.
  const cluster = await startBenchCluster(
    profiling ? { schedulerEnv: profileEnv("scheduler"), workerEnv: profileEnv("workers") } : {},
  );
  let result: Omit<RoundResult, "profileTop">;
  try {
    const names = Array.from({ length: SEQUENTIAL + FUNCTIONS }, (_, i) => `p${round}-${i}`);
    const deployStarted = performance.now();
    await runBounded(names, 8, (name, i) =>
      cluster.gateway.hearth.deploy(name, { code: HELLO, env: { N: String(i) } }),
    );
    const deploysPerSecond = (names.length / (performance.now() - deployStarted)) * 1000;
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // every watcher has every record
    const sequential = await firstRequests(cluster, names.slice(0, SEQUENTIAL), 1);
    const pids = cluster.pids();
    const before = Object.fromEntries(Object.entries(pids).map(([role, p]) => [role, cpuMicros(p)]));
    const concurrent = await firstRequests(cluster, names.slice(SEQUENTIAL), CONCURRENCY);
    const cpuMsPerActivation = Object.fromEntries(
      Object.entries(pids).map(([role, p]) => [
        role,
        Number(((cpuMicros(p) - (before[role] ?? 0)) / 1000 / FUNCTIONS).toFixed(2)),
      ]),
    );
    const failures = new Map([...sequential.failures]);
    for (const [code, n] of concurrent.failures) failures.set(code, (failures.get(code) ?? 0) + n);
    result = {
      round,
      deploysPerSecond,
      sequentialMs: sequential.ms,
      concurrentMs: concurrent.ms,
      placementsPerSecond: (FUNCTIONS / concurrent.wallMs) * 1000,
      failed: [...failures.values()].reduce((a, b) => a + b, 0),
      failures: Object.fromEntries(failures),
      cpuMsPerActivation,
    };
  } finally {
    await cluster.close();
  }
  if (!profiling) return result;
  const profiles = (dir: string) =>
    readdirSync(join(profileDir, dir))
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(profileDir, dir, f));
  const executors = profiles("workers").filter((f) => readFileSync(f, "utf8").includes("runtime/executor/executor.ts"));
  return {
    ...result,
    profileTop: [
      `scheduler (${profileDir}/scheduler):`,
      ...profiles("scheduler").flatMap((f) => summarizeProfile([f])),
      `executors, ${executors.length} profiles merged (${profileDir}/workers):`,
      ...summarizeProfile(executors),
    ],
  };
}

export async function runPlacement(): Promise<string> {
  const pure = [100, 1_000].flatMap((n) =>
    [1, 4].map((executors) => ({ n, executors, place: measurePlace(n, executors), tick: measureTick(n, executors) })),
  );
  for (const p of pure)
    console.log(`placement pure N=${p.n} × ${p.executors} executors: place ${p.place}, tick ${p.tick}`);
  // The same tick when cold requests poke it every 20 ms for 10 s (50 activations/s).
  const poked = {
    n: 500,
    periodMs: 20,
    virtualMs: 10_000,
    calm: measureTick(500, 1),
    tick: measureTick(500, 1, 20, 10_000),
  };
  console.log(`placement tick N=500 poked every 20 ms for 10 s: ${poked.tick} (calm ${poked.calm})`);
  const rounds: RoundResult[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await endToEnd(round);
    rounds.push(r);
    console.log(
      `placement round ${round}: ${r.placementsPerSecond.toFixed(0)} cold placements/s, p50 ${percentile(r.concurrentMs, 50).toFixed(1)} ms, p99 ${percentile(r.concurrentMs, 99).toFixed(1)} ms, sequential p50 ${percentile(r.sequentialMs, 50).toFixed(1)} ms, ${r.failed} failed, CPU ms/activation ${JSON.stringify(r.cpuMsPerActivation)}`,
    );
  }
  const report = renderPlacement(pure, poked, rounds);
  const file = saveResults("placement", { pure, poked, rounds }, report);
  return `${report}\n\n(saved to ${file})`;
}

function renderPlacement(
  pure: { n: number; executors: number; place: number[]; tick: number[] }[],
  poked: { n: number; periodMs: number; virtualMs: number; calm: number[]; tick: number[] },
  rounds: RoundResult[],
): string {
  const pureRows = pure.map((p) => ({
    "functions held (N)": p.n,
    "executors per node": p.executors,
    "place() ms (N + 1 demands)": spread(p.place, 3),
    "ScalingLoop.tick ms": spread(p.tick, 3),
  }));
  const rps = rounds.map((r) => r.placementsPerSecond);
  const p99 = rounds.map((r) => percentile(r.concurrentMs, 99));
  const roles = Object.keys(rounds[0]?.cpuMsPerActivation ?? {});
  const e2eRows = [
    {
      metric: `cold placements/s, ${CONCURRENCY} concurrent (target ≥ 500)`,
      value: `${spread(rps, 0)} ${met(median(rps) >= 500)}`,
    },
    {
      metric: `first request p50 ms, ${CONCURRENCY} concurrent`,
      value: spread(rounds.map((r) => percentile(r.concurrentMs, 50))),
    },
    {
      metric: `first request p99 ms, ${CONCURRENCY} concurrent (target ≤ 20)`,
      value: `${spread(p99)} ${met(median(p99) <= 20)}`,
    },
    { metric: "first request p50 ms, one at a time", value: spread(rounds.map((r) => percentile(r.sequentialMs, 50))) },
    { metric: "first request p99 ms, one at a time", value: spread(rounds.map((r) => percentile(r.sequentialMs, 99))) },
    {
      metric: "failed first requests",
      value: `${rounds.reduce((s, r) => s + r.failed, 0)} ${JSON.stringify(Object.assign({}, ...rounds.map((r) => r.failures)))}`,
    },
    {
      metric: "deploys/s (control API, 8 concurrent)",
      value: spread(
        rounds.map((r) => r.deploysPerSecond),
        0,
      ),
    },
    ...roles.map((role) => ({
      metric: `CPU ms per activation: ${role}`,
      value: spread(
        rounds.map((r) => r.cpuMsPerActivation[role] ?? Number.NaN),
        2,
      ),
    })),
  ];
  const profile = rounds.find((r) => r.profileTop)?.profileTop;
  return [
    "## Placement: pure place() and the leader's tick, median (min–max) of 5 runs",
    "",
    table(pureRows),
    "",
    `Tick with N = ${poked.n} after ${poked.virtualMs / 1000} s of a poke every ${poked.periodMs} ms (virtual time): ${spread(poked.tick, 2)} ms, against ${spread(poked.calm, 2)} ms at the 250 ms ticker. decideScale keeps every sample of its 10 s window and every decision of its 30 s scale-down window, so its state (and each tick's cost) grows with the poke rate.`,
    "",
    `## Placement end to end: ${FUNCTIONS} cold functions (+${SEQUENTIAL} one at a time first), 3 nodes × 1 executor, ${ROUNDS} rounds (fresh cluster each), median (min–max)`,
    "",
    table(e2eRows),
    ...(profile
      ? ["", "CPU profiles (round 1), top self time as a share of busy samples:", "", ...profile.map((l) => `- ${l}`)]
      : []),
  ].join("\n");
}

if (import.meta.main) console.log(await runPlacement());
