import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Registry } from "prom-client";
import { createRegistry } from "../metrics/index.ts";
import {
  type ActivateReply,
  type ClusterStatus,
  codeOf,
  type DrainReply,
  FunctionStore,
  HearthError,
  isExecutorId,
  type Logger,
  parseExecutorLost,
  parseGatewayLoadReport,
  parseHeartbeat,
  parseLoadReport,
  QUEUE_GROUPS,
  SUBJECTS,
  silentLogger,
  type TriggerRecord,
  TriggerStore,
  validateFunctionName,
} from "../protocol/index.ts";
import type { ScaleSpec } from "./autoscaler.ts";
import { ClusterView } from "./cluster-view.ts";
import { CronTicker, type CronTriggerSpec, parseCron, publishToJetStream } from "./cron/index.ts";
import { hazardHistogram, type KeepAlivePolicyFactory } from "./keep-alive.ts";
import { LeaderLease } from "./leader-lease.ts";
import { NodeClient } from "./node-client.ts";
import { QUEUE_DEPTH_INTERVAL_MS, QueueDepth } from "./queue-depth.ts";
import { ScalingLoop, type WarmReplica } from "./scaling-loop.ts";
import { registerSchedulerMetrics } from "./scheduler-metrics.ts";
import { statusOf } from "./status.ts";

export interface SchedulerOptions {
  readonly nc: NatsConnection;
  readonly id?: string;
  readonly log?: Logger;
  readonly now?: () => number;
  /** How long a cold request may wait for a worker node to appear (scale from zero nodes). */
  readonly waitForNodeMs?: number;
  /** Decision period; pokes (a cold request, a saturated pool) decide at once in between. */
  readonly tickMs?: number;
  /** When idle functions go to zero and when they are warmed again (default: learnt per function). */
  readonly keepAlive?: KeepAlivePolicyFactory;
  readonly scaleDefaults?: Partial<ScaleSpec>;
  /** Leader lease lifetime: a dead leader is replaced within about this long. */
  readonly leaseTtlMs?: number;
  /** Tests only: cron expressions may have a seconds field, so a test sees ticks every second. */
  readonly cronSeconds?: boolean;
  /** Where the scheduler's gauges are registered (see scheduler-metrics.ts); a fresh registry by default. */
  readonly registry?: Registry;
}

/** 250 ms: the upper bound; a tick over 50 functions costs well under a millisecond. */
export const DEFAULT_TICK_MS = 250;

/**
 * A scheduler process. Every scheduler keeps the cluster view warm (heartbeats, load reports); the
 * one holding the leader lease also runs the scaling loop, answers activations (the cold path) and
 * sends commands stamped with its fencing epoch. A new leader starts in panic mode: it rebuilds
 * its picture from reports and does not scale down for one stable window.
 */
export class Scheduler {
  readonly id: string;
  readonly view = new ClusterView();
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #options: SchedulerOptions;
  readonly #loop: ScalingLoop;
  readonly #nodes: NodeClient;
  readonly #subscriptions: Subscription[] = [];
  #leaderSubscriptions: Subscription[] = [];
  #lease: LeaderLease | null = null;
  #watch: { stop(): void } | null = null;
  #store: FunctionStore | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #depthTicker: NodeJS.Timeout | null = null;
  /** Every trigger: cron ones are ticked here (by every scheduler, leader or not), all count toward queue depth. */
  readonly #triggers = new Map<string, TriggerRecord>();
  #triggerWatch: { stop(): void } | null = null;
  #cron: CronTicker | null = null;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  #nodeWaiters = new Set<() => void>();
  /** Activations being answered: close() waits for them, so none is left unanswered. */
  readonly #activations = new Set<Promise<void>>();
  /** Lost nodes whose executors we have already declared lost. */
  readonly #announcedLost = new Set<string>();
  #closed = false;
  /** Messages waiting per function at the leader's last queue-depth read: for hearth_queue_depth. */
  #queueDepth: Map<string, number> | null = null;
  /** This scheduler's metrics registry (its process metrics and gauges). */
  readonly registry: Registry;

  constructor(options: SchedulerOptions) {
    this.id = options.id ?? randomUUID().slice(0, 8);
    this.#options = options;
    this.#nc = options.nc;
    this.#log = (options.log ?? silentLogger()).child({ schedulerId: this.id });
    this.#now = options.now ?? Date.now;
    this.#nodes = new NodeClient(options.nc);
    this.#loop = new ScalingLoop({
      view: this.view,
      nodes: this.#nodes,
      keepAlive: options.keepAlive ?? hazardHistogram(),
      log: this.#log,
      scaleDefaults: options.scaleDefaults,
      now: this.#now,
    });
    this.registry = options.registry ?? createRegistry();
    registerSchedulerMetrics(this.registry, {
      isLeader: () => this.isLeader,
      status: () => this.status(),
      queueDepth: () => this.#queueDepth,
    });
  }

  /** The scheduler's /metrics text. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get isLeader(): boolean {
    return this.#lease?.isLeader ?? false;
  }

  async start(): Promise<void> {
    const store = await FunctionStore.open(this.#nc);
    this.#store = store;
    this.#watch = await store.watch(
      (change) => {
        if (change.kind === "put") this.#loop.setRecord(change.record);
        else this.#loop.deleteRecord(change.name);
      },
      (err) => this.#log.error({ err }, "function watch failed; scaling works from stale records"),
    );
    this.#subscriptions.push(
      this.#subscribe(SUBJECTS.heartbeat, (msg) => {
        const beat = parseHeartbeat(msg.data);
        if (!beat) return;
        this.view.observeHeartbeat(beat, this.#now());
        for (const wake of this.#nodeWaiters) wake();
      }),
      this.#subscribe(SUBJECTS.load, (msg) => {
        const report = parseLoadReport(msg.data);
        if (!report) return;
        this.view.observeReport(report, this.#now());
        // A saturated pool (twice what it was assigned for in flight) is decided now, not at the next tick.
        const saturated = report.functions.some((f) => f.inFlight >= 2 * Math.max(1, f.maxIsolates) * f.concurrency);
        if (saturated && this.isLeader) void this.poke();
      }),
      this.#subscribe(SUBJECTS.gatewayLoad, (msg) => {
        const report = parseGatewayLoadReport(msg.data);
        if (report) this.view.observeGatewayLoad(report, this.#now());
      }),
      this.#subscribe(SUBJECTS.executorLost, (msg) => {
        const lost = parseExecutorLost(msg.data);
        if (!lost) return;
        this.view.observeExecutorLost(lost.executor);
        if (this.isLeader) void this.poke(); // re-place its functions now, not at the next tick
      }),
    );
    await this.#nc.flush();
    this.#nc.publish(SUBJECTS.schedulerHello); // every node reports now: the view fills in one round trip
    this.#lease = await LeaderLease.open({
      nc: this.#nc,
      id: this.id,
      log: this.#log,
      ttlMs: this.#options.leaseTtlMs,
    });
    this.#lease.onChange(({ leader, epoch }) => (leader ? this.#lead(epoch) : this.#follow()));
    this.#lease.start();
    await this.#leadershipKnown();
    this.#ticker = setInterval(() => void this.poke(), this.#options.tickMs ?? DEFAULT_TICK_MS);
    await this.#followTriggers();
    const depth = new QueueDepth(await jetstreamManager(this.#nc), () => this.#triggers.values(), this.#log);
    this.#depthTicker = setInterval(() => void this.#observeQueueDepth(depth), QUEUE_DEPTH_INTERVAL_MS);
    this.#log.info("scheduler ready");
  }

  /** Waits (bounded) until some scheduler leads, so a cluster that just started serves cold starts. */
  async #leadershipKnown(): Promise<void> {
    const deadline = performance.now() + (this.#options.leaseTtlMs ?? 3_000) + 500;
    while (!this.#lease?.current() && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Runs the scaling loop now (a cold request or a lost executor must not wait for the tick).
   * Pokes during a run share one follow-up run.
   */
  poke(): Promise<void> {
    if (this.#queued) return this.#queued;
    const after = this.#running ?? Promise.resolve();
    this.#queued = after.then(() => {
      this.#queued = null;
      this.#running = this.#runOnce().finally(() => {
        this.#running = null;
      });
      return this.#running;
    });
    return this.#queued;
  }

  /**
   * Cron ticks come from every scheduler, not only the leader: each publishes every tick with the
   * message id `cron:<trigger>:<time>`, and the stream's dedupe window keeps one. No election, so no
   * tick is lost to a leader's death (scheduler/cron/cron-ticker.ts).
   */
  async #followTriggers(): Promise<void> {
    const cron = new CronTicker({
      publish: publishToJetStream(jetstream(this.#nc)),
      log: this.#log,
      ...(this.#options.cronSeconds ? { parse: (e: string) => parseCron(e, { allowSeconds: true }) } : {}),
    });
    this.#cron = cron;
    const store = await TriggerStore.open(this.#nc);
    this.#triggerWatch = await store.watch(
      (change) => {
        if (change.kind === "put") this.#triggers.set(change.key, change.record);
        else this.#triggers.delete(change.key);
        const specs: CronTriggerSpec[] = [];
        for (const { id, source } of this.#triggers.values())
          if (source.kind === "cron") specs.push({ id, expression: source.expression });
        cron.setTriggers(specs);
      },
      (err) => this.#log.error({ err }, "trigger watch failed; cron ticks and trigger depths are stale"),
    );
    cron.start();
  }

  /** Async backlogs are demand: a function with stored messages and no pool is placed now, not at the next tick. */
  async #observeQueueDepth(depth: QueueDepth): Promise<void> {
    if (this.#closed || !this.isLeader) return;
    const report = await depth.read();
    if (!report) return;
    this.#queueDepth = new Map(report.functions.map((f) => [f.name, f.outstanding]));
    const now = this.#now();
    const before = this.view.functions(now);
    this.view.observeGatewayLoad(report, now);
    if (report.functions.some((f) => (before.get(f.name)?.isolates ?? 0) === 0)) void this.poke();
  }

  async #runOnce(): Promise<void> {
    const lease = this.#lease;
    if (this.#closed || !lease?.isLeader) return;
    try {
      this.#announceLostNodes();
      this.#loop.tick(this.#now(), lease.epoch);
      this.#nc.publish(SUBJECTS.leader, JSON.stringify({ id: this.id, epoch: lease.epoch }));
    } catch (err) {
      this.#log.error({ err }, "scaling loop failed");
    }
  }

  /**
   * A node that went silent (crashed, partitioned, paused) cannot say its executors died: the leader
   * says it for them, so gateways fail the requests in flight there instead of waiting them out.
   */
  #announceLostNodes(): void {
    const nodes = this.view.nodes(this.#now());
    // The view forgets long-lost nodes; so do we (worker ids are per process).
    for (const id of this.#announcedLost) if (!nodes.some((n) => n.beat.id === id)) this.#announcedLost.delete(id);
    for (const { beat, state } of nodes) {
      if (state !== "lost") {
        this.#announcedLost.delete(beat.id);
        continue;
      }
      if (this.#announcedLost.has(beat.id)) continue;
      this.#announcedLost.add(beat.id);
      this.#log.warn({ node: beat.id }, "node lost; re-placing its pools");
      for (const executor of beat.executors) {
        this.view.observeExecutorLost(executor.id);
        this.#nc.publish(SUBJECTS.executorLost, JSON.stringify({ node: beat.id, executor: executor.id }));
      }
    }
  }

  #lead(epoch: number): void {
    this.#log.info({ epoch }, "leading");
    this.#loop.resetForNewLeader();
    this.#leaderSubscriptions = [
      this.#subscribe(SUBJECTS.activate, (msg) => void this.#onActivate(msg), QUEUE_GROUPS.scheduler),
      this.#subscribe(SUBJECTS.status, (msg) => msg.respond(JSON.stringify(this.status()))),
      this.#subscribe(SUBJECTS.drain, (msg) => void this.#onDrain(msg)),
    ];
    void this.poke();
  }

  #follow(): void {
    // Resigning on close is the plan (a clean stop logs nothing at warn); losing the lease is not.
    if (this.#leaderSubscriptions.length > 0) this.#log[this.#closed ? "info" : "warn"]("no longer leading");
    for (const sub of this.#leaderSubscriptions) sub.unsubscribe();
    this.#leaderSubscriptions = [];
  }

  /** The cold path: make sure `fn` is warm somewhere and say where. */
  #onActivate(msg: Msg): void {
    const answered = this.#answerActivation(msg);
    this.#activations.add(answered);
    void answered.finally(() => this.#activations.delete(answered));
  }

  async #answerActivation(msg: Msg): Promise<void> {
    let name = "";
    try {
      name = validateFunctionName(msg.json<{ name: unknown }>().name);
      if (!this.#loop.record(name)) {
        // Deployed a moment ago: the gateway saw the record before our watch did.
        const record = await this.#store?.get(name);
        if (!record) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
        this.#loop.setRecord(record);
      }
      this.#loop.hold(name, 1);
      const placed = await this.#activate(name);
      msg.respond(JSON.stringify({ ok: true, ...placed } satisfies ActivateReply));
    } catch (err) {
      // A gateway asks again (the next leader) when told this one stopped leading.
      const notLeader = err instanceof NotLeaderError;
      const reply: ActivateReply = { ok: false, code: codeOf(err), message: (err as Error).message, notLeader };
      msg.respond(JSON.stringify(reply));
    } finally {
      if (name) this.#loop.hold(name, -1);
    }
  }

  async #activate(name: string): Promise<WarmReplica> {
    const deadline = this.#now() + (this.#options.waitForNodeMs ?? 10_000);
    for (;;) {
      if (this.#closed || !this.isLeader) throw new NotLeaderError();
      await this.poke();
      const replica = await this.#loop.warmReplica(name);
      if (replica) return replica;
      const fault = this.#loop.fault(name);
      if (fault) throw fault;
      const left = deadline - this.#now();
      if (left <= 0) throw new HearthError("ERR_NO_CAPACITY", `No worker node could take ${name} in time`);
      await this.#nextBeat(Math.min(left, 250));
    }
  }

  async #onDrain(msg: Msg): Promise<void> {
    try {
      const { node } = msg.json<{ node: unknown }>();
      if (!isExecutorId(node)) throw new HearthError("ERR_BAD_REQUEST", "node must be a node id");
      if (!this.view.nodes(this.#now()).some((n) => n.beat.id === node))
        throw new HearthError("ERR_NOT_FOUND", `No node ${node}`);
      await this.#nodes.drain(node, this.#lease?.epoch ?? 0);
      msg.respond(JSON.stringify({ ok: true } satisfies DrainReply));
    } catch (err) {
      msg.respond(
        JSON.stringify({ ok: false, code: codeOf(err), message: (err as Error).message } satisfies DrainReply),
      );
    }
  }

  status(): ClusterStatus {
    return statusOf(this.view, this.#loop, this.#lease?.current() ?? null, this.#now());
  }

  #nextBeat(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.#nodeWaiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  #subscribe(subject: string, handle: (msg: Msg) => void, queue?: string): Subscription {
    return this.#nc.subscribe(subject, {
      ...(queue ? { queue } : {}),
      callback: (err, msg) => {
        if (!err) handle(msg);
      },
    });
  }

  /** Stops deciding and resigns the lease, so a standby leads at once. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ticker) clearInterval(this.#ticker);
    if (this.#depthTicker) clearInterval(this.#depthTicker);
    this.#triggerWatch?.stop();
    await this.#cron?.close();
    this.#watch?.stop();
    this.#follow();
    await Promise.all(this.#activations); // each sees #closed within one wait (≤ 250 ms) and answers
    await this.#lease?.close();
    for (const sub of this.#subscriptions) sub.unsubscribe();
    await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** This scheduler stopped leading (lease lost, or closing) while holding a cold request. */
class NotLeaderError extends HearthError {
  constructor() {
    super("ERR_UNAVAILABLE", "This scheduler no longer leads; ask the next leader");
  }
}
