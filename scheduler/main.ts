/** `hearth scheduler`: cluster view, autoscaler, placement and the cold path. Configured by environment. */
import { announceMetrics, metricsListenFromEnv, startMetricsServer } from "../metrics/index.ts";
import { connectNats, createLogger, intFromEnv, natsOptionsFromEnv, onShutdownSignal } from "../protocol/index.ts";
import { fixedKeepAlive } from "./keep-alive.ts";
import { Scheduler } from "./scheduler.ts";

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("scheduler");
  const metricsListen = metricsListenFromEnv(env); // HEARTH_METRICS_PORT, checked before connecting
  const nc = await connectNats(natsOptionsFromEnv(env), "hearth-scheduler", log);
  // HEARTH_KEEPALIVE_MS fixes the idle keep-alive; unset, each function's is learnt from its arrivals.
  const keepAliveMs = env.HEARTH_KEEPALIVE_MS ? intFromEnv(env, "HEARTH_KEEPALIVE_MS", 0) : null;
  const scheduler = new Scheduler({
    nc,
    log,
    id: env.HEARTH_SCHEDULER_ID || undefined,
    ...(keepAliveMs !== null ? { keepAlive: fixedKeepAlive(keepAliveMs) } : {}),
  });
  await scheduler.start();
  const metricsServer = metricsListen
    ? await startMetricsServer({ ...metricsListen, metrics: () => scheduler.metrics(), log })
    : null;
  if (metricsServer) announceMetrics(metricsServer);
  onShutdownSignal(log, async () => {
    await metricsServer?.close();
    await scheduler.close();
    await nc.drain();
  });
}
