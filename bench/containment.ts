/**
 * `npm run containment`: the containment suite at full length (issue 7). Each hostile function runs
 * for CONTAINMENT_SECONDS (60) next to a healthy function under steady load on the same worker (two
 * executors); then the post-response spinners, each measured over 10 s against a quiet control; then
 * a 15 ms CPU function next to three spinning functions on one executor. Prints markdown tables for
 * docs/security.md. Takes about 17 minutes at 60 s per case; CONTAINMENT_SECONDS=10 for a quick look.
 */
import {
  cpuSeconds,
  executorCpuAfterOneCall,
  healthyLoad,
  percentile,
  runHostileCase,
} from "../test/support/containment.ts";
import { HOSTILE_CASES, POST_RESPONSE_SPINNERS } from "../test/support/hostile-cases.ts";
import { get, type InProcessCluster, outcomeOf, startInProcessCluster } from "../test/support/in-process.ts";

const SECONDS = Number(process.env.CONTAINMENT_SECONDS ?? 60);
const SPINNER_WINDOW_MS = 10_000;

async function withCluster<T>(executors: number, run: (cluster: InProcessCluster) => Promise<T>): Promise<T> {
  const cluster = await startInProcessCluster({ worker: { executors } });
  try {
    return await run(cluster);
  } finally {
    await cluster.close();
  }
}

async function hostileTable(cluster: InProcessCluster): Promise<string> {
  await cluster.hearth.deploy("healthy", { code: `export default { fetch() { return new Response("fine"); } };` });
  await cluster.gateway.handle(get("/fn/healthy"));
  const baselineStop = new Promise((resolve) => setTimeout(resolve, Math.min(SECONDS, 20) * 1000));
  const baseline = await healthyLoad(cluster.gateway, baselineStop);
  const baselineP99 = percentile(baseline.latencies, 99);
  const rows = [
    `Healthy function alone: p99 ${baselineP99.toFixed(1)} ms over ${baseline.latencies.length} requests.`,
    "",
    "| case | hostile calls | outcomes | slowest hostile answer, ms | healthy requests | healthy failures | healthy p99, ms (× alone) | executor RSS peak, MB | executors replaced |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const hostile of HOSTILE_CASES) {
    const r = await runHostileCase(cluster, hostile, SECONDS * 1000);
    const outcomes = Object.entries(r.hostileOutcomes)
      .map(([code, n]) => `${code} ×${n}`)
      .join(", ");
    rows.push(
      `| ${r.name} | ${r.hostileCalls} | ${outcomes} | ${r.hostileMaxMs} | ${r.healthyRequests} | ${r.healthyFailures.length} | ` +
        `${r.healthyP99Ms} (${(r.healthyP99Ms / baselineP99).toFixed(2)}×) | ${r.executorPeakMb} | ` +
        `${r.replacedExecutors.length}${r.healthyExecutorReplaced ? " (the healthy one's, after moving it)" : ""} |`,
    );
    console.error(`done: ${r.name}`);
  }
  return rows.join("\n");
}

async function spinnerTable(cluster: InProcessCluster): Promise<string> {
  const rows = [
    "| case | executors' CPU-s over the 10 s after the answer | after a quiet call (control) | difference |",
    "|---|---|---|---|",
  ];
  for (const spinner of POST_RESPONSE_SPINNERS) {
    const control = await executorCpuAfterOneCall(cluster, spinner.control, SPINNER_WINDOW_MS);
    const spinning = await executorCpuAfterOneCall(cluster, spinner.code, SPINNER_WINDOW_MS);
    rows.push(
      `| ${spinner.name} | ${spinning.toFixed(2)} | ${control.toFixed(2)} | ${(spinning - control).toFixed(2)} |`,
    );
  }
  return rows.join("\n");
}

/** A fixed ~15 ms of CPU next to three functions that spin until their CPU limit, on one executor. */
async function fairnessRow(cluster: InProcessCluster): Promise<string> {
  await cluster.hearth.deploy("fair", {
    code: `export default { fetch(request) {
      const n = Number(new URL(request.url).searchParams.get("n"));
      let x = 0; for (let i = 0; i < n; i++) x += i % 7; return new Response(String(x));
    } };`,
  });
  // Calibrate alone: iterations for ~15 ms, from the executor's CPU over 20 calls.
  const probe = 5e6;
  await cluster.gateway.handle(get(`/fn/fair?n=${probe}`));
  const pids = cluster.worker?.executorPids ?? [];
  const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  for (let i = 0; i < 20; i++) await cluster.gateway.handle(get(`/fn/fair?n=${probe}`));
  const perCallMs = ((pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before) * 1000) / 20;
  const n = Math.round((probe * 15) / Math.max(perCallMs, 1));
  for (let i = 0; i < 3; i++) {
    await cluster.hearth.deploy(`spinner-${i}`, { code: `export default { fetch() { for (;;) {} } };` });
  }
  let stop = false;
  const spinning = [0, 1, 2].map(async (i) => {
    while (!stop) await cluster.gateway.handle(get(`/fn/spinner-${i}`));
  });
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    const outcome = outcomeOf(await cluster.gateway.handle(get(`/fn/fair?n=${n}`)));
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  stop = true;
  await Promise.all(spinning);
  const summary = Object.entries(outcomes)
    .map(([code, count]) => `${code} ×${count}`)
    .join(", ");
  return `15 ms CPU function (${n} iterations, ${perCallMs.toFixed(1)} ms per ${probe} alone) next to three spinners on one executor, 100 calls: ${summary}.`;
}

const hostile = await withCluster(2, hostileTable);
const spinners = await withCluster(2, spinnerTable);
const fairness = await withCluster(1, fairnessRow);
console.log(
  `## Containment suite (${SECONDS} s per case)\n\n${hostile}\n\n## Work after the response\n\n${spinners}\n\n## CPU time next to spinning neighbours\n\n${fairness}`,
);
