/**
 * The cluster the scaling, routing and placement benchmarks drive, all on 127.0.0.1: one nats-server,
 * three `hearth worker` processes (one executor each), one `hearth scheduler`, and gateways in
 * processes of their own (bench/gateway-host.ts) so the load generator in this process does not
 * share their event loop. Every process is started here and stopped by its pid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, SUBJECTS, terminate } from "../protocol/index.ts";
import type { ClusterStatus } from "../scheduler/index.ts";
import { HearthClient, type NatsServer, startNatsServer } from "../sdk/index.ts";
import { type ComponentProcess, spawnComponent } from "../test/support/components.ts";
import { processTree } from "../test/support/proc.ts";
import { until } from "./stats.ts";

const GATEWAY_HOST = fileURLToPath(new URL("./gateway-host.ts", import.meta.url));
export const NODE_IDS = ["n1", "n2", "n3"] as const;

/** A gateway process; `sample` and `stopSample` read its routing table (see gateway-host.ts). */
export interface GatewayProcess {
  readonly url: string;
  readonly pid: number;
  readonly hearth: HearthClient;
  /** Starts sampling how many requests it has in flight on each executor of `fn`. */
  sample(fn: string, everyMs: number): void;
  stopSample(): Promise<Record<string, number>[]>;
  stop(): Promise<void>;
}

export interface BenchCluster {
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  readonly token: string;
  readonly workers: ReadonlyMap<string, ComponentProcess>;
  readonly scheduler: ComponentProcess;
  /** The first gateway (default routing policy). */
  readonly gateway: GatewayProcess;
  /** The leader's status, asked over NATS: what GET /v1/status shows, without the gateway's routes. */
  status(): Promise<ClusterStatus>;
  startGateway(policy?: string): Promise<GatewayProcess>;
  /** The pid of the executor process of a worker node. */
  executorPid(node: string): number;
  /** pids by role, for CPU accounting. */
  pids(): Readonly<Record<"gateway" | "scheduler" | "workers" | "executors" | "nats", number[]>>;
  close(): Promise<void>;
}

export interface BenchClusterOptions {
  /** Extra environment for the scheduler process (e.g. NODE_OPTIONS=--cpu-prof). */
  readonly schedulerEnv?: NodeJS.ProcessEnv;
  readonly workerEnv?: NodeJS.ProcessEnv;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}

async function startGatewayProcess(natsUrl: string, token: string, policy?: string): Promise<GatewayProcess> {
  const child: ChildProcess = spawn(process.execPath, [GATEWAY_HOST], {
    env: { ...process.env, NATS_URL: natsUrl, HEARTH_TOKEN: token, BENCH_POLICY: policy ?? "" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("gateway process did not start in 20 s")), 20_000);
    child.once("exit", (code) => reject(new Error(`gateway process exited with ${code}`)));
    child.on("message", (m: { type: string; url?: string }) => {
      if (m.type === "ready" && m.url) {
        clearTimeout(timer);
        resolve(m.url);
      }
    });
  });
  let stopping: Promise<void> | null = null;
  return {
    url,
    pid: child.pid as number,
    hearth: new HearthClient({ url, token }),
    sample(fn, everyMs) {
      child.send({ type: "sample", fn, everyMs });
    },
    stopSample() {
      return new Promise((resolve) => {
        const onMessage = (m: { type: string; samples?: Record<string, number>[] }) => {
          if (m.type !== "samples") return;
          child.off("message", onMessage);
          resolve(m.samples ?? []);
        };
        child.on("message", onMessage);
        child.send({ type: "stop-sample" });
      });
    },
    stop() {
      stopping ??= (async () => {
        child.disconnect(); // closes the gateway gracefully
        const timer = setTimeout(() => void terminate(child, 2_000), 5_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** Starts the cluster and waits until the gateway is ready and the leader sees three ready nodes. */
export async function startBenchCluster(options: BenchClusterOptions = {}): Promise<BenchCluster> {
  const nats = await startNatsServer({});
  const nc = await connectNats(nats.url, "bench");
  const token = `bench-${Math.random().toString(36).slice(2)}`;
  const env = { NATS_URL: nats.url, HEARTH_EXECUTORS: "1" };
  const workers = new Map<string, ComponentProcess>();
  const gateways: GatewayProcess[] = [];
  let scheduler: ComponentProcess | null = null;
  const close = async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await Promise.all([...workers.values(), ...(scheduler ? [scheduler] : [])].map((c) => c.stop()));
    await nc.close();
    await nats.stop();
  };
  try {
    for (const id of NODE_IDS)
      workers.set(id, spawnComponent("worker", { ...env, ...options.workerEnv, HEARTH_WORKER_ID: id }));
    scheduler = spawnComponent("scheduler", { ...env, ...options.schedulerEnv, HEARTH_SCHEDULER_ID: "s1" });
    const status = async (): Promise<ClusterStatus> =>
      (await nc.request(SUBJECTS.status, "{}", { timeout: 2_000 })).json<ClusterStatus>();
    const startGateway = async (policy?: string) => {
      const gateway = await startGatewayProcess(nats.url, token, policy);
      gateways.push(gateway);
      await until(
        async () => (await fetch(`${gateway.url}/readyz`)).status,
        (s) => s === 200,
        30_000,
      );
      return gateway;
    };
    const gateway = await startGateway();
    await until(
      () => status().catch(() => null),
      (s) => s?.nodes.filter((n) => n.state === "ready" && n.executors.length > 0).length === NODE_IDS.length,
      30_000,
    );
    const started = scheduler;
    const executorPid = (node: string) => {
      const worker = workers.get(node);
      const pid = processTree(worker?.pid ?? -1).find((p) => cmdline(p).includes("executor/main.ts"));
      if (pid === undefined) throw new Error(`no executor process under worker ${node}`);
      return pid;
    };
    return {
      nats,
      nc,
      token,
      workers,
      scheduler: started,
      gateway,
      status,
      startGateway,
      executorPid,
      pids() {
        const executors = NODE_IDS.map(executorPid);
        return {
          gateway: gateways.map((g) => g.pid),
          scheduler: [started.pid],
          workers: [...workers.values()].map((w) => w.pid),
          executors,
          nats: nats.pid === undefined ? [] : [nats.pid],
        };
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
