import { randomUUID } from "node:crypto";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { codeOf, HearthError, type Logger, SUBJECTS, silentLogger, type WorkerHeartbeat } from "../protocol/index.ts";
import { ExecutorProcess } from "./executor-process.ts";

export interface WorkerOptions {
  readonly nc: NatsConnection;
  /** Executors open their own NATS connection to serve invocations directly. */
  readonly natsUrl: string;
  readonly id?: string;
  readonly executors?: number;
  readonly heartbeatMs?: number;
  readonly executorEnv?: Readonly<Record<string, string>>;
  readonly log?: Logger;
}

export const DEFAULT_HEARTBEAT_MS = 1_000;
const RESTART_DELAY_MS = { min: 100, max: 5_000 };
/** An executor up this long counts as healthy; restart back-off starts over after it dies. */
const STABLE_AFTER_MS = 30_000;

/**
 * A worker node: a small supervisor that owns executor processes, takes placement commands from the
 * scheduler and reports what it holds. It is not on the invocation path; executors are.
 */
export class Worker {
  readonly id: string;
  readonly #nc: NatsConnection;
  readonly #natsUrl: string;
  readonly #log: Logger;
  readonly #heartbeatMs: number;
  readonly #executorEnv: Readonly<Record<string, string>>;
  readonly #executors: ExecutorProcess[] = [];
  readonly #executorCount: number;
  readonly #subscriptions: Subscription[] = [];
  /** Executor restarts under way; a load that finds no running executor waits for one. */
  readonly #restarts = new Set<Promise<void>>();
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: WorkerOptions) {
    this.id = options.id ?? randomUUID().slice(0, 8);
    this.#nc = options.nc;
    this.#natsUrl = options.natsUrl;
    this.#log = (options.log ?? silentLogger()).child({ workerId: this.id });
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#executorEnv = options.executorEnv ?? {};
    this.#executorCount = options.executors ?? 1;
  }

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#executorCount }, () => this.#spawnExecutor()));
    this.#subscriptions.push(
      this.#nc.subscribe(SUBJECTS.workerLoad(this.id), {
        callback: (err, msg) => {
          if (!err) void this.#onLoad(msg);
        },
      }),
      this.#nc.subscribe(SUBJECTS.schedulerHello, { callback: () => this.#heartbeat() }),
    );
    await this.#nc.flush();
    this.#heartbeat();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
    this.#log.info({ executors: this.#executorCount }, "worker ready");
  }

  /** The executors' process ids, for tests and operators. */
  get executorPids(): number[] {
    return this.#executors.map((e) => e.pid).filter((pid): pid is number => pid !== undefined);
  }

  async #spawnExecutor(slot = this.#executors.length, attempt = 0): Promise<void> {
    const startedAt = Date.now();
    const executor: ExecutorProcess = new ExecutorProcess({
      natsUrl: this.#natsUrl,
      env: this.#executorEnv,
      log: this.#log,
      // An executor that lived a while was healthy: its death starts the back-off afresh.
      onExit: (code, signal) =>
        this.#onExecutorExit(slot, executor, code, signal, Date.now() - startedAt > STABLE_AFTER_MS ? 0 : attempt),
      onUnloaded: () => this.#heartbeat(),
    });
    this.#executors[slot] = executor;
    await executor.start();
  }

  #onExecutorExit(
    slot: number,
    dead: ExecutorProcess,
    code: number | null,
    signal: string | null,
    attempt: number,
  ): void {
    if (this.#closed) return;
    const held = [...dead.functions];
    const delay = Math.min(RESTART_DELAY_MS.min * 2 ** attempt, RESTART_DELAY_MS.max);
    this.#log.error({ pid: dead.pid, code, signal, held, restartInMs: delay }, "executor died; restarting");
    const restart = (async () => {
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.#closed) return;
      try {
        await this.#spawnExecutor(slot, attempt + 1);
        const executor = this.#executors[slot];
        // Warm capacity comes back by itself: reload what the dead executor held.
        await Promise.all(held.map((name) => executor && this.#loadOn(executor, name).catch(() => {})));
        this.#heartbeat();
      } catch (err) {
        this.#log.error({ err }, "executor restart failed");
      }
    })();
    this.#restarts.add(restart);
    void restart.finally(() => this.#restarts.delete(restart));
  }

  async #onLoad(msg: Msg): Promise<void> {
    try {
      const { name } = msg.json<{ name: string }>();
      await this.#loadOn(await this.#pickExecutor(name), name);
      msg.respond(JSON.stringify({ ok: true }));
      this.#heartbeat();
    } catch (err) {
      msg.respond(
        JSON.stringify({ ok: false, code: codeOf(err), message: err instanceof Error ? err.message : String(err) }),
      );
    }
  }

  async #loadOn(executor: ExecutorProcess, name: string): Promise<void> {
    await executor.request({ type: "load", name });
    executor.functions.add(name);
  }

  /** The executor already holding the function, else the one holding the fewest. */
  async #pickExecutor(name: string): Promise<ExecutorProcess> {
    let live = this.#executors.filter((e) => e.running);
    if (live.length === 0 && this.#restarts.size > 0) {
      await Promise.race(this.#restarts);
      live = this.#executors.filter((e) => e.running);
    }
    const holder = live.find((e) => e.functions.has(name));
    const pick = holder ?? live.sort((a, b) => a.functions.size - b.functions.size)[0];
    if (!pick) throw new HearthError("ERR_NO_CAPACITY", "worker has no running executor");
    return pick;
  }

  #heartbeat(): void {
    if (this.#closed || this.#nc.isClosed()) return;
    const functions = [...new Set(this.#executors.flatMap((e) => [...e.functions]))];
    const beat: WorkerHeartbeat = {
      id: this.id,
      functions,
      executors: this.#executors.length,
      intervalMs: this.#heartbeatMs,
    };
    this.#nc.publish(SUBJECTS.heartbeat, JSON.stringify(beat));
  }

  /** Stops reporting, then stops every executor (each drains its in-flight invocations). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeatTimer);
    for (const sub of this.#subscriptions) sub.unsubscribe();
    await Promise.all(this.#executors.map((e) => e.stop()));
    this.#log.info("worker stopped");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
