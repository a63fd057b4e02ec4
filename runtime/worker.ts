import { randomUUID } from "node:crypto";
import { totalmem } from "node:os";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  codeOf,
  EpochFence,
  type ExecutorLost,
  HearthError,
  isExecutorId,
  type Logger,
  parseWorkerCommand,
  SUBJECTS,
  silentLogger,
  type WorkerCommand,
  type WorkerCommandReply,
  type WorkerHeartbeat,
} from "../protocol/index.ts";
import { ExecutorProcess } from "./executor-process.ts";

export interface WorkerOptions {
  readonly nc: NatsConnection;
  /** Executors open their own NATS connection to serve invocations directly. */
  readonly natsUrl: string;
  readonly id?: string;
  readonly executors?: number;
  readonly heartbeatMs?: number;
  readonly executorEnv?: Readonly<Record<string, string>>;
  /** Memory offered to isolates (the sum of their limits), MB; default: the machine's RAM. */
  readonly memoryMb?: number;
  readonly log?: Logger;
}

/** Twice a second: the scheduler counts a node lost after 2.5 s (five missed beats) and re-places its pools. */
export const DEFAULT_HEARTBEAT_MS = 500;
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
  #state: "ready" | "draining" = "ready";
  /** Newest scheduler epoch seen: commands from an older leader are refused (fencing). */
  readonly #fence = new EpochFence();
  readonly #memoryMb: number;

  constructor(options: WorkerOptions) {
    this.id = options.id ?? randomUUID().slice(0, 8);
    if (!isExecutorId(this.id)) throw new HearthError("ERR_BAD_REQUEST", `Invalid worker id ${this.id}`);
    this.#memoryMb = options.memoryMb ?? Math.floor(totalmem() / 2 ** 20);
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
      this.#nc.subscribe(SUBJECTS.workerCommand(this.id), {
        callback: (err, msg) => {
          if (!err) void this.#onCommand(msg);
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
      node: this.id,
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
    // Gateways fail the requests in flight there now, instead of waiting out their timeouts.
    if (dead.id) this.#publish(SUBJECTS.executorLost, { node: this.id, executor: dead.id } satisfies ExecutorLost);
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

  async #onCommand(msg: Msg): Promise<void> {
    let reply: WorkerCommandReply;
    try {
      const command = parseWorkerCommand(JSON.parse(msg.string()));
      if (!command) throw new HearthError("ERR_BAD_REQUEST", "Malformed worker command");
      if (!this.#fence.admit(command.epoch)) {
        throw new HearthError("ERR_BAD_REQUEST", `Stale scheduler epoch ${command.epoch} < ${this.#fence.highest}`);
      }
      reply = await this.#carryOut(command);
      this.#heartbeat();
    } catch (err) {
      reply = { ok: false, code: codeOf(err), message: err instanceof Error ? err.message : String(err) };
    }
    msg.respond(JSON.stringify(reply));
  }

  async #carryOut(command: WorkerCommand): Promise<WorkerCommandReply> {
    if (command.type === "drain") {
      this.#state = "draining";
      this.#log.info("draining: taking no new pools");
      return { ok: true };
    }
    const { fn, isolates } = command;
    if (isolates === 0) {
      // The named executor whether or not it lists the function: a late answer to an earlier unload
      // may have cleared its list while a reload put the function back.
      const holders = this.#executors.filter((e) =>
        command.executor ? e.id === command.executor : e.functions.has(fn),
      );
      await Promise.all(holders.map((e) => this.#unloadOn(e, fn)));
      return { ok: true };
    }
    const executor = command.executor ? this.#executorById(command.executor) : await this.#pickExecutor(fn);
    if (this.#state === "draining" && !executor.functions.has(fn)) {
      throw new HearthError("ERR_NO_CAPACITY", `Node ${this.id} is draining`);
    }
    await this.#loadOn(executor, fn, isolates);
    return { ok: true, executor: executor.id };
  }

  #executorById(id: string): ExecutorProcess {
    const executor = this.#executors.find((e) => e.id === id && e.running);
    if (!executor) throw new HearthError("ERR_NO_CAPACITY", `Executor ${id} is not running on ${this.id}`);
    return executor;
  }

  async #loadOn(executor: ExecutorProcess, name: string, maxIsolates?: number): Promise<void> {
    await executor.request({ type: "load", name, maxIsolates });
    executor.functions.add(name);
  }

  /** The executor's "unloaded" message updates `functions` as the unload starts, in order with later loads. */
  async #unloadOn(executor: ExecutorProcess, name: string): Promise<void> {
    await executor.request({ type: "unload", name, reason: "scheduler" });
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
    const running = this.#executors.filter((e) => e.running);
    const beat: WorkerHeartbeat = {
      id: this.id,
      pid: process.pid,
      state: this.#state,
      memoryMb: this.#memoryMb,
      functions: [...new Set(running.flatMap((e) => [...e.functions]))],
      executors: running.map((e) => ({ id: e.id, pid: e.pid ?? 0, functions: [...e.functions] })),
      intervalMs: this.#heartbeatMs,
    };
    this.#publish(SUBJECTS.heartbeat, beat);
  }

  #publish(subject: string, message: object): void {
    if (this.#closed || this.#nc.isClosed()) return;
    this.#nc.publish(subject, JSON.stringify(message));
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
