import { readFileSync } from "node:fs";
import type { Gateway } from "../../gateway/index.ts";
import { SUBJECTS, type WorkerHeartbeat } from "../../protocol/index.ts";
import { get, type InProcessCluster, outcomeOf, settledOutcomeOf } from "./in-process.ts";

/**
 * The containment suite's runner, shared by `npm test` (short runs) and `npm run containment`
 * (60 s per case, the table in docs/security.md): one hostile function is called over and over
 * next to a healthy function under steady load, on the same worker, while executor memory and
 * processes are watched.
 */
export interface HostileCase {
  readonly name: string;
  /** The function's module source. */
  readonly code: string;
  /** Outcomes a hostile call may end in ("OK" for a 200, else the Hearth error code). */
  readonly expected: readonly string[];
  readonly limits?: { readonly memoryMb?: number; readonly cpuMs?: number; readonly timeoutMs?: number };
  /** May get its executor retired (its functions moved first): code V8 cannot interrupt, or memory past the bound. */
  readonly retiresItsExecutor?: boolean;
}

export interface CaseReport {
  readonly name: string;
  readonly hostileCalls: number;
  /** Outcome → count. */
  readonly hostileOutcomes: Readonly<Record<string, number>>;
  /** Outcomes outside the case's expected list. */
  readonly unexpected: readonly string[];
  readonly hostileMaxMs: number;
  readonly healthyRequests: number;
  readonly healthyFailures: readonly string[];
  readonly healthyP99Ms: number;
  /** Peak RSS of any executor process during the case, MiB. */
  readonly executorPeakMb: number;
  /** Executor processes that were replaced during the case (pids). */
  readonly replacedExecutors: readonly number[];
  /** The healthy function's executor process was one of them. */
  readonly healthyExecutorReplaced: boolean;
}

const HEALTHY_CONCURRENCY = 4;
const MEMORY_SAMPLE_MS = 50;

/** Calls the healthy function with 4 requests in flight until `stop`; latencies in ms. */
export async function healthyLoad(
  gateway: Gateway,
  stop: Promise<unknown>,
): Promise<{ latencies: number[]; failures: string[] }> {
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  const latencies: number[] = [];
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: HEALTHY_CONCURRENCY }, async () => {
      while (!done) {
        const t0 = performance.now();
        const res = await gateway.handle(get("/fn/healthy"));
        latencies.push(performance.now() - t0);
        if (res.status !== 200) failures.push(outcomeOf(res));
      }
    }),
  );
  return { latencies, failures };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Resident memory of a process, MiB (0 once it is gone). */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

/** CPU seconds a process has used (user + system), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat; after the command they are at 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Which executor process (pid) holds each function, from the worker's heartbeats. */
export function watchPlacement(cluster: InProcessCluster): {
  pidOf(fn: string): number | undefined;
  until(fn: string): Promise<number | undefined>;
  stop(): void;
} {
  const latest = new Map<string, number>();
  const sub = cluster.nc.subscribe(SUBJECTS.heartbeat, {
    callback: (err, msg) => {
      if (err) return;
      const beat = msg.json<WorkerHeartbeat>();
      for (const executor of beat.executors) for (const fn of executor.functions) latest.set(fn, executor.pid);
    },
  });
  return {
    pidOf: (fn) => latest.get(fn),
    // Heartbeats come every 200 ms in tests: wait for the next one that names `fn` (up to 2 s).
    async until(fn) {
      for (let waited = 0; latest.get(fn) === undefined && waited < 2_000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return latest.get(fn);
    },
    stop: () => sub.unsubscribe(),
  };
}

/** Deploys `code`, calls it once (it must answer 200), and returns its executors' CPU-s over the next `windowMs`. */
export async function executorCpuAfterOneCall(
  cluster: InProcessCluster,
  code: string,
  windowMs: number,
): Promise<number> {
  const name = `after-${Math.random().toString(36).slice(2, 8)}`;
  await cluster.hearth.deploy(name, { code });
  const outcome = outcomeOf(await cluster.gateway.handle(get(`/fn/${name}`)));
  if (outcome !== "OK") throw new Error(`${name} answered ${outcome}`);
  const pids = cluster.worker?.executorPids ?? [];
  const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const used = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
  await cluster.hearth.remove(name);
  return used;
}

/** Runs one hostile case for `durationMs` next to the healthy function (deployed already). */
export async function runHostileCase(
  cluster: InProcessCluster,
  hostile: HostileCase,
  durationMs: number,
): Promise<CaseReport> {
  const worker = cluster.worker;
  if (!worker) throw new Error("the containment suite needs a worker");
  const placement = watchPlacement(cluster);
  const name = `hostile-${Math.random().toString(36).slice(2, 8)}`;
  await cluster.hearth.deploy(name, { code: hostile.code, ...hostile.limits });
  const pidsBefore = worker.executorPids;
  const healthyPid = await placement.until("healthy");

  let peakMb = 0;
  const memory = setInterval(() => {
    for (const pid of worker.executorPids) peakMb = Math.max(peakMb, rssMb(pid));
  }, MEMORY_SAMPLE_MS);

  const outcomes: Record<string, number> = {};
  const unexpected: string[] = [];
  let calls = 0;
  let maxMs = 0;
  const deadline = Date.now() + durationMs;
  const hostileRun = (async () => {
    do {
      const t0 = performance.now();
      const outcome = await settledOutcomeOf(await cluster.gateway.handle(get(`/fn/${name}`)));
      maxMs = Math.max(maxMs, performance.now() - t0);
      calls++;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (!hostile.expected.includes(outcome)) unexpected.push(outcome);
    } while (Date.now() < deadline);
  })();
  const load = await healthyLoad(cluster.gateway, hostileRun);
  await hostileRun;
  clearInterval(memory);
  placement.stop();
  await cluster.hearth.remove(name).catch(() => {});
  const replaced = pidsBefore.filter((pid) => !worker.executorPids.includes(pid));
  return {
    name: hostile.name,
    hostileCalls: calls,
    hostileOutcomes: outcomes,
    unexpected,
    hostileMaxMs: Math.round(maxMs),
    healthyRequests: load.latencies.length,
    healthyFailures: load.failures,
    healthyP99Ms: Number(percentile(load.latencies, 99).toFixed(1)),
    executorPeakMb: Math.round(peakMb),
    replacedExecutors: replaced,
    healthyExecutorReplaced: healthyPid !== undefined && replaced.includes(healthyPid),
  };
}
