/** `hearth scheduler`: node registry and cold-path activator. Configured by environment. */
import { connectNats, createLogger, onShutdownSignal, requireEnv } from "../protocol/index.ts";
import { Scheduler } from "./scheduler.ts";

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("scheduler");
  const nc = await connectNats(requireEnv(env, "NATS_URL"), "hearth-scheduler");
  const scheduler = new Scheduler({ nc, log });
  await scheduler.start();
  onShutdownSignal(log, async () => {
    await scheduler.close();
    await nc.drain();
  });
}
