import { type ChildProcess, fork } from "node:child_process";
import { type ErrorCode, HearthError, type Logger, modulePath, silentLogger, terminate } from "../protocol/index.ts";
import { DEFAULT_CHECK_WALL_MS, type ModuleCheck, type ModuleUnderCheck, refusal } from "./module-check.ts";

const CHECK_MAIN = modulePath("./module-check-main.ts", import.meta.url);
/** Starting the process and building the bootstrap's snapshot, on the first check (≈0.5–1 s). */
const START_ALLOWANCE_MS = 20_000;
/**
 * An idle check process is stopped after this long: it holds ≈135 MB (Node, isolated-vm, the
 * bootstrap's snapshot, esbuild's service), deploys are rare, and the next one pays ≈0.35 s to start
 * another. A minute keeps it warm through a session of `hearth deploy --watch`.
 */
const DEFAULT_IDLE_MS = 60_000;
/**
 * Variables the check process keeps. It runs untrusted code, so a sandbox escape there must find
 * none of the gateway's: no token, no secrets key, no NATS credentials (it needs no NATS at all).
 */
const KEPT_NAMES = ["PATH", "TZ", "LANG", "HEARTH_LOG_LEVEL"];

/** The gateway's request: evaluate `module`. */
export interface CheckRequest {
  readonly id: number;
  readonly module: ModuleUnderCheck;
}

/** The process's answer to request `id`: nothing when the module passed, else the error to throw. */
export interface CheckAnswer {
  readonly id: number;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

interface PendingCheck {
  readonly request: CheckRequest;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
  /** The process it was last sent to. */
  child?: ChildProcess;
}

/**
 * Evaluates deploys' modules in a child process (module-check-main.ts) rather than in the gateway.
 * isolated-vm contains a module's exceptions, time and memory, but not every out-of-memory: V8 can
 * give up for the whole process (isolated-vm README, `onCatastrophicError`), and a gateway that did
 * the check itself went down with one deploy (measured: a million-key object in a 16 MB function's
 * top level aborted it). Here the child dies, that deploy is refused with ERR_MODULE_INIT, and the
 * next check starts a fresh child; checks queued behind the crashed one are sent to it.
 */
export class ModuleCheckProcess implements ModuleCheck {
  readonly #log: Logger;
  readonly #wallTimeoutMs: number;
  readonly #env: NodeJS.ProcessEnv;
  /** Sent and not yet answered, oldest first: the child evaluates them in this order. */
  readonly #pending = new Map<number, PendingCheck>();
  readonly #idleMs: number;
  #idleTimer: NodeJS.Timeout | undefined;
  #child: ChildProcess | null = null;
  /** Children this side stopped (idle, or no longer answering): their exit blames no module. */
  readonly #killed = new WeakSet<ChildProcess>();
  #nextId = 1;
  #closed = false;

  constructor(options: { log?: Logger; wallTimeoutMs?: number; idleMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    this.#log = options.log ?? silentLogger();
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.#wallTimeoutMs = options.wallTimeoutMs ?? DEFAULT_CHECK_WALL_MS;
    this.#env = checkProcessEnv(options.env ?? process.env);
  }

  /** The running check process's pid, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  check(module: ModuleUnderCheck): Promise<void> {
    if (this.#closed) return Promise.reject(new HearthError("ERR_INTERNAL", "The deploy check has been shut down"));
    return new Promise((resolve, reject) => {
      const pending: PendingCheck = { request: { id: this.#nextId++, module }, resolve, reject };
      this.#pending.set(pending.request.id, pending);
      this.#send(pending);
    });
  }

  /** Stops the check process; checks still pending fail. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    const child = this.#child;
    this.#child = null;
    for (const pending of this.#pending.values())
      this.#settle(pending, new HearthError("ERR_INTERNAL", "The deploy check was shut down"));
    if (child) await terminate(child, 2_000);
  }

  #send(pending: PendingCheck): void {
    clearTimeout(this.#idleTimer);
    const child = this.#child ?? this.#start();
    clearTimeout(pending.timer);
    // Its own bound and the queue ahead of it (both in #pending), and a first start: only a process
    // stuck for good trips it.
    const bound = this.#pending.size * this.#wallTimeoutMs + START_ALLOWANCE_MS;
    pending.timer = setTimeout(() => {
      this.#log.error({ fn: pending.request.module.name }, "the deploy check process stopped answering: restarting it");
      this.#settle(pending, refusal(pending.request.module.name, `its evaluation did not finish within ${bound} ms`));
      this.#killed.add(child);
      child.kill("SIGKILL");
    }, bound);
    pending.child = child;
    child.send(pending.request);
  }

  #start(): ChildProcess {
    const child = fork(CHECK_MAIN, [], {
      execPath: process.execPath,
      // isolated-vm needs --no-node-snapshot on Node >= 20 (its README), as executors do.
      execArgv: ["--no-node-snapshot", "--disable-warning=ExperimentalWarning"],
      env: this.#env,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.#child = child;
    child.on("message", (answer: CheckAnswer) => {
      const pending = this.#pending.get(answer.id);
      if (!pending) return;
      this.#settle(pending, answer.error ? new HearthError(answer.error.code, answer.error.message) : null);
    });
    child.on("error", (err) => this.#log.error({ err }, "the deploy check process failed"));
    child.once("exit", (code, signal) => {
      if (this.#child === child) this.#child = null;
      if (this.#closed) return;
      const queued = [...this.#pending.values()].filter((pending) => pending.child === child);
      // Unless this side stopped it, the process ended while evaluating the oldest pending check.
      const crashed = this.#killed.has(child) ? undefined : queued.shift();
      for (const pending of queued) this.#send(pending);
      if (!crashed) return;
      this.#log.warn({ fn: crashed.request.module.name, code, signal }, "a deploy check ended its process");
      // A catastrophic V8 error ends the process by a signal (module-check-main.ts), as the kernel's
      // OOM killer does; an exit code means the process itself failed (its stderr says why).
      const err = signal
        ? refusal(
            crashed.request.module.name,
            `evaluating its top level brought V8 down (${signal}), as an out-of-memory that no limit stops in time does`,
          )
        : new HearthError("ERR_INTERNAL", `The deploy check process exited with code ${code} before it answered`);
      this.#settle(crashed, err);
    });
    return child;
  }

  #settle(pending: PendingCheck, err: Error | null): void {
    if (!this.#pending.delete(pending.request.id)) return;
    clearTimeout(pending.timer);
    if (err) pending.reject(err);
    else pending.resolve();
    if (this.#pending.size === 0) this.#stopWhenIdle();
  }

  #stopWhenIdle(): void {
    const child = this.#child;
    if (!child) return;
    this.#idleTimer = setTimeout(() => {
      if (this.#child !== child || this.#pending.size > 0) return;
      this.#child = null;
      this.#killed.add(child);
      void terminate(child, 2_000);
    }, this.#idleMs);
    this.#idleTimer.unref();
  }
}

/** The check process's environment: only {@link KEPT_NAMES} of `inherited`. */
export function checkProcessEnv(inherited: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of KEPT_NAMES) {
    const value = inherited[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}
