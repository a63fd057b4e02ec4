/** `hearth worker`: one worker node (supervisor + executor processes). Configured by environment. */
import { announceMetrics, metricsListenFromEnv, startMetricsServer } from "../metrics/index.ts";
import {
  connectNats,
  createLogger,
  HearthError,
  intFromEnv,
  type NatsSettings,
  natsOptionsFromEnv,
  onShutdownSignal,
  SecretKeyring,
} from "../protocol/index.ts";
import { DEFAULT_RETRY_TIMING } from "./queue/async-invocations.ts";
import { DEFAULT_ACK_WAIT_MS } from "./queue/pull-loop.ts";
import { Worker } from "./worker.ts";

/**
 * The worker's own credentials, which its executors must never inherit: they connect as the
 * executor identity (HEARTH_EXECUTOR_NATS_*, which the worker maps to NATS_* for them) and have no
 * use for the admin token.
 */
const OWN_SECRETS = [
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_TOKEN",
  "NATS_NKEY_SEED_FILE",
  "NATS_CREDS",
  "HEARTH_TOKEN",
  "HEARTH_SECRETS_KEY",
  "HEARTH_SECRETS_PREVIOUS_KEY",
];
/** `HEARTH_INGEST_NATS_<X>` is the `NATS_<X>` of the identity `nats://` trigger sources are read with. */
const INGEST_NATS_PREFIX = "HEARTH_INGEST_NATS_";

/**
 * The settings of the connection `nats://` trigger sources are read on, or null to read them on the
 * worker's own: each `HEARTH_INGEST_NATS_<X>` becomes `NATS_<X>` (`_USER` and `_PASSWORD`, or
 * `_TOKEN`, `_CREDS`, `_NKEY_SEED_FILE`, `_INBOX_PREFIX`, even `_URL` for sources on another
 * server). Without `_URL` it dials the worker's servers (`workerUrl`, without credentials) with the
 * worker's NATS_TLS_* settings. `hearth dev` sets `_USER` and `_PASSWORD` to its app identity.
 *
 * @example
 * ingestNatsOptionsFromEnv({ HEARTH_INGEST_NATS_USER: "app", HEARTH_INGEST_NATS_PASSWORD: "pw" }, "nats://127.0.0.1:4222")
 * // → settings for user "app", inbox prefix "_INBOX_app"
 */
export function ingestNatsOptionsFromEnv(env: NodeJS.ProcessEnv, workerUrl: string): NatsSettings | null {
  const own = Object.entries(env).filter(([name, value]) => name.startsWith(INGEST_NATS_PREFIX) && value);
  if (own.length === 0) return null;
  const mapped: NodeJS.ProcessEnv = { NATS_URL: workerUrl };
  if (!env.HEARTH_INGEST_NATS_URL) {
    for (const name of ["NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY"]) if (env[name]) mapped[name] = env[name];
  }
  for (const [name, value] of own) mapped[`NATS_${name.slice(INGEST_NATS_PREFIX.length)}`] = value;
  try {
    return natsOptionsFromEnv(mapped);
  } catch (err) {
    const message = (err as Error).message.replace(/\bNATS_/g, INGEST_NATS_PREFIX);
    throw new HearthError("ERR_BAD_REQUEST", `The ingest identity: ${message}`, { cause: err });
  }
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger("worker");
  // HEARTH_METRICS_PORT, checked before connecting. Executors inherit HEARTH_* but never read it.
  const listen = metricsListenFromEnv(env);
  const nats = natsOptionsFromEnv(env);
  const ingestNats = ingestNatsOptionsFromEnv(env, nats.url);
  const secretsKeyring = SecretKeyring.fromEnv(env);
  // Executors are spawned with this process's environment: drop what is ours alone once read.
  for (const name of OWN_SECRETS) delete process.env[name];
  for (const name of Object.keys(process.env)) if (name.startsWith(INGEST_NATS_PREFIX)) delete process.env[name];
  const nc = await connectNats(nats, "hearth-worker", log);
  const ingestNc = ingestNats
    ? await connectNats(ingestNats, "hearth-worker-ingest", log.child({ connection: "ingest" }))
    : undefined;
  const worker = new Worker({
    nc,
    ...(ingestNc ? { ingestNc } : {}),
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
    secretsKeyring,
    log,
  });
  await worker.start();
  const metricsServer = listen ? await startMetricsServer({ ...listen, metrics: () => worker.metrics(), log }) : null;
  if (metricsServer) announceMetrics(metricsServer);
  onShutdownSignal(log, async () => {
    await metricsServer?.close();
    await worker.close();
    await ingestNc?.drain();
    await nc.drain();
  });
}
