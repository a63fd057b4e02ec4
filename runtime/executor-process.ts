import { type ChildProcess, fork } from "node:child_process";
import { type FunctionRecord, HearthError, type Logger, modulePath, terminate } from "../protocol/index.ts";
import type {
  ExecutorCommand,
  ExecutorMessage,
  MetricsAnswer,
  PrefetchNotice,
  SupervisorMessage,
} from "./executor/ipc.ts";

const EXECUTOR_MAIN = modulePath("./executor/main.ts", import.meta.url);
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/**
 * Variables an executor may inherit, by exact name or prefix; everything else in the worker's
 * environment (cloud keys, database URLs, the admin token) stays out. Executors run untrusted code:
 * a sandbox escape must find nothing in `process.env` beyond what the executor needs to run.
 */
const INHERITED_NAMES = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "TMPDIR",
  "TZ",
  "LANG",
  "LANGUAGE",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "UV_THREADPOOL_SIZE",
]);
const INHERITED_PREFIXES = ["HEARTH_", "NATS_", "NODE_", "LC_"];
/** Names that look like secrets, whatever their prefix: HEARTH_TOKEN, HEARTH_SECRETS_*, NODE_AUTH_TOKEN, ... */
const SECRET_NAME =
  /(^|_)(TOKEN|TOKENS|SECRET|SECRETS|PASSWORD|PASSWD|PASSPHRASE|CREDS|CREDENTIALS?|NKEY|SEED|API_?KEY|PRIVATE_?KEY|AUTH)(_|$)/i;
/**
 * The worker's own NATS identity (protocol/connect.ts reads these), which an executor must not
 * borrow: it connects as itself, from HEARTH_EXECUTOR_NATS_*. The inbox prefix is bound to a user.
 */
const WORKER_NATS_IDENTITY = new Set(["NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_INBOX_PREFIX"]);
/** `HEARTH_EXECUTOR_NATS_<X>` in the worker's environment becomes the executor's `NATS_<X>`. */
const EXECUTOR_NATS_PREFIX = "HEARTH_EXECUTOR_NATS_";
/**
 * The identity the worker reads `nats://` trigger sources with (runtime/main.ts), user name and URL
 * included: an executor has no use for any of it.
 */
const INGEST_NATS_PREFIX = "HEARTH_INGEST_NATS_";

/**
 * The environment of an executor process, built in this one place from the worker's: an allow-list
 * of names ({@link INHERITED_NAMES}, `HEARTH_*`, `NATS_*`, `NODE_*`, `LC_*`) minus anything
 * secret-looking (HEARTH_TOKEN, HEARTH_SECRETS_*), the worker's NATS credentials (NATS_USER,
 * NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY*, NATS_INBOX_PREFIX) and its ingest identity
 * (HEARTH_INGEST_NATS_*); then `HEARTH_EXECUTOR_NATS_<X>`
 * mapped to `NATS_<X>` (the executors' own NATS identity, e.g. HEARTH_EXECUTOR_NATS_USER and
 * _PASSWORD, or _CREDS), and `NATS_URL` without any `user:password@`.
 *
 * @example
 * buildExecutorEnv({ HEARTH_TOKEN: "t", HEARTH_EXECUTOR_NATS_USER: "exec", PATH: "/bin" }, { natsUrl, node })
 * // → { PATH: "/bin", NATS_USER: "exec", NATS_URL: natsUrl, HEARTH_NODE_ID: node }
 */
export function buildExecutorEnv(
  inherited: Readonly<Record<string, string | undefined>>,
  settings: { readonly natsUrl: string; readonly node: string },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inherited)) {
    if (value === undefined || name.startsWith(EXECUTOR_NATS_PREFIX) || name.startsWith(INGEST_NATS_PREFIX)) continue;
    if (!INHERITED_NAMES.has(name) && !INHERITED_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    if (SECRET_NAME.test(name) || WORKER_NATS_IDENTITY.has(name)) continue;
    env[name] = value;
  }
  for (const [name, value] of Object.entries(inherited)) {
    if (value !== undefined && name.startsWith(EXECUTOR_NATS_PREFIX)) {
      env[`NATS_${name.slice(EXECUTOR_NATS_PREFIX.length)}`] = value;
    }
  }
  env.NATS_URL = withoutUserinfo(settings.natsUrl);
  env.HEARTH_NODE_ID = settings.node;
  return env;
}

/** `nats://user:pass@host:4222,tls://tok@h2` → `nats://host:4222,tls://h2`: credentials in a URL are the worker's. */
function withoutUserinfo(urls: string): string {
  return urls
    .split(",")
    .map((entry) => entry.trim().replace(/^((?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?)[^/]*@/, "$1"))
    .join(",");
}

export interface ExecutorProcessOptions {
  readonly natsUrl: string;
  /** The worker node's id; the executor's own id is derived from it and its pid. */
  readonly node: string;
  /** Added to the worker's environment before {@link buildExecutorEnv} filters it. */
  readonly env?: Readonly<Record<string, string>>;
  readonly log: Logger;
  /**
   * The executor asks for the current record of a function it hosts (a request named a newer
   * version). Only called for names in `hosted`; anything else is answered null.
   */
  readonly onRecordQuery?: (name: string, version: string) => Promise<FunctionRecord | null>;
  /**
   * Turns a record into what the executor is sent (the worker opens its secrets into its env here:
   * runtime/secret-env.ts). Every record an executor gets passes through it, in `load` and `update`
   * commands and in record answers. A rejection fails that command (or answers the query null).
   */
  readonly prepareRecord?: (record: FunctionRecord) => FunctionRecord | Promise<FunctionRecord>;
  /** Called when the executor unloaded a function on its own (idle, or removed). */
  readonly onUnloaded?: (name: string) => void;
  /** The executor asked to be replaced (see RetireRequest). */
  readonly onRetire?: (reason: string) => void;
  /** Called once when the child exits for any reason other than stop(). */
  readonly onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/**
 * One executor child process as seen from the supervisor: spawn, await ready, send commands, stop.
 * Executors are processes, not threads, because some V8 out-of-memory paths abort the whole
 * process (isolated-vm README, `onCatastrophicError`); a process boundary keeps that from taking the worker.
 */
export class ExecutorProcess {
  /** Functions loaded there (as the heartbeat reports them). */
  readonly functions = new Set<string>();
  /**
   * Functions whose record this executor was sent (loaded or loading): the only ones it is sent
   * updates for and may ask records of. Cleared as it unloads them.
   */
  readonly hosted = new Set<string>();
  /** The executor's id (from its ready message): the token in its invocation subjects. */
  id = "";
  readonly #options: ExecutorProcessOptions;
  readonly #pending = new Map<number, { resolve(): void; reject(err: Error): void }>();
  #child: ChildProcess | null = null;
  #nextRequestId = 1;
  #stopping = false;
  #ready = false;
  /** Commands whose record is being prepared: later commands wait behind them, so none overtakes another. */
  #preparing = 0;
  #sendOrder: Promise<unknown> = Promise.resolve();
  /** Metrics queries awaiting the executor's answer, by request id. */
  readonly #metricsQueries = new Map<number, (metrics: MetricsAnswer["metrics"] | null) => void>();

  constructor(options: ExecutorProcessOptions) {
    this.#options = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Ready and not exited: it can take commands and serve invocations. */
  get running(): boolean {
    return this.#ready && this.#child?.exitCode === null && this.#child.signalCode === null;
  }

  /** Spawns the child and resolves when it reports ready (NATS connected, buckets open). */
  start(): Promise<void> {
    const child = fork(EXECUTOR_MAIN, [], {
      execArgv: ["--no-node-snapshot", "--disable-warning=ExperimentalWarning"],
      env: buildExecutorEnv(
        { ...process.env, ...this.#options.env },
        { natsUrl: this.#options.natsUrl, node: this.#options.node },
      ),
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    // A failed spawn or a send racing the child's death must not crash the worker.
    child.on("error", (err) => this.#options.log.error({ err, pid: child.pid }, "executor process error"));
    this.#child = child;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error("executor did not become ready in time"));
        child.kill("SIGKILL"); // its exit then restarts the slot
      }, READY_TIMEOUT_MS);
      child.on("message", (message: ExecutorMessage) => {
        if (message.type === "ready") {
          this.id = message.id;
          this.#ready = true;
          clearTimeout(timer);
          this.#options.log.info({ pid: child.pid, executor: message.id }, "executor ready");
          resolve();
        } else if (message.type === "unloaded") {
          this.functions.delete(message.name);
          this.hosted.delete(message.name);
          this.#options.onUnloaded?.(message.name);
        } else if (message.type === "retire") {
          this.#options.onRetire?.(String(message.reason));
        } else if (message.type === "record-query") {
          this.#answerRecordQuery(child, message.requestId, message.name, message.version);
        } else if (message.type === "metrics") {
          this.#metricsQueries.get(message.requestId)?.(Array.isArray(message.metrics) ? message.metrics : null);
        } else {
          const pending = this.#pending.get(message.requestId);
          this.#pending.delete(message.requestId);
          if (message.ok) pending?.resolve();
          else pending?.reject(new HearthError(message.code, message.message));
        }
      });
      child.once("exit", (code, signal) => {
        this.#ready = false;
        clearTimeout(timer);
        reject(new Error(`executor exited before ready (code ${code}, signal ${signal})`));
        for (const pending of this.#pending.values())
          pending.reject(new HearthError("ERR_INTERNAL", "executor exited"));
        this.#pending.clear();
        for (const done of [...this.#metricsQueries.values()]) done(null);
        // onExit reads `functions` to reload them elsewhere, so clear only after it.
        if (!this.#stopping) this.#options.onExit(code, signal);
        this.functions.clear();
        this.hosted.clear();
      });
    });
  }

  /**
   * An executor runs untrusted code, so its query is checked: a function it does not host gets null,
   * never another function's record (and env).
   */
  #answerRecordQuery(child: ChildProcess, requestId: unknown, name: unknown, version: unknown): void {
    if (typeof requestId !== "number") return;
    const hosted = typeof name === "string" && typeof version === "string" && this.hosted.has(name);
    if (!hosted)
      this.#options.log.warn({ executor: this.id, fn: name }, "executor asked for a record it does not host");
    const answer = hosted && this.#options.onRecordQuery ? this.#options.onRecordQuery(name, version) : null;
    Promise.resolve(answer)
      .then((record) => (record ? this.#prepare(record) : null))
      .catch((err: unknown) => {
        this.#options.log.error({ err, executor: this.id, fn: name }, "record query failed");
        return null;
      })
      .then((record) => this.#send(child, { type: "record", requestId, record }));
  }

  #send(child: ChildProcess, message: SupervisorMessage): void {
    if (child.connected) child.send(message, (err) => err && this.#options.log.debug({ err }, "executor unreachable"));
  }

  /**
   * The executor's metrics registry as JSON (prom-client `getMetricsAsJSON()`), or null when it does
   * not answer within `timeoutMs` (busy, dying, gone): a scrape then goes on without it.
   */
  collectMetrics(timeoutMs = 2_000): Promise<MetricsAnswer["metrics"] | null> {
    const child = this.#child;
    if (!this.running || !child?.connected) return Promise.resolve(null);
    const requestId = this.#nextRequestId++;
    return new Promise((resolve) => {
      const done = (metrics: MetricsAnswer["metrics"] | null) => {
        clearTimeout(timer);
        this.#metricsQueries.delete(requestId);
        resolve(metrics);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      this.#metricsQueries.set(requestId, done);
      this.#send(child, { type: "metrics-query", requestId });
    });
  }

  /** One-way: the executor carries it out in the background and does not answer. */
  notify(notice: PrefetchNotice): void {
    if (this.running && this.#child) this.#send(this.#child, notice);
  }

  #prepare(record: FunctionRecord): FunctionRecord | Promise<FunctionRecord> {
    const prepare = this.#options.prepareRecord;
    if (!prepare) return record;
    const prepared = prepare(record);
    if (!(prepared instanceof Promise)) return prepared;
    return prepared.catch((err: unknown) => {
      this.#options.log.error({ err, executor: this.id, fn: record.name }, "preparing the function's record failed");
      throw err;
    });
  }

  /**
   * Sends a command and resolves when the executor has carried it out. Commands reach the executor
   * in the order they were made, however long preparing each one's record takes.
   */
  request(command: ExecutorCommand): Promise<void> {
    const prepared = command.type === "load" || command.type === "update" ? this.#prepare(command.record) : null;
    if (!(prepared instanceof Promise) && this.#preparing === 0)
      return this.#dispatch(prepared ? ({ ...command, record: prepared } as ExecutorCommand) : command);
    // Handled now: it may reject before its turn comes, and an unhandled rejection ends the worker.
    if (prepared instanceof Promise) prepared.catch(() => {});
    this.#preparing++;
    const sent = this.#sendOrder
      .then(async () => {
        const record = await prepared;
        // Wrapped: the next command waits for this one to be sent, not answered.
        return { reply: this.#dispatch(record ? ({ ...command, record } as ExecutorCommand) : command) };
      })
      .finally(() => this.#preparing--);
    this.#sendOrder = sent.catch(() => {});
    return sent.then(({ reply }) => reply);
  }

  #dispatch(command: ExecutorCommand): Promise<void> {
    const child = this.#child;
    if (!child?.connected) return Promise.reject(new HearthError("ERR_INTERNAL", "executor is not running"));
    const requestId = this.#nextRequestId++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject });
      child.send({ ...command, requestId }, (err) => {
        if (err) {
          this.#pending.delete(requestId);
          reject(new HearthError("ERR_INTERNAL", `executor unreachable: ${err.message}`));
        }
      });
    });
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves when the child is gone. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#child) await terminate(this.#child, STOP_GRACE_MS);
  }

  /** It exited by itself with code 0: every request it took was answered (see Executor.close). */
  get exitedCleanly(): boolean {
    return this.#child?.exitCode === 0;
  }
}
