import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { HearthError, type Logger, terminate } from "../protocol/index.ts";
import type { ExecutorCommand, ExecutorMessage } from "./executor/ipc.ts";

const EXECUTOR_MAIN = fileURLToPath(new URL("./executor/main.ts", import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

export interface ExecutorProcessOptions {
  readonly natsUrl: string;
  /** The worker node's id; the executor's own id is derived from it and its pid. */
  readonly node: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** Called when the executor unloaded a function on its own (idle, or removed). */
  readonly onUnloaded?: (name: string) => void;
  /** Called once when the child exits for any reason other than stop(). */
  readonly onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/**
 * One executor child process as seen from the supervisor: spawn, await ready, send commands, stop.
 * Executors are processes, not threads, because some V8 out-of-memory paths abort the whole
 * process (research/isolated-vm.md §0.2); a process boundary keeps that from taking the worker.
 */
export class ExecutorProcess {
  readonly functions = new Set<string>();
  /** The executor's id (from its ready message): the token in its invocation subjects. */
  id = "";
  readonly #options: ExecutorProcessOptions;
  readonly #pending = new Map<number, { resolve(): void; reject(err: Error): void }>();
  #child: ChildProcess | null = null;
  #nextRequestId = 1;
  #stopping = false;
  #ready = false;

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
      env: {
        ...process.env,
        ...this.#options.env,
        NATS_URL: this.#options.natsUrl,
        HEARTH_NODE_ID: this.#options.node,
      },
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
          this.#options.onUnloaded?.(message.name);
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
        // onExit reads `functions` to reload them elsewhere, so clear only after it.
        if (!this.#stopping) this.#options.onExit(code, signal);
        this.functions.clear();
      });
    });
  }

  /** Sends a command and resolves when the executor has carried it out. */
  request(command: ExecutorCommand): Promise<void> {
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
}
