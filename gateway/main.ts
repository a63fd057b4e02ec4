/** `hearth gateway`: the HTTP gateway process. Configured by environment. */
import {
  connectNats,
  createLogger,
  intFromEnv,
  LIMITS,
  natsOptionsFromEnv,
  onShutdownSignal,
  requireEnv,
  SecretKeyring,
} from "../protocol/index.ts";
import { Gateway } from "./gateway.ts";
import { httpLimitsFromEnv } from "./http-limits.ts";
import { parsePolicyName } from "./routing/policies.ts";

/**
 * The whole stop, NATS drain included, is cut short after this. The HTTP server gives in-flight
 * requests DEFAULT_CLOSE_DEADLINE_MS (5 s) of it; `hearth dev` sends SIGKILL at 10 s.
 */
const SHUTDOWN_DEADLINE_MS = 8_000;

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("gateway");
  const nc = await connectNats(natsOptionsFromEnv(env), "hearth-gateway", log);
  const gateway = new Gateway({
    nc,
    token: requireEnv(env, "HEARTH_TOKEN"),
    host: env.HEARTH_HOST || "127.0.0.1",
    port: intFromEnv(env, "HEARTH_PORT", 8080),
    maxBodyBytes: intFromEnv(env, "HEARTH_MAX_BODY_BYTES", LIMITS.defaultMaxBodyBytes),
    routingPolicy: parsePolicyName(env.HEARTH_ROUTING_POLICY),
    http: httpLimitsFromEnv(env),
    ...(env.HEARTH_FUNCTIONS_DOMAIN ? { functionsDomain: env.HEARTH_FUNCTIONS_DOMAIN } : {}),
    secretsKeyring: SecretKeyring.fromEnv(env),
    log,
  });
  await gateway.start();
  onShutdownSignal(
    log,
    async () => {
      await gateway.close();
      await nc.drain();
    },
    { deadlineMs: SHUTDOWN_DEADLINE_MS },
  );
}
