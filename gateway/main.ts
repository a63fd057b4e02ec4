/** `hearth gateway`: the HTTP gateway process. Configured by environment. */
import { connectNats, createLogger, intFromEnv, LIMITS, onShutdownSignal, requireEnv } from "../protocol/index.ts";
import { Gateway } from "./gateway.ts";

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("gateway");
  const nc = await connectNats(requireEnv(env, "NATS_URL"), "hearth-gateway");
  const gateway = new Gateway({
    nc,
    token: requireEnv(env, "HEARTH_TOKEN"),
    host: env.HEARTH_HOST || "127.0.0.1",
    port: intFromEnv(env, "HEARTH_PORT", 8080),
    maxBodyBytes: intFromEnv(env, "HEARTH_MAX_BODY_BYTES", LIMITS.defaultMaxBodyBytes),
    log,
  });
  await gateway.start();
  onShutdownSignal(log, async () => {
    await gateway.close();
    await nc.drain();
  });
}
