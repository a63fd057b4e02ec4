/**
 * The cluster the async benchmark drives: the processes `hearth dev` starts (nats-server with
 * file-backed JetStream, `hearth gateway`, `hearth scheduler`, `hearth worker` with one executor),
 * each its own process on 127.0.0.1, but without NATS authorization, so the benchmark itself can
 * read stream and consumer state, create a user stream and publish to it. The worker is started and
 * stopped on demand: with none running, accepting is measured alone (nothing drains). Every process
 * is started here and stopped by its pid.
 */
import { readFileSync } from "node:fs";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, SUBJECTS } from "../protocol/index.ts";
import type { ClusterStatus } from "../scheduler/index.ts";
import { freePort, HearthClient, type NatsServer, startNatsServer } from "../sdk/index.ts";
import { type ComponentProcess, spawnComponent } from "../test/support/components.ts";
import { cpuMicros } from "../test/support/proc.ts";
import { until } from "./stats.ts";

/** The processes CPU is charged to. */
export type Role = "gateway" | "nats" | "scheduler" | "worker" | "executor";

/** A running cluster for the async benchmark, and the benchmark's own NATS connection to it. */
export interface AsyncCluster {
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The gateway's origin, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly hearth: HearthClient;
  /** The worker running now, if any. */
  readonly worker: ComponentProcess | null;
  /** Starts a worker node (one executor) and waits until the scheduler sees it ready. */
  startWorker(): Promise<ComponentProcess>;
  /** Stops the worker (SIGTERM: it drains what runs), if one runs. */
  stopWorker(): Promise<void>;
  /** pids by role for CPU accounting. */
  pids(): Readonly<Record<Role, number[]>>;
  close(): Promise<void>;
}

export interface AsyncClusterOptions {
  /** Extra environment per role, e.g. `{ gateway: { NODE_OPTIONS: "--cpu-prof" } }` to profile one. */
  readonly env?: Partial<Record<"gateway" | "scheduler" | "worker", NodeJS.ProcessEnv>>;
}

/** Starts nats-server, a scheduler and a gateway (no worker yet), and waits until the gateway is ready. */
export async function startAsyncCluster(options: AsyncClusterOptions = {}): Promise<AsyncCluster> {
  const nats = await startNatsServer({});
  const nc = await connectNats(nats.url, "bench-async");
  const token = `bench-${Math.random().toString(36).slice(2)}`;
  const port = await freePort();
  const env = { NATS_URL: nats.url, HEARTH_EXECUTORS: "1" };
  const scheduler = spawnComponent("scheduler", { ...env, ...options.env?.scheduler, HEARTH_SCHEDULER_ID: "s1" });
  const gateway = spawnComponent("gateway", {
    ...env,
    ...options.env?.gateway,
    HEARTH_TOKEN: token,
    HEARTH_PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  let worker: ComponentProcess | null = null;
  let workers = 0;
  const status = async (): Promise<ClusterStatus> =>
    (await nc.request(SUBJECTS.status, "{}", { timeout: 2_000 })).json<ClusterStatus>();
  const stopWorker = async () => {
    const stopping = worker;
    worker = null;
    await stopping?.stop();
  };
  const close = async () => {
    await stopWorker();
    await Promise.all([gateway.stop(), scheduler.stop()]);
    await nc.close();
    await nats.stop();
  };
  try {
    // Ready but for "no worker node heard from": accepting needs none (readyz is a probe, not a gate).
    await until(
      async () =>
        ((await (await fetch(`${url}/readyz`).catch(() => null))?.json()) ?? null) as { reasons: string[] } | null,
      (r) => r?.reasons.every((reason) => reason.includes("worker")) === true,
      30_000,
    );
    const [js, jsm] = [jetstream(nc), await jetstreamManager(nc)];
    return {
      nats,
      nc,
      js,
      jsm,
      url,
      hearth: new HearthClient({ url, token }),
      get worker() {
        return worker;
      },
      async startWorker() {
        await stopWorker();
        const id = `w${++workers}`;
        const started = spawnComponent("worker", { ...env, ...options.env?.worker, HEARTH_WORKER_ID: id });
        worker = started;
        await until(
          () => status().catch(() => null),
          (s) => s?.nodes.some((n) => n.id === id && n.state === "ready" && n.executors.length > 0) === true,
          30_000,
        );
        return started;
      },
      stopWorker,
      pids: () => ({
        gateway: [gateway.pid],
        nats: nats.pid === undefined ? [] : [nats.pid],
        scheduler: [scheduler.pid],
        worker: worker ? [worker.pid] : [],
        executor: worker?.tree().filter((pid) => pid !== worker?.pid) ?? [],
      }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** CPU µs by role (and `bench`, this process: the load generator) since `cpuSince` was called. */
export type CpuByRole = Record<Role | "bench", number>;

export interface CpuUse {
  readonly byRole: CpuByRole;
  /**
   * Cores busy outside the cluster and this process meanwhile (all CPUs' busy time from /proc/stat,
   * minus ours), averaged over the window: the machine is shared, and this says how much.
   */
  readonly otherCores: number;
}

/** Busy time of all CPUs so far, µs (/proc/stat: user, nice, system, irq, softirq, steal; 10 ms ticks). */
function machineBusyMicros(): number {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) * 10_000;
}

/**
 * Starts counting CPU time of the cluster's processes (the pids running now: user + system from
 * /proc/<pid>/stat, 10 ms ticks) and of this process; the returned function reads the deltas.
 */
export function cpuSince(cluster: AsyncCluster): () => CpuUse {
  const pids = cluster.pids();
  const roles = Object.keys(pids) as Role[];
  const before = new Map(roles.map((role) => [role, cpuMicros(pids[role])]));
  const self = process.cpuUsage();
  const busy = machineBusyMicros();
  const startedAt = performance.now();
  return () => {
    const byRole = { bench: 0 } as CpuByRole;
    for (const role of roles) byRole[role] = cpuMicros(pids[role]) - (before.get(role) ?? 0);
    const { user, system } = process.cpuUsage(self);
    byRole.bench = user + system;
    const ours = Object.values(byRole).reduce((a, b) => a + b, 0);
    const wallMicros = (performance.now() - startedAt) * 1000;
    return { byRole, otherCores: Math.max(0, machineBusyMicros() - busy - ours) / wallMicros };
  };
}
