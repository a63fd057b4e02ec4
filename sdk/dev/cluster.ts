import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { request } from "undici";
import { ANY_PORT, isMetricsAnnouncement } from "../../metrics/index.ts";
import {
  AsyncStore,
  connectNats,
  ensureLogStream,
  FunctionStore,
  intFromEnv,
  modulePath,
  natsOptionsFromEnv,
  TriggerStore,
  terminate,
  VersionStore,
} from "../../protocol/index.ts";
import { clusterUrlPath, hearthHome, tokenPath } from "../config.ts";
import { wantsColor } from "../terminal-colors.ts";
import { ComponentLogs, type LogFormat, parseLogFormat } from "./log-view.ts";
import {
  type ClusterIdentities,
  createClusterIdentities,
  executorNatsEnvOf,
  identitiesPath,
  ingestNatsEnvOf,
  natsEnvOf,
  natsUrlWithCredentials,
  natsUsersOf,
  saveIdentities,
} from "./nats-identities.ts";
import { type NatsServer, startNatsServer } from "./nats-server.ts";
import { resolveSecretsKey } from "./secrets-key.ts";

const CLI_MAIN = modulePath("../cli/main.ts", import.meta.url);
const READY_TIMEOUT_MS = 30_000;
/** Components announce their /metrics URL as soon as it listens; a missing one is left out after this. */
const METRICS_ANNOUNCE_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 10_000;
/** After the components exited, how long their last lines may take to be printed (pretty logs only). */
const LOG_FLUSH_MS = 2_000;

/** How long to wait before restarting a component that died. */
export interface RestartBackoff {
  /** First delay, and the delay again once a component stayed up `resetAfterMs`. */
  readonly initialMs: number;
  /** Each quick death doubles the delay, up to this. */
  readonly maxMs: number;
  readonly resetAfterMs: number;
}

/**
 * 250 ms, 500 ms, 1 s, ... 10 s. A crash after startup is usually a one-off (an OOM kill, a `kill`
 * from a test), so the first restart is fast; a crash loop settles at one attempt per 10 s instead of
 * burning a core. Up for 30 s counts as healthy and starts over at 250 ms.
 */
export const DEFAULT_RESTART_BACKOFF: RestartBackoff = Object.freeze({
  initialMs: 250,
  maxMs: 10_000,
  resetAfterMs: 30_000,
});

/**
 * The delay before the next restart of a component that ran `uptimeMs`, given the delay used before
 * its previous restart (0 if none yet).
 *
 * @example
 * nextRestartDelayMs(0, 100) // 250: first restart
 * nextRestartDelayMs(250, 100) // 500: it died again at once
 * nextRestartDelayMs(8_000, 60_000) // 250: it had been up a minute
 */
export function nextRestartDelayMs(
  previousDelayMs: number,
  uptimeMs: number,
  backoff: RestartBackoff = DEFAULT_RESTART_BACKOFF,
): number {
  if (previousDelayMs <= 0 || uptimeMs >= backoff.resetAfterMs) return backoff.initialMs;
  return Math.min(previousDelayMs * 2, backoff.maxMs);
}

/** A component that died after startup, and when it will be started again. */
export interface ComponentExit {
  /** `gateway`, `scheduler`, `worker-1`, ... */
  readonly role: string;
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly uptimeMs: number;
  readonly restartInMs: number;
}

/** A component started again after it died. */
export interface ComponentRestart {
  readonly role: string;
  readonly pid: number | undefined;
  readonly previousPid: number | undefined;
  /** Restarts of this role so far, this one included. */
  readonly restarts: number;
}

export interface LocalClusterOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Default DEFAULT_RESTART_BACKOFF. */
  readonly restartBackoff?: RestartBackoff;
  /** A component died on its own after startup; it will be restarted alone after `restartInMs`. */
  readonly onComponentExit?: (exit: ComponentExit) => void;
  /** A component was started again, with the same role and environment. */
  readonly onComponentRestart?: (restart: ComponentRestart) => void;
  /**
   * "json" (default, else HEARTH_LOG_FORMAT of `env`): the components write their pino JSON straight
   * to our stdout and stderr. "pretty": their output is piped and rendered one readable line per
   * record, coloured on a terminal unless NO_COLOR is set (log-view.ts). `hearth dev` asks for
   * `devLogFormat(env, process.stdout)`: pretty on a terminal.
   */
  readonly logFormat?: LogFormat;
}

export interface LocalCluster {
  readonly url: string;
  readonly token: string;
  /** Where the token was saved, or null when it came from HEARTH_TOKEN. */
  readonly tokenPath: string | null;
  readonly natsUrl: string;
  /**
   * Where the NATS identities of each role were saved (mode 0600), or null when NATS_URL named a
   * server of the user's (whose credentials, if any, come from the environment).
   */
  readonly identitiesPath: string | null;
  /**
   * `nats://app:<password>@host:port`: the app identity, for applications' own events (the subjects
   * and streams of `nats://` and `jetstream://` triggers), everywhere but Hearth's space. A new
   * password on each start, also saved in `identitiesPath`. null when NATS_URL named a server of the
   * user's.
   */
  readonly appNatsUrl: string | null;
  /**
   * The running process of each role (`nats-server`, `gateway`, `scheduler`, `worker-1`, ...), read
   * anew on each access: a restarted component shows its new pid, one waiting to restart `undefined`.
   */
  readonly pids: Readonly<Record<string, number | undefined>>;
  /**
   * Where the scheduler and each worker serve /metrics (`scheduler`, `worker-1`, ...: a URL each, on
   * free ports picked at start). The gateway's is `<url>/metrics`, with the admin token.
   */
  readonly metrics: Readonly<Record<string, string>>;
  /** SIGTERM to every component, SIGKILL after a grace period; then nats-server. Idempotent. */
  stop(): Promise<void>;
}

/** One supervised role: its environment is fixed, its process changes on each restart. */
interface Component {
  readonly role: string;
  readonly env: NodeJS.ProcessEnv;
  child: ChildProcess;
  startedAtMs: number;
  lastDelayMs: number;
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Variables that would override the identity `hearth dev` gives each component, or leak one
 * component's secrets to another: dropped from the environment it passes on.
 */
const INHERITED_SECRETS = [
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_TOKEN",
  "NATS_NKEY_SEED_FILE",
  "NATS_CREDS",
  "NATS_INBOX_PREFIX",
  "NATS_TLS_CA",
  "NATS_TLS_CERT",
  "NATS_TLS_KEY",
  "HEARTH_EXECUTOR_NATS_USER",
  "HEARTH_EXECUTOR_NATS_PASSWORD",
  "HEARTH_EXECUTOR_NATS_CREDS",
];
/** The same, for every variable of this prefix (the ingest identity of workers: HEARTH_INGEST_NATS_*). */
const INHERITED_SECRET_PREFIXES = ["HEARTH_INGEST_NATS_"];

/**
 * `hearth dev`: a whole cluster on this machine, each component its own process, as in production.
 * Uses NATS_URL if set (with the NATS_* credentials of the environment), else starts nats-server
 * with JetStream in $HEARTH_HOME/nats and least-privilege users: one identity per role, new random
 * passwords on each start, saved in $HEARTH_HOME/nats-identities.json (docs/security.md, "NATS with least privilege"). Only the
 * gateway gets the admin token. Workers also get the app identity (HEARTH_INGEST_NATS_*), to read
 * `nats://` trigger sources with. A component that dies after startup is restarted alone, with
 * back-off; during startup a death fails the whole start.
 */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const env = options.env ?? process.env;
  const backoff = options.restartBackoff ?? DEFAULT_RESTART_BACKOFF;
  const logFormat =
    options.logFormat !== undefined
      ? parseLogFormat(options.logFormat, "logFormat")
      : env.HEARTH_LOG_FORMAT
        ? parseLogFormat(env.HEARTH_LOG_FORMAT, "HEARTH_LOG_FORMAT")
        : "json";
  const logs = logFormat === "pretty" ? new ComponentLogs({ colorize: wantsColor(env, process.stdout) }) : null;
  const home = hearthHome(env);
  const port = intFromEnv(env, "HEARTH_PORT", 8080);
  const workers = intFromEnv(env, "HEARTH_WORKERS", 1);
  const host = env.HEARTH_HOST || "127.0.0.1";
  // Before anything is written: a second `hearth dev` must not replace the running one's token.
  await refuseBusyPort(host, port);
  mkdirSync(home, { recursive: true });
  const { token, savedAt } = resolveToken(env);
  const secretsKey = resolveSecretsKey(env).key;

  const nodes = Array.from({ length: workers }, (_, i) => `worker-${i + 1}`);
  const identities = env.NATS_URL ? null : createClusterIdentities(nodes);
  const nats: NatsServer | null = identities
    ? await startNatsServer({ dataDir: join(home, "nats"), users: natsUsersOf(identities) }, env)
    : null;
  const natsUrl = nats?.url ?? (env.NATS_URL as string);
  const savedIdentitiesAt = identities ? identitiesPath(env) : null;
  if (identities && savedIdentitiesAt) {
    saveIdentities(savedIdentitiesAt, identities);
    await createStore(natsUrl, identities).catch(async (err: unknown) => {
      await nats?.stop();
      throw err;
    });
  }
  const components = new Map<string, Component>();
  /** Role → its /metrics URL (scheduler and workers). */
  const metrics: Record<string, string> = {};
  let stopping = false;
  // Until startup completes, a dying component fails startLocalCluster itself (waitUntilReady).
  let started = false;

  const supervise = (component: Component) => {
    const { child } = component;
    component.startedAtMs = Date.now();
    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (gone) return;
      gone = true;
      if (started && !stopping) scheduleRestart(component, code, signal);
    };
    child.once("exit", onGone);
    // A restarted component binds a new port: the latest announcement wins.
    child.on("message", (message) => {
      if (isMetricsAnnouncement(message)) metrics[component.role] = message.url;
    });
    // Other "error" events (a failed kill) leave the process running; only a failed spawn is a death.
    child.on("error", () => {
      if (child.pid === undefined) onGone(null, null);
    });
  };

  const scheduleRestart = (component: Component, code: number | null, signal: NodeJS.Signals | null) => {
    const uptimeMs = Date.now() - component.startedAtMs;
    const delayMs = nextRestartDelayMs(component.lastDelayMs, uptimeMs, backoff);
    component.lastDelayMs = delayMs;
    const previousPid = component.child.pid;
    options.onComponentExit?.({ role: component.role, pid: previousPid, code, signal, uptimeMs, restartInMs: delayMs });
    component.restartTimer = setTimeout(() => {
      component.restartTimer = undefined;
      if (stopping) return;
      component.restarts++;
      component.child = spawnComponent(component.role, component.env, nats?.lifeline ?? null, logs);
      supervise(component);
      const { role, restarts } = component;
      options.onComponentRestart?.({ role, pid: component.child.pid, previousPid, restarts });
    }, delayMs);
  };

  /** The URL this cluster recorded for the CLI, once it is ready. */
  let recordedUrl: string | null = null;
  // The same promise for every caller, so "stopped" always means every child is gone.
  let stopped: Promise<void> | null = null;
  const stop = () => {
    stopping = true;
    stopped ??= (async () => {
      for (const component of components.values()) clearTimeout(component.restartTimer);
      await Promise.all([...components.values()].map(({ child }) => terminate(child, STOP_GRACE_MS)));
      await logs?.flushed(LOG_FLUSH_MS);
      await nats?.stop();
      if (recordedUrl) forgetClusterUrl(env, recordedUrl);
    })();
    return stopped;
  };

  try {
    const roles = ["scheduler", ...nodes, "gateway"];
    for (const role of roles) {
      const roleEnv = {
        ...componentEnv(env, role, identities),
        NATS_URL: natsUrl,
        HEARTH_PORT: String(port),
        HEARTH_WORKER_ID: role,
        ...(role === "gateway" ? { HEARTH_TOKEN: token } : {}),
        // The gateway seals secrets, workers open them; the scheduler has no use for the key.
        ...(role === "scheduler" ? {} : { HEARTH_SECRETS_KEY: secretsKey }),
        // Scheduler and workers: /metrics on a port each picks when it binds, and announces over IPC
        // (a port picked here could be taken before it binds). The gateway's is on its own port.
        ...(role === "gateway" ? {} : { HEARTH_METRICS_PORT: ANY_PORT }),
      };
      const component: Component = {
        role,
        env: roleEnv,
        child: spawnComponent(role, roleEnv, nats?.lifeline ?? null, logs),
        startedAtMs: 0,
        lastDelayMs: 0,
        restarts: 0,
        restartTimer: undefined,
      };
      components.set(role, component);
      supervise(component);
    }
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    await waitUntilReady(url, components);
    await metricsAnnounced(metrics, roles.length - 1);
    // Where the CLI of another shell finds this cluster (sdk/config.ts); gone again on stop.
    writeFileSync(clusterUrlPath(env), `${url}\n`);
    recordedUrl = url;
    started = true;
    return {
      url,
      token,
      tokenPath: savedAt,
      natsUrl,
      identitiesPath: savedIdentitiesAt,
      appNatsUrl: identities ? natsUrlWithCredentials(natsUrl, identities.app) : null,
      metrics,
      get pids() {
        const pids: Record<string, number | undefined> = { "nats-server": nats?.pid };
        for (const [role, { child }] of components) pids[role] = isRunning(child) ? child.pid : undefined;
        return pids;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The environment of one role: the user's, without the admin token (only the gateway gets it) and,
 * when `hearth dev` runs NATS, without any NATS credential, plus the role's own identity (a worker:
 * its node's worker and executor identities, and the app identity for `nats://` trigger sources).
 */
function componentEnv(env: NodeJS.ProcessEnv, role: string, identities: ClusterIdentities | null): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  delete out.HEARTH_TOKEN;
  delete out.HEARTH_SECRETS_KEY;
  if (role === "scheduler") delete out.HEARTH_SECRETS_PREVIOUS_KEY;
  if (!identities) return role.startsWith("worker-") ? { ...out, ...sharedExecutorEnv(env) } : out;
  for (const name of Object.keys(out)) {
    if (INHERITED_SECRETS.includes(name) || INHERITED_SECRET_PREFIXES.some((prefix) => name.startsWith(prefix)))
      delete out[name];
  }
  if (role === "gateway") return { ...out, ...natsEnvOf(identities.gateway) };
  if (role === "scheduler") return { ...out, ...natsEnvOf(identities.scheduler) };
  const node = identities.nodes.get(role);
  if (!node) throw new Error(`No NATS identity for ${role}`);
  return {
    ...out,
    ...natsEnvOf(node.worker),
    ...executorNatsEnvOf(node.executor),
    ...ingestNatsEnvOf(identities.app),
  };
}

/**
 * Against a server of the user's (NATS_URL) with no executor identity given (HEARTH_EXECUTOR_NATS_*),
 * executors share the environment's: a worker never hands its own on, so without this they could not
 * connect to a server that requires credentials.
 */
function sharedExecutorEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  if (Object.keys(env).some((name) => name.startsWith("HEARTH_EXECUTOR_NATS_"))) return {};
  const shared: Record<string, string> = {};
  for (const name of ["NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_NKEY_SEED_FILE", "NATS_CREDS"]) {
    const value = env[name];
    if (value) shared[`HEARTH_EXECUTOR_${name}`] = value;
  }
  if (Object.keys(shared).length > 0) return shared;
  // Credentials in NATS_URL (the only source left): the worker passes its executors the URL without them.
  const { auth, authenticator } = natsOptionsFromEnv(env);
  if (auth !== "user" && auth !== "token") return shared;
  const fromUrl = authenticator?.() as { user?: string; pass?: string; auth_token?: string };
  if (fromUrl.user !== undefined) shared.HEARTH_EXECUTOR_NATS_USER = fromUrl.user;
  if (fromUrl.pass !== undefined) shared.HEARTH_EXECUTOR_NATS_PASSWORD = fromUrl.pass;
  if (fromUrl.auth_token !== undefined) shared.HEARTH_EXECUTOR_NATS_TOKEN = fromUrl.auth_token;
  return shared;
}

/**
 * Creates the function store's and the async store's streams and buckets as the control plane, before any other component starts:
 * the others may only look them up (nats-permissions.ts).
 */
async function createStore(natsUrl: string, identities: ClusterIdentities): Promise<void> {
  const settings = natsOptionsFromEnv({ NATS_URL: natsUrl, ...natsEnvOf(identities.gateway) });
  const nc = await connectNats(settings, "hearth-dev");
  try {
    const [, asyncStore] = await Promise.all([
      FunctionStore.open(nc),
      AsyncStore.open(nc),
      TriggerStore.open(nc),
      VersionStore.open(nc),
    ]);
    await ensureLogStream(asyncStore.jsm);
  } finally {
    await nc.close();
  }
}

/**
 * One component process: `hearth <gateway|scheduler|worker>` with this Node binary. The IPC channel
 * carries nothing; its closing tells the child that `hearth dev` is gone. The child holds nats-server's
 * lifeline on fd 4 and never touches it: if `hearth dev` is killed, nats-server stays until the
 * components have drained and exited, then goes too. With `logs`, its stdout and stderr (and those of
 * the executors a worker spawns, which inherit them) are piped there; else they are ours.
 */
function spawnComponent(
  role: string,
  env: NodeJS.ProcessEnv,
  natsLifeline: Writable | null,
  logs: ComponentLogs | null,
): ChildProcess {
  const output = logs ? "pipe" : "inherit";
  const child = spawn(process.execPath, [CLI_MAIN, role.replace(/-\d+$/, "")], {
    env,
    stdio: ["ignore", output, output, "ipc", natsLifeline ?? "ignore"],
  });
  logs?.attach(role, child);
  return child;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** HEARTH_TOKEN, else the saved token, else a new one saved (mode 0600) where the CLI looks. */
function resolveToken(env: NodeJS.ProcessEnv): { token: string; savedAt: string | null } {
  if (env.HEARTH_TOKEN) return { token: env.HEARTH_TOKEN, savedAt: null };
  const path = tokenPath(env);
  try {
    const saved = readFileSync(path, "utf8").trim();
    if (saved) return { token: saved, savedAt: path };
  } catch {}
  const token = randomBytes(24).toString("base64url");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return { token, savedAt: path };
}

/** Fails with what to do when something already listens on host:port (another `hearth dev`, say). */
async function refuseBusyPort(host: string, port: number): Promise<void> {
  const busy = await new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(true));
    probe.listen(port, host, () => probe.close(() => resolve(false)));
  });
  if (busy) {
    throw new Error(
      `Port ${port} on ${host} is in use (another \`hearth dev\`? \`npx hearth status\` asks it). ` +
        "Stop it, or start this one on another port: HEARTH_PORT=8081 npm start",
    );
  }
}

/** Removes the recorded URL if it is still this cluster's (another may have started since). */
function forgetClusterUrl(env: NodeJS.ProcessEnv, url: string): void {
  const path = clusterUrlPath(env);
  try {
    if (readFileSync(path, "utf8").trim() === url) rmSync(path);
  } catch {}
}

/** Waits (briefly: they bind at start) until the scheduler and every worker said where /metrics is. */
async function metricsAnnounced(metrics: Record<string, string>, expected: number): Promise<void> {
  const deadline = Date.now() + METRICS_ANNOUNCE_TIMEOUT_MS;
  while (Object.keys(metrics).length < expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function waitUntilReady(url: string, components: Map<string, Component>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    for (const [role, { child }] of components) {
      if (!isRunning(child)) {
        throw new Error(
          `${role} exited during startup (code ${child.exitCode}, signal ${child.signalCode}); see its log above`,
        );
      }
    }
    try {
      const res = await request(`${url}/readyz`);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`The gateway at ${url} was not ready within ${READY_TIMEOUT_MS} ms`);
}
