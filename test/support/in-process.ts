import type { NatsConnection } from "@nats-io/transport-node";
import { Gateway, type GatewayOptions, type HttpRequest, type HttpResponse } from "../../gateway/index.ts";
import { connectNats } from "../../protocol/index.ts";
import { Worker, type WorkerOptions } from "../../runtime/index.ts";
import { Scheduler, type SchedulerOptions } from "../../scheduler/index.ts";
import { HearthClient, type NatsServer, startNatsServer } from "../../sdk/index.ts";

export const TEST_TOKEN = "in-process-token";

/**
 * A gateway (listening on a free port), and on request a scheduler and a worker, as objects in this
 * process against a nats-server of its own. The worker's executors are still real child processes.
 */
export interface InProcessCluster {
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  readonly gateway: Gateway;
  readonly hearth: HearthClient;
  scheduler: Scheduler | null;
  worker: Worker | null;
  startScheduler(options?: Partial<Omit<SchedulerOptions, "nc">>): Promise<Scheduler>;
  startWorker(options?: Partial<Omit<WorkerOptions, "nc" | "natsUrl">>): Promise<Worker>;
  close(): Promise<void>;
}

export async function startInProcessCluster(
  options: {
    gateway?: Partial<Omit<GatewayOptions, "nc">>;
    scheduler?: Partial<Omit<SchedulerOptions, "nc">> | false;
    worker?: Partial<Omit<WorkerOptions, "nc" | "natsUrl">> | false;
  } = {},
): Promise<InProcessCluster> {
  const nats = await startNatsServer({});
  const nc = await connectNats(nats.url, "test");
  const gateway = new Gateway({ nc, token: TEST_TOKEN, port: 0, ...options.gateway });
  await gateway.start();
  const cluster: InProcessCluster = {
    nats,
    nc,
    gateway,
    hearth: new HearthClient({ url: gateway.url, token: TEST_TOKEN }),
    scheduler: null,
    worker: null,
    async startScheduler(schedulerOptions = {}) {
      const scheduler = new Scheduler({ nc, ...schedulerOptions });
      await scheduler.start();
      cluster.scheduler = scheduler;
      return scheduler;
    },
    async startWorker(workerOptions = {}) {
      const worker = new Worker({ nc, natsUrl: nats.url, heartbeatMs: 200, ...workerOptions });
      await worker.start();
      cluster.worker = worker;
      return worker;
    },
    async close() {
      await cluster.worker?.close();
      await cluster.scheduler?.close();
      await gateway.close();
      await nc.close();
      await nats.stop();
    },
  };
  try {
    if (options.scheduler !== false) await cluster.startScheduler(options.scheduler || {});
    if (options.worker !== false) await cluster.startWorker(options.worker || {});
  } catch (err) {
    await cluster.close(); // leave no nats-server or executor behind
    throw err;
  }
  return cluster;
}

/** A GET for `gateway.handle()`. */
export function get(target: string): HttpRequest {
  return { method: "GET", target, headers: [["host", "test"]], body: new Uint8Array() };
}

export function bodyText(res: HttpResponse): string {
  return typeof res.body === "string" ? res.body : new TextDecoder().decode(res.body);
}

/** "OK" for a 200, else the error code of a Hearth error response. */
export function outcomeOf(res: HttpResponse): string {
  return res.status === 200 ? "OK" : JSON.parse(bodyText(res)).error.code;
}

/**
 * outcomeOf, once a streamed body has been read to its end: a body cut short (its head already sent
 * as 200) is the code of the error that cut it, as the gateway logs it.
 */
export async function settledOutcomeOf(res: HttpResponse): Promise<string> {
  try {
    for await (const _chunk of res.stream ?? []) {
      // drained: only how the stream ends matters
    }
  } catch (err) {
    return (err as { code?: string }).code ?? "ERR_STREAM_FAILED";
  }
  return outcomeOf(res);
}
