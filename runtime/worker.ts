import { randomUUID } from "node:crypto";
import { totalmem } from "node:os";
import { jetstream } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  AsyncStore,
  codeOf,
  EpochFence,
  type ExecutorLost,
  type FunctionRecord,
  FunctionStore,
  HearthError,
  isExecutorId,
  type Logger,
  parseWorkerCommand,
  type SecretKeyring,
  SUBJECTS,
  silentLogger,
  type TriggerRecord,
  TriggerStore,
  VersionStore,
  type WorkerCommand,
  type WorkerCommandReply,
  type WorkerHeartbeat,
} from "../protocol/index.ts";
import { ExecutorProcess } from "./executor-process.ts";
import { createEgressPolicy } from "./outbound/egress-policy.ts";
import { OutboundFetch } from "./outbound/outbound-fetch.ts";
import { DEFAULT_RETRY_TIMING, type RetryTiming } from "./queue/async-invocations.ts";
import { CallbackSender } from "./queue/callbacks.ts";
import { DEFAULT_ACK_WAIT_MS } from "./queue/pull-loop.ts";
import { type HostedFunction, QueueConsumers } from "./queue/queue-consumers.ts";
import { TriggerIngest } from "./queue/trigger-ingest.ts";
import { SecretEnv } from "./secret-env.ts";
import { WorkerMetrics } from "./worker-metrics.ts";

export interface WorkerOptions {
  readonly nc: NatsConnection;
  /**
   * The connection `nats://` trigger sources are read on (HEARTH_INGEST_NATS_*: in `hearth dev`, the
   * app identity, since the worker's own may not read applications' subjects). Default `nc`. The
   * events are still published into Hearth's triggers stream on `nc`. Not closed by the worker.
   */
  readonly ingestNc?: NatsConnection;
  /** Executors open their own NATS connection to serve invocations directly. */
  readonly natsUrl: string;
  readonly id?: string;
  readonly executors?: number;
  readonly heartbeatMs?: number;
  /** Added to this process's environment for executors, then filtered by buildExecutorEnv (no secrets pass). */
  readonly executorEnv?: Readonly<Record<string, string>>;
  /** The function store (records and bundles); opened on `nc` by default. */
  readonly store?: FunctionStore;
  /** Memory offered to isolates (the sum of their limits), MB; default: the machine's RAM. */
  readonly memoryMb?: number;
  /** Async invocations and triggers: the consumers' ack window (kept open by in-progress acks while a run lasts). */
  readonly ackWaitMs?: number;
  /** Async invocations: backoff between retries (full jitter). */
  readonly retry?: RetryTiming;
  /** Addresses callback URLs may reach although private (HEARTH_EGRESS_ALLOW, as for functions' fetch). */
  readonly egressAllow?: string;
  /** Opens functions' secrets for their executors (HEARTH_SECRETS_KEY); null: functions with secrets fail to load here. */
  readonly secretsKeyring?: SecretKeyring | null;
  /** This node's metrics (its own registry, merged with its executors' on scrape); a fresh one by default. */
  readonly metrics?: WorkerMetrics;
  readonly log?: Logger;
}

/** Isolates a pool may grow to when its placement names no ceiling (FunctionPool's default). */
const DEFAULT_POOL_ISOLATES = 4;

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
  #store: FunctionStore | null;
  /** Kept versions, read only when a request asks for one that is not deployed (see #currentRecord). */
  #versions: VersionStore | null = null;
  #watch: { stop(): void } | null = null;
  /**
   * Every function's record (null once removed), kept by the store watch with its KV revision so a
   * KV read and the watch never move a record backwards. Loads take records from here (no KV round
   * trip on a cold start); executors get only the records of the functions they host.
   */
  readonly #records = new Map<string, { record: FunctionRecord | null; revision: number }>();
  /** Executors being replaced (see #retire): each is retired once. */
  readonly #retiring = new Set<ExecutorProcess>();
  /** Isolates each function may have here, from its latest placement: with its concurrency, what queues may pull. */
  readonly #poolIsolates = new Map<string, number>();
  #queues: QueueConsumers | null = null;
  /** Every trigger, from the triggers bucket: those of functions hosted here get pull loops here. */
  readonly #triggers = new Map<string, TriggerRecord>();
  #triggerWatch: { stop(): void } | null = null;
  #ingest: TriggerIngest | null = null;
  readonly #options: WorkerOptions;
  readonly #metrics: WorkerMetrics;
  readonly #secretEnv: SecretEnv;

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
    this.#store = options.store ?? null;
    this.#options = options;
    this.#metrics = options.metrics ?? new WorkerMetrics({ log: this.#log });
    this.#secretEnv = new SecretEnv({ nc: options.nc, keyring: options.secretsKeyring ?? null });
  }

  async start(): Promise<void> {
    // Before any executor: executors open the bundles store, which must exist (created here when permitted).
    this.#store ??= await FunctionStore.open(this.#nc);
    this.#versions = await VersionStore.open(this.#nc);
    this.#watch = await this.#store.watch(
      (change) =>
        change.kind === "put"
          ? this.#apply(change.record.name, change.record, change.revision)
          : this.#apply(change.name, null, change.revision),
      (err) => this.#log.error({ err }, "function watch failed; loads read records from the store"),
    );
    await Promise.all(Array.from({ length: this.#executorCount }, () => this.#spawnExecutor()));
    const outbound = new OutboundFetch({
      policy: createEgressPolicy(this.#options.egressAllow),
      maxBodyBytes: 1024 * 1024,
    });
    this.#queues = new QueueConsumers({
      nc: this.#nc,
      store: await AsyncStore.open(this.#nc),
      callbacks: new CallbackSender(outbound, this.#log),
      ackWaitMs: this.#options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS,
      retry: this.#options.retry ?? DEFAULT_RETRY_TIMING,
      log: this.#log,
    });
    // Like the gateway's invoker: a dropped connection fails the queued runs in flight at once.
    (async () => {
      for await (const status of this.#nc.status()) if (status.type === "disconnect") this.#queues?.disconnected();
    })().catch(() => {});
    const ingest = new TriggerIngest({
      nc: this.#nc,
      ...(this.#options.ingestNc ? { sourceNc: this.#options.ingestNc } : {}),
      js: jetstream(this.#nc),
      memberId: this.id,
      log: this.#log,
    });
    this.#ingest = ingest;
    this.#triggerWatch = await (await TriggerStore.open(this.#nc)).watch(
      (change) => {
        if (change.kind === "put") this.#triggers.set(change.key, change.record);
        else this.#triggers.delete(change.key);
        ingest.sync(this.#triggers);
        this.#syncQueues(this.#executors.filter((e) => e?.running));
      },
      (err) => this.#log.error({ err }, "trigger watch failed; trigger changes are not followed"),
    );
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

  /** The node's /metrics text: its own series and its executors', collected now (see WorkerMetrics). */
  metrics(): Promise<string> {
    return this.#metrics.text(this.#executors.filter((e) => e?.running));
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
      onRecordQuery: (name, version) => this.#currentRecord(name, version),
      prepareRecord: (record) => this.#secretEnv.withSecrets(record),
      onRetire: (reason) => void this.#retire(slot, executor, reason),
    });
    this.#executors[slot] = executor;
    await executor.start();
    // Bundles of what is deployed, so this executor's cold starts find their code in memory.
    for (const { record } of this.#records.values())
      if (record) executor.notify({ type: "prefetch", digest: record.digest });
  }

  /**
   * Takes a record (or a removal) newer than the one held, and passes it on: every executor
   * prefetches a new bundle (digests only), and the executors hosting the function get the record
   * or the removal. No other executor ever sees a function's record.
   */
  #apply(name: string, record: FunctionRecord | null, revision: number): void {
    const held = this.#records.get(name);
    if (held && held.revision >= revision) return;
    this.#records.set(name, { record, revision });
    for (const executor of this.#executors) {
      if (!executor?.running) continue;
      if (record && record.digest !== held?.record?.digest)
        executor.notify({ type: "prefetch", digest: record.digest });
      if (!executor.hosted.has(name)) continue;
      const command = record ? ({ type: "update", record } as const) : ({ type: "remove", name } as const);
      executor
        .request(command)
        .catch((err: unknown) =>
          this.#log.error({ err, fn: name, executor: executor.id }, `forwarding ${command.type} failed`),
        );
    }
  }

  /** The record of `name`: from the watch's copy, else read from the store (deployed a moment ago). */
  async #recordOf(name: string): Promise<FunctionRecord | null> {
    const held = this.#records.get(name);
    if (held) return held.record;
    return this.#read(name);
  }

  /** Reads the store (the truth), applies what it says, returns the newest record held. */
  async #read(name: string): Promise<FunctionRecord | null> {
    const store = this.#store;
    if (!store) return null;
    const entry = await store.getEntry(name);
    if (entry) this.#apply(name, entry.record, entry.revision);
    return this.#records.get(name)?.record ?? null;
  }

  /**
   * An executor met a request for `version` of a function it hosts. The watch's copy answers when it
   * is that version; otherwise the store decides (the gateway may have seen a deploy first, or be
   * stale, and must not roll the pool back).
   */
  async #currentRecord(name: string, version: string): Promise<FunctionRecord | null> {
    const serves = (record: FunctionRecord | null | undefined) =>
      record?.version === version || record?.canary?.version === version;
    const held = this.#records.get(name)?.record;
    if (serves(held)) return held ?? null;
    const current = await this.#read(name);
    if (!current || serves(current) || !this.#versions) return current;
    // Not deployed: a `Hearth-Version` override (a smoke test) asks for a kept version by its hash.
    // The executor runs it beside the deployment, as it runs a canary at 0 %.
    const kept = await this.#versions.findByHash(name, version);
    if (!kept) return current;
    const { fn: _fn, id, createdAt: _createdAt, message: _message, ...runnable } = kept;
    return { ...current, canary: { ...runnable, id, percent: 0 } };
  }

  /**
   * Replaces an executor that asked to go (an isolate V8 cannot interrupt, or memory over its bound):
   * a fresh process takes its slot and loads its functions first, then the old one stops taking
   * requests, lets those in flight finish, and exits (SIGKILL after the stop grace). Its traffic moves
   * before it goes, so its other functions' callers see no failure.
   */
  async #retire(slot: number, old: ExecutorProcess, reason: string): Promise<void> {
    if (this.#closed || this.#retiring.has(old) || this.#executors[slot] !== old) return;
    this.#retiring.add(old);
    this.#metrics.executorRestarted("retired");
    const held = [...old.functions];
    this.#log.warn({ pid: old.pid, executor: old.id, reason, held }, "retiring executor");
    try {
      await this.#spawnExecutor(slot);
      const fresh = this.#executors[slot];
      await Promise.all(held.map((name) => fresh && this.#loadOn(fresh, name).catch(() => {})));
      this.#heartbeat();
    } catch (err) {
      this.#log.error({ err }, "replacement executor failed to start; stopping the old one anyway");
    } finally {
      await old.stop();
      // Killed before it finished (grace over, or memory far past its bound): what it had not answered
      // never will be, so gateways fail it now, not at their timeout. A clean exit answered everything,
      // and a request that reaches its drained subjects is retried elsewhere, as it should be.
      if (old.id && !old.exitedCleanly) {
        this.#publish(SUBJECTS.executorLost, { node: this.id, executor: old.id } satisfies ExecutorLost);
        this.#queues?.lose(old.id);
      }
      this.#retiring.delete(old);
      this.#heartbeat();
    }
  }

  #onExecutorExit(
    slot: number,
    dead: ExecutorProcess,
    code: number | null,
    signal: string | null,
    attempt: number,
  ): void {
    if (this.#closed) return;
    this.#metrics.executorRestarted("died");
    // Gateways fail the requests in flight there now, instead of waiting out their timeouts.
    if (dead.id) this.#publish(SUBJECTS.executorLost, { node: this.id, executor: dead.id } satisfies ExecutorLost);
    if (dead.id) this.#queues?.lose(dead.id);
    // And the scheduler's view drops it now: until our next beat, the last one still lists it as live, and
    // cold requests were answered with the dead executor (4 of 8 runs of the executor-crash test).
    this.#heartbeat();
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
    const started = performance.now();
    await this.#loadOn(executor, fn, isolates);
    this.#log.debug({ fn, executor: executor.id, loadMs: Number((performance.now() - started).toFixed(2)) }, "loaded");
    return { ok: true, executor: executor.id };
  }

  #executorById(id: string): ExecutorProcess {
    const executor = this.#executors.find((e) => e.id === id && e.running);
    if (!executor) throw new HearthError("ERR_NO_CAPACITY", `Executor ${id} is not running on ${this.id}`);
    return executor;
  }

  async #loadOn(executor: ExecutorProcess, name: string, maxIsolates?: number): Promise<void> {
    if (maxIsolates !== undefined) this.#poolIsolates.set(name, maxIsolates);
    const record = await this.#recordOf(name);
    if (!record) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
    executor.hosted.add(name);
    try {
      await executor.request({ type: "load", record, maxIsolates });
    } catch (err) {
      if (!executor.functions.has(name)) executor.hosted.delete(name);
      throw err;
    }
    executor.functions.add(name);
    // An "unloaded" (idle) that crossed this load cleared it; and a deploy or removal that landed
    // while it loaded may have gone by: bring the executor up to date.
    executor.hosted.add(name);
    const latest = this.#records.get(name);
    if (latest && latest.record === null) {
      await executor.request({ type: "remove", name });
      throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} was removed`);
    }
    if (latest?.record && latest.record.version !== record.version) {
      await executor.request({ type: "update", record: latest.record });
    }
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
    this.#syncQueues(running);
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

  /** Queue consumers follow the pools: a function hosted here is pulled from here, on its executor. */
  #syncQueues(running: readonly ExecutorProcess[]): void {
    if (!this.#queues) return;
    const hosted = new Map<string, HostedFunction>();
    for (const executor of running) {
      if (!executor.id || this.#retiring.has(executor)) continue;
      for (const fn of executor.functions) {
        const record = this.#records.get(fn)?.record;
        if (!record || hosted.has(fn)) continue;
        const isolates = this.#poolIsolates.get(fn) ?? DEFAULT_POOL_ISOLATES;
        hosted.set(fn, { executor: executor.id, record, capacity: isolates * record.concurrency });
      }
    }
    this.#queues.sync(hosted, this.#triggers);
    this.#ingest?.sync(this.#triggers); // retries sources that were unreachable
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
    this.#watch?.stop();
    this.#triggerWatch?.stop();
    for (const sub of this.#subscriptions) sub.unsubscribe();
    await this.#ingest?.close();
    // Pull nothing new; executors drain (answering what runs), then the queue side records those answers.
    await this.#queues?.stopPulling();
    await Promise.all(this.#executors.map((e) => e.stop()));
    await this.#queues?.close();
    this.#log.info("worker stopped");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
