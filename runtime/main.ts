/** `hearth worker`: one worker node (supervisor + executor processes). Configured by environment. */
import { connectNats, createLogger, intFromEnv, onShutdownSignal, requireEnv } from "../protocol/index.ts";
import { Worker } from "./worker.ts";

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("worker");
  const natsUrl = requireEnv(env, "NATS_URL");
  const nc = await connectNats(natsUrl, "hearth-worker");
  const worker = new Worker({
    nc,
    natsUrl,
    id: env.HEARTH_WORKER_ID || undefined,
    executors: intFromEnv(env, "HEARTH_EXECUTORS", 1),
    log,
  });
  await worker.start();
  onShutdownSignal(log, async () => {
    await worker.close();
    await nc.drain();
  });
}
