/** `hearth worker`: one worker node (supervisor + executor processes). Configured by environment. */
import { connectNats, createLogger, intFromEnv, natsOptionsFromEnv, onShutdownSignal } from "../protocol/index.ts";
import { DEFAULT_RETRY_TIMING } from "./queue/async-invocations.ts";
import { DEFAULT_ACK_WAIT_MS } from "./queue/pull-loop.ts";
import { Worker } from "./worker.ts";

/**
 * The worker's own credentials, which its executors must never inherit: they connect as the
 * executor identity (HEARTH_EXECUTOR_NATS_*, which the worker maps to NATS_* for them) and have no
 * use for the admin token.
 */
const OWN_SECRETS = ["NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_NKEY_SEED_FILE", "NATS_CREDS", "HEARTH_TOKEN"];

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("worker");
  const nats = natsOptionsFromEnv(env);
  // Executors are spawned with this process's environment: drop what is ours alone once read.
  for (const name of OWN_SECRETS) delete process.env[name];
  const nc = await connectNats(nats, "hearth-worker", log);
  const worker = new Worker({
    nc,
    // Without any `user:password@`: executors connect with their own identity.
    natsUrl: nats.url,
    id: env.HEARTH_WORKER_ID || undefined,
    executors: intFromEnv(env, "HEARTH_EXECUTORS", 1),
    ackWaitMs: intFromEnv(env, "HEARTH_ASYNC_ACK_WAIT_MS", DEFAULT_ACK_WAIT_MS),
    retry: {
      baseMs: intFromEnv(env, "HEARTH_ASYNC_RETRY_BASE_MS", DEFAULT_RETRY_TIMING.baseMs),
      capMs: intFromEnv(env, "HEARTH_ASYNC_RETRY_CAP_MS", DEFAULT_RETRY_TIMING.capMs),
    },
    egressAllow: env.HEARTH_EGRESS_ALLOW,
    log,
  });
  await worker.start();
  onShutdownSignal(log, async () => {
    await worker.close();
    await nc.drain();
  });
}
