/**
 * Routing benchmarks: `BENCH_PARTS=routing node bench/run.ts`, or `node bench/routing.ts`.
 *
 * 1. Policy comparison on a real cluster (bench/cluster.ts: 3 workers × 1 executor, 1 scheduler).
 *    A function that sleeps 10 ms, concurrency 32, kept on all three executors by minInstances 3
 *    (written to its record in KV: the control API does not take minInstances yet). One gateway
 *    process per policy; 64 closed-loop HTTP clients for 10 s without skew,
 *    then the same with skew. Skew: n3's executor process gets SIGSTOP for 50 ms of every 250 ms
 *    (a duty-cycle shell loop; plain `kill`s from a separate process, so it does not depend on
 *    this event loop). That is a 20 % slower executor whose slowness comes in stalls, as a noisy
 *    neighbour or a GC pause would, and it is reproducible on a shared 2-core machine, which
 *    `taskset -c 0` is not: the "fast" executors would share the same two busy cores.
 *    In flight per executor: the gateway's own count of requests it sent there and has no reply for
 *    (Endpoint.local, exact with one gateway), sampled every 50 ms in the gateway process.
 *    imbalance = max over executors of their time-averaged in flight ÷ the mean of those averages.
 * 2. Decision cost: Router.pick over 8 executors, 1e6 picks, 5 runs per policy.
 *
 * Env: BENCH_ROUNDS (3), BENCH_ROUTING_SECONDS (10), BENCH_ROUTING_POLICIES (all), BENCH_ROUTING_CLIENTS (64),
 * BENCH_ROUTING_SLEEP_MS (10).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { POLICY_NAMES, type PolicyName } from "../gateway/routing/policies.ts";
import { Router } from "../gateway/routing/router.ts";
import { FunctionStore, type LoadReport, parseLoadReport, SUBJECTS } from "../protocol/index.ts";
import { type BenchCluster, type GatewayProcess, startBenchCluster } from "./cluster.ts";
import { startClosedLoop } from "./load.ts";
import { met, percentile, saveResults, sleep, spread, table, until } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_ROUTING_SECONDS ?? 10);
const POLICIES = (process.env.BENCH_ROUTING_POLICIES?.split(",") ?? [...POLICY_NAMES]) as PolicyName[];
const CLIENTS = Number(process.env.BENCH_ROUTING_CLIENTS ?? 64);
const SAMPLE_MS = 50;
const FN = "route-sleep";
const SLEEP_MS = Number(process.env.BENCH_ROUTING_SLEEP_MS ?? 10);
const SLEEP_FN = `export default { async fetch() { await new Promise((r) => setTimeout(r, ${SLEEP_MS})); return new Response("ok"); } };`;
/** Requests slower than this are stalls, not queueing: e.g. an isolate's timer budget (1,000 fires/s) ran out. */
const STALL_MS = 500;
const SKEWED_NODE = "n3";

interface RunResult {
  readonly policy: PolicyName;
  readonly skew: boolean;
  readonly round: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly failures: Record<string, number>;
  /** Requests slower than STALL_MS. */
  readonly stalls: number;
  /** max ÷ mean of the executors' time-averaged in flight. */
  readonly imbalance: number;
  /** The median over samples of (max ÷ mean) at that instant. */
  readonly instantImbalance: number;
  /** Time-averaged in flight per node. */
  readonly inFlightByNode: Record<string, number>;
  /** Share of the run's invocations per node, from the executors' counters. */
  readonly shareByNode: Record<string, number>;
}

// ---------------------------------------------------------------- decision cost

/** ns per Router.pick over 8 fresh executors, per policy: median and spread of 5 runs of 1e6. */
export function measurePickCost(picks = 1_000_000, runs = 5): Record<PolicyName, number[]> {
  const result = {} as Record<PolicyName, number[]>;
  for (const policy of POLICY_NAMES) {
    const router = new Router({ policy });
    let seq = 0;
    // Reported afresh before each run, so no endpoint goes stale (2 s) during one.
    const report = () => {
      seq++;
      for (let i = 0; i < 8; i++) {
        const load = { name: "f", version: "v", inFlight: (i * 7) % 20, isolates: 1 + (i % 4), maxIsolates: 4 };
        const functions = [{ ...load, concurrency: 32, invocations: seq }];
        router.observe({ node: `n${i}`, executor: `e${i}`, pid: i, seq, intervalMs: 500, functions } as LoadReport);
      }
    };
    let sink = 0;
    const run = () => {
      report();
      const started = process.hrtime.bigint();
      for (let i = 0; i < picks; i++) {
        const e = router.pick("f");
        if (e) sink += e.capacity;
      }
      return Number(process.hrtime.bigint() - started) / picks;
    };
    run(); // warm-up: optimised code, not the interpreter
    result[policy] = Array.from({ length: runs }, run);
    if (sink === 0) throw new Error("no pick");
  }
  return result;
}

// ---------------------------------------------------------------- policy comparison

/** Invocations per executor from the load reports, to see where requests went. */
function followInvocations(cluster: BenchCluster): { read(): Map<string, { node: string; n: number }>; stop(): void } {
  const latest = new Map<string, { node: string; n: number }>();
  const sub = cluster.nc.subscribe(SUBJECTS.load, {
    callback: (err, msg) => {
      const report = err ? null : parseLoadReport(msg.data);
      const load = report?.functions.find((f) => f.name === FN);
      if (report && load) latest.set(report.executor, { node: report.node, n: load.invocations });
    },
  });
  return { read: () => new Map([...latest].map(([k, v]) => [k, { ...v }])), stop: () => sub.unsubscribe() };
}

/** SIGSTOP for 50 ms of every 250 ms, from a shell loop; stop() kills it by pid and resumes the executor. */
function startDutyCycle(pid: number): { stop(): Promise<void> } {
  const loop: ChildProcess = spawn(
    "bash",
    // Ends by itself once this process or the executor is gone, so a crashed run leaves no loop.
    ["-c", `while kill -0 ${process.pid} && kill -STOP ${pid}; do sleep 0.05; kill -CONT ${pid}; sleep 0.2; done`],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) => loop.once("exit", () => resolve()));
  return {
    async stop() {
      loop.kill("SIGTERM");
      await exited;
      process.kill(pid, "SIGCONT");
    },
  };
}

async function endpointsIn(gateway: GatewayProcess, token: string): Promise<number> {
  const res = await fetch(`${gateway.url}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { gateway?: { routes?: Record<string, unknown[]> } };
  return body.gateway?.routes?.[FN]?.length ?? 0;
}

async function measureRun(
  cluster: BenchCluster,
  gateway: GatewayProcess,
  policy: PolicyName,
  skew: boolean,
  round: number,
): Promise<RunResult> {
  const invocations = followInvocations(cluster);
  await sleep(1_100); // idle executors report every 500–950 ms: by now each has
  const before = invocations.read();
  const duty = skew ? startDutyCycle(cluster.executorPid(SKEWED_NODE)) : null;
  gateway.sample(FN, SAMPLE_MS);
  const load = await startClosedLoop({ url: `${gateway.url}/fn/${FN}`, clients: CLIENTS, durationMs: SECONDS * 1000 })
    .done;
  const samples = await gateway.stopSample();
  await duty?.stop();
  await sleep(1_100);
  const after = invocations.read();
  invocations.stop();

  const executors = [...new Set(samples.flatMap((s) => Object.keys(s)))];
  const nodeOf = (e: string) => after.get(e)?.node ?? before.get(e)?.node ?? e;
  const averages = executors.map((e) => samples.reduce((sum, s) => sum + (s[e] ?? 0), 0) / samples.length);
  const mean = averages.reduce((a, b) => a + b, 0) / Math.max(1, averages.length);
  const instant = samples
    .map((s) => {
      const values = executors.map((e) => s[e] ?? 0);
      const m = values.reduce((a, b) => a + b, 0) / values.length;
      return m > 0 ? Math.max(...values) / m : Number.NaN;
    })
    .filter(Number.isFinite);
  const served = [...after].map(([e, v]) => ({ node: v.node, n: v.n - (before.get(e)?.n ?? 0) }));
  const total = served.reduce((sum, s) => sum + s.n, 0);
  return {
    policy,
    skew,
    round,
    rps: load.requestsPerSecond,
    p50Ms: percentile(load.latencyMs, 50),
    p99Ms: percentile(load.latencyMs, 99),
    errors: load.failed,
    failures: Object.fromEntries(load.failures),
    stalls: load.latencyMs.filter((ms) => ms > STALL_MS).length,
    imbalance: mean > 0 ? Math.max(...averages) / mean : Number.NaN,
    instantImbalance: percentile(instant, 50),
    inFlightByNode: Object.fromEntries(executors.map((e, i) => [nodeOf(e), Number((averages[i] ?? 0).toFixed(1))])),
    shareByNode: Object.fromEntries(served.map((s) => [s.node, Number((s.n / Math.max(1, total)).toFixed(3))])),
  };
}

/** Deploys the sleep function and pins it to all three executors with minInstances 3. */
async function deployEverywhere(cluster: BenchCluster): Promise<void> {
  await cluster.gateway.hearth.deploy(FN, { code: SLEEP_FN, concurrency: 32 });
  const store = await FunctionStore.open(cluster.nc);
  const record = await store.get(FN);
  if (!record) throw new Error(`${FN} was not stored`);
  // The bundle is stored already (put skips it); minInstances is not part of the version.
  await store.put({ ...record, minInstances: 3 }, new Uint8Array());
  await until(
    async () => (await cluster.status()).functions.find((f) => f.name === FN),
    (f) => f?.nodes.length === 3,
    20_000,
  );
}

interface TimerCapResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly stalls: number;
  /** When stalled requests were sent (ms after start, rounded to 100 ms): about one burst a second. */
  readonly stallTimesMs: number[];
}

/**
 * One isolate (32 clients at concurrency 32 never makes a second), a 5 ms sleep: each request fires
 * one isolate timer, and TimerHost lets an isolate fire 1,000 a second, so past 1,000 req/s per
 * isolate the rest of each second's timers wait for the next second.
 */
async function measureTimerCap(cluster: BenchCluster): Promise<TimerCapResult> {
  const name = "timer-cap";
  await cluster.gateway.hearth.deploy(name, {
    code: SLEEP_FN.replace(`setTimeout(r, ${SLEEP_MS})`, "setTimeout(r, 5)"),
  });
  await cluster.gateway.hearth.invoke(name);
  const url = `${cluster.gateway.url}/fn/${name}`;
  await startClosedLoop({ url, clients: 32, durationMs: 1_000 }).done;
  const load = await startClosedLoop({ url, clients: 32, durationMs: 5_000 }).done;
  await cluster.gateway.hearth.remove(name);
  const stallTimesMs = new Set<number>();
  load.latencyMs.forEach((ms, i) => {
    if (ms > STALL_MS) stallTimesMs.add(Math.round((load.sentMs[i] ?? 0) / 100) * 100);
  });
  return {
    rps: load.requestsPerSecond,
    p50Ms: percentile(load.latencyMs, 50),
    p99Ms: percentile(load.latencyMs, 99),
    stalls: load.latencyMs.filter((ms) => ms > STALL_MS).length,
    stallTimesMs: [...stallTimesMs].sort((a, b) => a - b),
  };
}

export async function runRouting(): Promise<string> {
  const pickNs = measurePickCost();
  const cluster = await startBenchCluster();
  const runs: RunResult[] = [];
  let timerCap: TimerCapResult | null = null;
  try {
    timerCap = await measureTimerCap(cluster);
    console.log(`routing timer cap: ${JSON.stringify(timerCap)}`);
    await deployEverywhere(cluster);
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate the order so no policy always runs first (or last) on a machine that drifts.
      const order = POLICIES.map((_, i) => POLICIES[(i + round - 1) % POLICIES.length] as PolicyName);
      for (const policy of order) {
        const gateway = await cluster.startGateway(policy);
        try {
          await until(
            () => endpointsIn(gateway, cluster.token),
            (n) => n === 3,
            10_000,
          );
          await startClosedLoop({ url: `${gateway.url}/fn/${FN}`, clients: CLIENTS, durationMs: 2_000 }).done;
          for (const skew of [false, true]) {
            const run = await measureRun(cluster, gateway, policy, skew, round);
            runs.push(run);
            console.log(
              `routing round ${round} ${policy}${skew ? " skewed" : ""}: ${run.rps.toFixed(0)} req/s, p99 ${run.p99Ms.toFixed(1)} ms, imbalance ${run.imbalance.toFixed(2)}, in flight ${JSON.stringify(run.inFlightByNode)}, share ${JSON.stringify(run.shareByNode)}, ${run.stalls} stalls, ${run.errors} errors ${JSON.stringify(run.failures)}`,
            );
          }
        } finally {
          await gateway.stop();
        }
      }
    }
  } finally {
    await cluster.close();
  }
  const report = renderRouting(runs, pickNs, timerCap);
  const file = saveResults("routing", { runs, pickNs, timerCap }, report);
  return `${report}\n\n(saved to ${file})`;
}

function renderRouting(
  runs: RunResult[],
  pickNs: Record<PolicyName, number[]>,
  timerCap: TimerCapResult | null,
): string {
  const of = (policy: PolicyName, skew: boolean) => runs.filter((r) => r.policy === policy && r.skew === skew);
  const medianOf = (values: number[]) => percentile(values, 50);
  const rows = POLICIES.map((policy) => {
    const flat = of(policy, false);
    const skewed = of(policy, true);
    const ratio = skewed.map((s) => s.p99Ms / (flat.find((f) => f.round === s.round)?.p99Ms ?? Number.NaN));
    const isDefault = policy === "p2c";
    const imbalanceOk = medianOf(skewed.map((r) => r.imbalance)) <= 1.25;
    const p99Ok = medianOf(ratio) <= 1.5;
    return {
      policy: isDefault ? "**p2c** (default)" : policy,
      "imbalance skewed (target ≤ 1.25)": `${spread(
        skewed.map((r) => r.imbalance),
        2,
      )}${isDefault ? ` ${met(imbalanceOk)}` : ""}`,
      "imbalance unskewed": spread(
        flat.map((r) => r.imbalance),
        2,
      ),
      "instant max/mean skewed": spread(
        skewed.map((r) => r.instantImbalance),
        2,
      ),
      "p99 ms unskewed": spread(flat.map((r) => r.p99Ms)),
      "p99 ms skewed": spread(skewed.map((r) => r.p99Ms)),
      "p99 skewed ÷ unskewed (target ≤ 1.5)": `${spread(ratio, 2)}${isDefault ? ` ${met(p99Ok)}` : ""}`,
      "req/s unskewed": spread(
        flat.map((r) => r.rps),
        0,
      ),
      "req/s skewed": spread(
        skewed.map((r) => r.rps),
        0,
      ),
      "stalls > 500 ms unskewed/skewed": `${spread(
        flat.map((r) => r.stalls),
        0,
      )} / ${spread(
        skewed.map((r) => r.stalls),
        0,
      )}`,
      "n3 share skewed": spread(
        skewed.map((r) => r.shareByNode[SKEWED_NODE] ?? Number.NaN),
        3,
      ),
      errors: [...flat, ...skewed].reduce((sum, r) => sum + r.errors, 0),
    };
  });
  const pickRows = POLICY_NAMES.map((policy) => {
    const ns = pickNs[policy];
    return { policy, "ns per pick (target ≤ 2000)": `${spread(ns, 0)} ${met(medianOf(ns) <= 2000)}` };
  });
  return [
    `## Routing policies (3 executors, ${SLEEP_MS} ms sleep function, concurrency 32, ${CLIENTS} closed-loop clients, ${SECONDS} s per run, ${ROUNDS} rounds; median (min–max))`,
    "",
    `Skew: ${SKEWED_NODE}'s executor SIGSTOPped 50 ms of every 250 ms. Imbalance = max ÷ mean over executors of the time-averaged requests the gateway has in flight there (sampled every ${SAMPLE_MS} ms). Share = fraction of invocations served by ${SKEWED_NODE} (1/3 is even).`,
    "",
    table(rows),
    "",
    ...(timerCap
      ? [
          `Timer budget check (one isolate, 32 clients, 5 ms sleep, 5 s): ${timerCap.rps.toFixed(0)} req/s, p50 ${timerCap.p50Ms.toFixed(1)} ms, p99 ${timerCap.p99Ms.toFixed(1)} ms, ${timerCap.stalls} requests > ${STALL_MS} ms, sent at ${timerCap.stallTimesMs.join(", ")} ms.`,
          "",
        ]
      : []),
    "## Routing decision cost: Router.pick over 8 executors, 5 runs of 1e6 picks, median (min–max)",
    "",
    table(pickRows),
  ].join("\n");
}

if (import.meta.main) console.log(await runRouting());
