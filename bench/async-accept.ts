/**
 * Async throughput: how many invocations the gateway stores per second (each 202 = its status
 * written to KV and its message acknowledged by the file-backed async stream), what that costs in
 * CPU, and how fast a worker drains the backlog. Three phases, each with its own CPU accounting:
 *
 * - accept alone: no worker runs, so nothing drains and every CPU µs is accepting's;
 * - drain alone: a worker starts on that backlog (the scheduler places the function because of the
 *   queue depth); completed/s from the stream's message count (a work queue deletes a message once
 *   acked, and the runner acks after writing "succeeded");
 * - sustained: accepting while the worker drains, as in production.
 */
import { STREAMS } from "../protocol/index.ts";
import { type AsyncCluster, type CpuByRole, cpuSince } from "./async-cluster.ts";
import { runAcceptLoad } from "./async-load.ts";
import { percentile, sleep } from "./stats.ts";

/** The async function and the load shape of the accept runs. */
export interface AcceptSettings {
  readonly fn: string;
  readonly clients: number;
  readonly seconds: number;
  /** Load before the measured accept-alone run (its invocations join the backlog). */
  readonly warmupSeconds: number;
  /** The drain is measured at most this long after its first completion; the rest is purged. */
  readonly drainWindowSeconds: number;
}

/** One accept run: rate, 202 latency, CPU per accepted invocation. */
export interface AcceptSample {
  readonly acceptedPerS: number;
  /** Slowest and fastest whole second. */
  readonly minPerS: number;
  readonly maxPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failures: Record<string, number>;
  /** CPU µs per accepted invocation, by role. */
  readonly cpuPerAccept: CpuByRole;
  /** Cores other processes on the machine kept busy meanwhile. */
  readonly otherCores: number;
}

/** One drain of a backlog by a fresh worker. */
export interface DrainSample {
  readonly backlog: number;
  readonly completedPerS: number;
  /** From the worker being ready to the first completion (placement and first pull). */
  readonly firstCompletionMs: number;
  readonly cpuPerCompletion: CpuByRole;
  readonly otherCores: number;
  readonly purged: number;
}

/** Accepting while the worker drains: both rates, CPU per accepted and per completed invocation. */
export interface SustainedSample extends AcceptSample {
  readonly completedPerS: number;
  /** CPU µs per completed invocation, by role. */
  readonly cpuPerCompletion: CpuByRole;
}

/** Messages in the async stream now: stored and not yet acked. */
export async function asyncBacklog(cluster: AsyncCluster): Promise<number> {
  return (await cluster.jsm.streams.info(STREAMS.async)).state.messages;
}

const per = (cpu: CpuByRole, n: number): CpuByRole =>
  Object.fromEntries(Object.entries(cpu).map(([role, us]) => [role, us / Math.max(1, n)])) as CpuByRole;

/** What one accept run measured: rates, latency, failures, CPU per accepted invocation. */
function acceptSample(
  run: Awaited<ReturnType<typeof acceptFor>>,
  used: { byRole: CpuByRole; otherCores: AcceptSample["otherCores"] },
): AcceptSample {
  return {
    acceptedPerS: (run.accepted / run.durationMs) * 1000,
    minPerS: Math.min(...run.acceptedPerSecond),
    maxPerS: Math.max(...run.acceptedPerSecond),
    p50Ms: percentile(run.latencyMs, 50),
    p99Ms: percentile(run.latencyMs, 99),
    failures: run.failures,
    cpuPerAccept: per(used.byRole, run.accepted),
    otherCores: used.otherCores,
  };
}

async function acceptFor(cluster: AsyncCluster, s: AcceptSettings, seconds: number) {
  return runAcceptLoad({ url: `${cluster.url}/fn/${s.fn}`, clients: s.clients, durationMs: seconds * 1000 });
}

/** Accepting with no worker running: the gateway and nats-server alone. */
export async function measureAcceptAlone(cluster: AsyncCluster, s: AcceptSettings): Promise<AcceptSample> {
  if (cluster.worker) throw new Error("accept alone needs no worker running");
  await acceptFor(cluster, s, s.warmupSeconds);
  const cpu = cpuSince(cluster);
  const run = await acceptFor(cluster, s, s.seconds);
  const used = cpu();
  return acceptSample(run, used);
}

/**
 * Starts a worker on the backlog and follows the stream's message count every 100 ms: the rate
 * from the first completion until the backlog is empty or the window ends; the rest is purged.
 */
export async function measureDrain(cluster: AsyncCluster, s: AcceptSettings): Promise<DrainSample> {
  const backlog = await asyncBacklog(cluster);
  await cluster.startWorker();
  const ready = performance.now();
  let left = backlog;
  while (left >= backlog) {
    if (performance.now() - ready > 30_000) throw new Error(`nothing drained 30 s after the worker started`);
    await sleep(20);
    left = await asyncBacklog(cluster);
  }
  const firstAt = performance.now();
  const firstLeft = left;
  const cpu = cpuSince(cluster);
  while (left > 0 && performance.now() - firstAt < s.drainWindowSeconds * 1000) {
    await sleep(100);
    left = await asyncBacklog(cluster);
  }
  const elapsedMs = performance.now() - firstAt;
  const used = cpu();
  await purgeAndSettle(cluster);
  return {
    backlog,
    completedPerS: ((firstLeft - left) / elapsedMs) * 1000,
    firstCompletionMs: firstAt - ready,
    cpuPerCompletion: per(used.byRole, firstLeft - left),
    otherCores: used.otherCores,
    purged: left,
  };
}

/** Accepting while the worker drains; completed = backlog before + accepted − backlog after. */
export async function measureSustained(cluster: AsyncCluster, s: AcceptSettings): Promise<SustainedSample> {
  if (!cluster.worker) throw new Error("sustained needs a worker running");
  const before = await asyncBacklog(cluster);
  const cpu = cpuSince(cluster);
  const run = await acceptFor(cluster, s, s.seconds);
  const used = cpu();
  const after = await asyncBacklog(cluster);
  const completed = before + run.accepted - after;
  await purgeAndSettle(cluster);
  return {
    ...acceptSample(run, used),
    completedPerS: (completed / run.durationMs) * 1000,
    cpuPerCompletion: per(used.byRole, completed),
  };
}

/** Drops what is left, then gives the invocations running now time to end (they ack into nothing). */
async function purgeAndSettle(cluster: AsyncCluster): Promise<void> {
  await cluster.jsm.streams.purge(STREAMS.async);
  await sleep(1_000);
  if ((await asyncBacklog(cluster)) > 0) await cluster.jsm.streams.purge(STREAMS.async);
}
