import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CanaryVersion,
  codeOf,
  type ErrorCode,
  type FunctionLoad,
  type FunctionRecord,
  HearthError,
  LIMITS,
  LOAD_REPORT_INTERVAL_MS,
  type LoadReport,
  type LogEntry,
  type Logger,
  type LogKind,
  Reporter,
  type Runnable,
  SingleFlight,
  SUBJECTS,
  silentLogger,
  traceIdOfRequestJson,
} from "../../protocol/index.ts";
import { CAP_MARKER } from "../isolate/bootstrap/console.ts";
import type { Bootstrap } from "../isolate/bootstrap-source.ts";
import { CodeCache } from "../isolate/code-cache.ts";
import { CpuWatchdog } from "../isolate/cpu-watchdog.ts";
import type { FunctionCode, InvokeOutcome, IsolateDeps } from "../isolate/function-isolate.ts";
import type { ConsoleEntry, ShellDeps } from "../isolate/isolate-shell.ts";
import type { BodyCutError, ResponseBody } from "../isolate/response-body.ts";
import { StemCells } from "../isolate/stem-cells.ts";
import { createEgressPolicy } from "../outbound/egress-policy.ts";
import { OutboundFetch } from "../outbound/outbound-fetch.ts";
import { BundleCache, BundleIntegrityError, type BundleSource } from "./bundle-cache.ts";
import { CoreTransport } from "./core-transport.ts";
import type { ExecutorMetrics } from "./executor-metrics.ts";
import type { FunctionHost, Invocation } from "./function-host.ts";
import { FunctionPool } from "./function-pool.ts";
import { LogPublisher, type LogRate } from "./log-publisher.ts";
import { MemoryGuard } from "./memory-guard.ts";
import { StackMapper } from "./stack-mapper.ts";

export interface ExecutorOptions {
  readonly nc: NatsConnection;
  /** This executor's id: the token in its invocation subjects and load reports (see protocol isExecutorId). */
  readonly id: string;
  /** The worker node it belongs to. */
  readonly node: string;
  /** Load report interval (LOAD_REPORT_INTERVAL_MS by default). */
  readonly reportIntervalMs?: number;
  /** Where bundles are read from (the object store); every bundle is checked against its digest. */
  readonly bundles: BundleSource;
  /**
   * The current record of a function this executor hosts, asked for when a request names a version
   * it does not have (the gateway saw a deploy before the supervisor's update arrived). In the
   * executor process this asks the worker over IPC: executors do not read the records bucket.
   * Without it, a pool serves the version it has until an update arrives.
   */
  readonly fetchRecord?: (name: string, version: string) => Promise<FunctionRecord | null>;
  readonly bootstrap: Bootstrap;
  readonly log?: Logger;
  readonly maxBodyBytes?: number;
  /** Addresses and CIDR ranges fetch() may reach although they are private (HEARTH_EGRESS_ALLOW). */
  readonly egressAllow?: string;
  /** A function with no request for this long is unloaded (scale to zero on this node). */
  readonly idleMs?: number;
  /** Isolate shells kept ready for cold starts of functions with the default memory limit. */
  readonly stemCells?: number;
  /** Told whenever a function is unloaded here, so the supervisor's reports stay true. */
  readonly onUnload?: (name: string) => void;
  readonly onCatastrophicError?: (message: string) => void;
  /**
   * This process should be replaced (an isolate stuck in code V8 cannot interrupt, or memory over
   * its bound): the supervisor moves its functions to a fresh executor and stops this one.
   */
  readonly onRetire?: (reason: string) => void;
  /** Where invocations, cold starts, isolate creations and limit kills are counted (none: not counted). */
  readonly metrics?: ExecutorMetrics;
  /** The cap on log entries published per function (DEFAULT_LOG_RATE). */
  readonly logRate?: LogRate;
}

/**
 * Idle time before an executor unloads a pool on its own: 0 = never. The scheduler decides
 * keep-alive (learnt per function) and sends the unloads; this is only a backstop for clusters
 * run without a scheduler (HEARTH_IDLE_MS).
 */
export const DEFAULT_IDLE_MS = 0;
/** Four shells cost ~10 MiB and cover a burst of four cold starts; refills follow one at a time. */
export const DEFAULT_STEM_CELLS = 4;

const CONSOLE_LEVELS: Record<string, "debug" | "info" | "warn" | "error"> = {
  debug: "debug",
  info: "info",
  log: "info",
  warn: "warn",
  error: "error",
  trace: "error",
};

interface LoadedFunction {
  /** The version the function's record serves. */
  readonly pool: FunctionPool;
  /**
   * Other versions requests asked for, by version hash: a canary's, or one a `Hearth-Version`
   * override reaches. Made on the first request for them; dropped when the deployment changes.
   */
  readonly sides: Map<string, FunctionPool>;
}

/** Side pools kept per function at most (a canary and a smoke-tested version); the oldest goes first. */
const MAX_SIDE_POOLS = 2;
/**
 * After a catastrophic isolate error, the process aborts this long later whatever happens: enough for
 * the supervisor to start a replacement (1–3 s on a loaded 2-core machine) and stop this executor
 * (its stop grace is 5 s), which normally ends it first.
 */
const CATASTROPHIC_ABORT_AFTER_MS = 15_000;
/**
 * Far over its memory bound, an executor stops taking requests and gives those in flight this long
 * (a warm request takes milliseconds), then this long more for their replies to leave, then ends.
 */
const FAR_OVER_GRACE_MS = 1_000;
const FAR_OVER_FLUSH_MS = 500;

/**
 * Hosts function isolates in this process (the {@link FunctionHost}) and serves their invocations
 * straight from NATS through its core transport: the warm path is NATS → executor → isolate →
 * reply, with no hop through the worker supervisor.
 */
export class Executor implements FunctionHost {
  readonly id: string;
  readonly #nc: NatsConnection;
  readonly #fetchRecord: (name: string, version: string) => Promise<FunctionRecord | null>;
  readonly #log: Logger;
  readonly #maxBodyBytes: number;
  /** Shared by every pool; each pool adds its own console sink. */
  readonly #deps: Omit<IsolateDeps, "onConsole">;
  readonly #loaded = new Map<string, LoadedFunction>();
  readonly #limitCounts = new Map<string, number>();
  /**
   * The records of the functions hosted here (loaded or loading), as the supervisor sent them: the
   * only env this process holds. A removal deletes the entry, so a load under way does not revive it.
   */
  readonly #records = new Map<string, FunctionRecord>();
  readonly #bundles: BundleCache;
  readonly #stacks: StackMapper;
  #refusedBundles = 0;
  readonly #stemCells: StemCells | null;
  readonly #transport: CoreTransport;
  #inFlight = 0;
  #idle: PromiseWithResolvers<void> | null = null;
  readonly #idleMs: number;
  readonly #onUnload: (name: string) => void;
  #sweep: NodeJS.Timeout | null = null;
  readonly #loading = new SingleFlight<string, void>();
  readonly #refreshing = new SingleFlight<string, void>();
  readonly #loadingSides = new SingleFlight<string, FunctionPool>();
  readonly #reporter: Reporter;
  readonly #memory: MemoryGuard;
  readonly #onRetire: (reason: string) => void;
  #retiring = false;
  readonly #metrics: ExecutorMetrics | null;
  /** Console lines and errors of the functions, to `hearth.logs.<fn>` (protocol/logs.ts). */
  readonly #logs: LogPublisher;

  constructor(options: ExecutorOptions) {
    this.id = options.id;
    this.#nc = options.nc;
    const report = (seq: number, functions: FunctionLoad[]): LoadReport => ({
      node: options.node,
      executor: options.id,
      pid: process.pid,
      seq,
      intervalMs: options.reportIntervalMs ?? LOAD_REPORT_INTERVAL_MS,
      functions,
    });
    this.#reporter = new Reporter({
      intervalMs: options.reportIntervalMs,
      publish: (json) => {
        if (!this.#nc.isClosed()) this.#nc.publish(SUBJECTS.load, json);
      },
      build: (seq) => report(seq, this.#loadSnapshot()),
      // The last word says "nothing here", so gateways drop these routes before the subscriptions go.
      farewell: (seq) => report(seq, []),
    });
    this.#fetchRecord = options.fetchRecord ?? (async () => null);
    this.#metrics = options.metrics ?? null;
    this.#logs = new LogPublisher({
      rate: options.logRate,
      publish: (subject, data) => {
        if (!this.#nc.isClosed()) this.#nc.publish(subject, data);
      },
    });
    this.#bundles = new BundleCache(options.bundles);
    this.#log = options.log ?? silentLogger();
    this.#stacks = new StackMapper({ source: this.#bundles, log: this.#log });
    this.#maxBodyBytes = options.maxBodyBytes ?? LIMITS.defaultMaxBodyBytes;
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.#onUnload = options.onUnload ?? (() => {});
    const shellDeps: ShellDeps = {
      bootstrap: options.bootstrap,
      outbound: new OutboundFetch({
        policy: createEgressPolicy(options.egressAllow),
        maxBodyBytes: this.#maxBodyBytes,
      }),
      cache: new CodeCache(),
      onCatastrophicError:
        options.onCatastrophicError ??
        ((message) => {
          // isolated-vm's README: log it, stop serving requests, finish outstanding work, then
          // process.abort(). The lost isolate's callers are answered already (FunctionIsolate); a
          // retirement moves this executor's functions to a fresh process and drains the requests in
          // flight here, so a neighbour's requests finish instead of dying with the process. The
          // abort ends it either way: at the exit that follows the stop, since an exit would wait for the
          // parked thread for ever (seen: executors left hanging in exit), or after a backstop delay.
          this.#log.fatal({ message }, "catastrophic isolate error, retiring executor");
          this.#retire(`catastrophic isolate error: ${message}`);
          process.once("exit", () => process.abort());
          setTimeout(() => process.abort(), CATASTROPHIC_ABORT_AFTER_MS);
        }),
    };
    const stemCells = options.stemCells ?? DEFAULT_STEM_CELLS;
    this.#stemCells =
      stemCells > 0 ? new StemCells(shellDeps, { memoryMb: LIMITS.defaultMemoryMb, size: stemCells }) : null;
    this.#deps = {
      ...shellDeps,
      watchdog: new CpuWatchdog(),
      maxBodyBytes: this.#maxBodyBytes,
      ...(this.#stemCells ? { stemCells: this.#stemCells } : {}),
      events: {
        backgroundCut: (fn, code, message) => {
          const count = this.#countLimit(fn, code);
          const version = this.#loaded.get(fn)?.pool.fn.version;
          this.#log.warn({ fn, version, code, reason: message, count }, "work after the response cut off");
          const pool = this.#loaded.get(fn)?.pool;
          if (pool)
            this.#publishLog(pool.fn, null, "error", `${code}: work after the response cut off: ${message}`, "error");
        },
        stuck: (fn) => this.#retire(`an isolate of ${fn} is running code V8 cannot interrupt`),
        isolateCreated: (fn, seconds) => this.#metrics?.faas.observeInit(fn.name, fn.version, seconds),
      },
    };
    this.#onRetire = options.onRetire ?? (() => {});
    this.#transport = new CoreTransport({
      nc: this.#nc,
      executorId: this.id,
      host: this,
      log: this.#log,
      maxBodyBytes: this.#maxBodyBytes,
      ...(options.metrics ? { metrics: options.metrics.faas } : {}),
    });
    this.#memory = new MemoryGuard({
      hostedLimitMb: () => this.#hostedLimitMb(),
      onOver: (rssMb, boundMb) =>
        this.#retire(`memory ${Math.round(rssMb)} MB is over the bound of ${Math.round(boundMb)} MB`),
      onFarOver: (rssMb, boundMb) => {
        // Something keeps allocating where no limit reaches (an uninterruptible builtin): no time to move
        // work, but enough to stop taking requests (gateways retry them elsewhere) and let those in flight
        // answer. Killed at once, a retiring executor whose replacement was still starting (5–7 s on a
        // loaded 2-core machine) took its neighbours' requests with it (ERR_EXECUTOR_LOST).
        this.#log.fatal({ rssMb: Math.round(rssMb), boundMb: Math.round(boundMb) }, "memory far over bound, exiting");
        const kill = () => process.kill(process.pid, "SIGKILL");
        setTimeout(kill, FAR_OVER_GRACE_MS + FAR_OVER_FLUSH_MS);
        void this.close(FAR_OVER_GRACE_MS)
          .then(() => this.#nc.flush())
          .finally(kill);
      },
    });
  }

  /** The memory limits of the isolates hosted here, MB (the memory guard's bound, less its margin). */
  #hostedLimitMb(): number {
    let total = 0;
    for (const { pool, sides } of this.#loaded.values()) {
      for (const p of [pool, ...sides.values()]) total += p.fn.memoryMb * Math.max(1, p.size);
    }
    return total;
  }

  /** Asks the supervisor for a replacement, once; this process goes on serving until it is stopped. */
  #retire(reason: string): void {
    if (this.#retiring) return;
    this.#retiring = true;
    this.#log.error({ reason }, "executor asks to be retired");
    this.#onRetire(reason);
  }

  /**
   * Starts load reports and idle sweeps. Deploys and removals are not watched here: the supervisor
   * watches the store and sends `update`/`remove` for the functions this executor hosts.
   */
  async start(): Promise<void> {
    if (this.#idleMs > 0)
      this.#sweep = setInterval(() => this.#evictIdle(), Math.max(10, Math.min(this.#idleMs / 2, 30_000)));
    this.#reporter.start();
    this.#memory.start();
  }

  /** A deploy is usually followed by a first request: have its code here before it comes. */
  prefetch(digest: string): void {
    this.#bundles.prefetch(digest);
  }

  /** A new version of a hosted function: its pool swaps to it (idle pools too). Others are ignored. */
  async update(record: FunctionRecord): Promise<void> {
    const held = this.#records.get(record.name);
    if (!held) return;
    this.#records.set(record.name, record);
    await this.#refresh(record.name, record.version);
    this.#dropSides(record);
  }

  /** Closes the side pools of versions the deployment no longer serves (requests in them finish first). */
  #dropSides(record: FunctionRecord): void {
    const loaded = this.#loaded.get(record.name);
    if (!loaded) return;
    for (const [version, pool] of loaded.sides) {
      if (version === record.canary?.version) continue;
      loaded.sides.delete(version);
      void pool.close();
    }
  }

  /** The function was removed from the store: unload it, and fail a load of it under way. */
  remove(name: string): Promise<void> {
    this.#records.delete(name);
    return this.unload(name, "removed");
  }

  /**
   * Response bodies streaming from here, and the bytes of them this process holds (now, and at
   * worst so far): a slow client's cost, bounded by the pulls a gateway keeps in flight.
   */
  get streams(): { open: number; bufferedBytes: number; peakBufferedBytes: number } {
    const { buffered, peak } = this.#transport.streamedBytes;
    return { open: this.#transport.openStreams, bufferedBytes: buffered, peakBufferedBytes: peak };
  }

  /** Bundles refused because they did not hash to their digest (someone swapped them in the store). */
  get refusedBundles(): number {
    return this.#refusedBundles;
  }

  #loadSnapshot(): FunctionLoad[] {
    const loads: FunctionLoad[] = [];
    for (const [name, { pool, sides }] of this.#loaded) {
      // A canary's pool serves the same function: its load is the function's load.
      let [inFlight, isolates, invocations] = [pool.inFlight, pool.size, pool.invocations];
      for (const side of sides.values()) {
        inFlight += side.inFlight;
        isolates += side.size;
        invocations += side.invocations;
      }
      loads.push({
        name,
        version: pool.fn.version,
        inFlight,
        isolates,
        maxIsolates: pool.maxIsolates,
        concurrency: pool.fn.concurrency,
        invocations,
      });
    }
    return loads;
  }

  get functions(): string[] {
    return [...this.#loaded.keys()];
  }

  /**
   * Loads a function and subscribes to its invocations; resolves once requests can reach it.
   * `maxIsolates` (from the scheduler's placement) caps the pool; loading a loaded function resizes it.
   */
  async load(record: FunctionRecord, maxIsolates?: number): Promise<void> {
    const { name } = record;
    const held = this.#records.get(name);
    this.#records.set(name, record);
    if (!this.#loaded.has(name)) {
      try {
        await this.#loading.run(name, () => this.#load(name));
      } catch (err) {
        // Not hosted after all: keep no env of it.
        if (!this.#loaded.has(name)) this.#records.delete(name);
        throw err;
      }
    } else if (held?.version !== record.version) await this.#refresh(name, record.version);
    this.#dropSides(record);
    if (maxIsolates !== undefined) this.#loaded.get(name)?.pool.setMaxIsolates(maxIsolates);
    this.#reporter.changed();
  }

  async #load(name: string): Promise<void> {
    const t0 = performance.now();
    const record = this.#records.get(name);
    if (!record) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
    const t1 = performance.now();
    const pool: FunctionPool = new FunctionPool(await this.#functionCode(name, record, record.versionId), {
      ...this.#deps,
      onConsole: (lines) => this.#onConsole(pool.fn, lines),
    });
    const t2 = performance.now();
    await pool.warm();
    const t3 = performance.now();
    const latest = this.#records.get(name);
    if (!latest) {
      // Removed while we were loading it: do not bring it back.
      pool.dispose();
      throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} was removed`);
    }
    this.#loaded.set(name, { pool, sides: new Map() });
    // Redeployed while we were loading it: serve the new version from the first request.
    if (latest.version !== record.version) pool.replace(await this.#functionCode(name, latest, latest.versionId));
    await this.#transport.attach(name);
    const ms = (a: number, b: number) => Number((b - a).toFixed(2));
    this.#log.info(
      {
        fn: name,
        version: record.version,
        recordMs: ms(t0, t1),
        bundleMs: ms(t1, t2),
        isolateMs: ms(t2, t3),
        subscribeMs: ms(t3, performance.now()),
      },
      "function loaded",
    );
  }

  /** Stops taking requests for `name` at once; requests in flight finish before its isolates go. */
  unload(name: string, reason = "removed"): Promise<void> {
    const loaded = this.#loaded.get(name);
    if (!loaded) return Promise.resolve();
    this.#loaded.delete(name);
    this.#records.delete(name); // no longer hosted here: keep no env of it
    void this.#transport.detach(name);
    const closed = Promise.all([loaded.pool, ...loaded.sides.values()].map((pool) => pool.close())).then(() => {});
    this.#log.info({ fn: name, reason }, "function unloaded");
    this.#reporter.changed();
    this.#onUnload(name);
    return closed;
  }

  /** Scale to zero: pools without a request for `idleMs` free their isolates and subscription. */
  #evictIdle(): void {
    for (const [name, { pool }] of this.#loaded) {
      if (pool.idleMs() >= this.#idleMs) void this.unload(name, "idle");
    }
  }

  async #functionCode(name: string, record: Runnable, versionId: number | undefined): Promise<FunctionCode> {
    return {
      name,
      ...(versionId !== undefined ? { versionId } : {}),
      digest: record.digest,
      version: record.version,
      code: await this.#verifiedCode(name, record),
      env: record.env,
      memoryMb: record.memoryMb,
      timeoutMs: record.timeoutMs,
      cpuMs: record.cpuMs,
      concurrency: record.concurrency,
      maxBodyBytes: record.maxBodyBytes,
      ...(record.sourceMapDigest ? { sourceMapDigest: record.sourceMapDigest } : {}),
    };
  }

  /** The bundle's code, refused (logged, counted, never compiled) when it does not hash to its digest. */
  async #verifiedCode(name: string, record: Runnable): Promise<string> {
    try {
      return await this.#bundles.get(record.digest);
    } catch (err) {
      if (err instanceof BundleIntegrityError) {
        this.#refusedBundles++;
        this.#log.error(
          {
            fn: name,
            version: record.version,
            expectedDigest: err.expectedDigest,
            actualDigest: err.actualDigest,
            refusedBundles: this.#refusedBundles,
          },
          "bundle refused: its sha256 does not match the record's digest (swapped in the object store?)",
        );
      }
      throw err;
    }
  }

  /**
   * Brings a loaded function to `version`; concurrent callers share one refresh. The record comes
   * from the supervisor (the latest it sent, else asked for): the store is the truth, so a gateway
   * with a stale cache must not roll a pool back or churn it.
   */
  #refresh(name: string, version: string): Promise<void> {
    const loaded = this.#loaded.get(name);
    if (!loaded || loaded.pool.fn.version === version) return Promise.resolve();
    return this.#refreshing.run(name, async () => {
      if (this.#records.get(name)?.version !== version) {
        // The supervisor answers with its latest record, after any update it sent before.
        const fetched = await this.#fetchRecord(name, version);
        // Unloaded or removed meanwhile: nothing to bring up to date.
        if (!fetched || fetched.name !== name || !this.#records.has(name)) return;
        this.#records.set(name, fetched);
      }
      // An update that arrives while this runs joins it (same key): loop until the pool has the latest.
      for (;;) {
        const record = this.#records.get(name);
        if (!record || this.#loaded.get(name) !== loaded || record.version === loaded.pool.fn.version) return;
        loaded.pool.replace(await this.#functionCode(name, record, record.versionId));
      }
    });
  }

  /**
   * Runs one invocation of a hosted function (the FunctionHost seam every transport calls): catches
   * a stale pool up to the version asked for, checks the response against the function's body limit,
   * and logs what failed — a function's own error with its stack, a limit with its running count.
   */
  async invoke(fn: string, inv: Invocation): Promise<InvokeOutcome> {
    const loaded = this.#loaded.get(fn);
    if (!loaded) return { ok: false, code: "ERR_NO_CAPACITY", message: `${fn} is not loaded here; retry` };
    let pool = loaded.pool;
    this.#inFlight++;
    this.#reporter.changed();
    try {
      // The sender names the version it expects: a canary's, or a newer one a stale pool catches up to.
      if (inv.version !== pool.fn.version) pool = await this.#poolFor(fn, loaded, inv.version);
      const outcome = await pool.invoke(inv.id, inv.requestJson, inv.body, inv.observer, { stream: inv.stream });
      if (outcome.ok) {
        // A streamed body's first part is one chunk; the isolate holds the rest to the streamed limit.
        if (outcome.stream) return { ...outcome, stream: this.#watchedBody(outcome.stream, pool.fn, inv) };
        const limit = Math.min(this.#maxBodyBytes, pool.fn.maxBodyBytes);
        if (outcome.body.byteLength <= limit) return outcome;
        const message = `Response body is over the ${limit} byte limit`;
        this.#publishLog(pool.fn, inv.id, "error", `ERR_PAYLOAD_TOO_LARGE: ${message}`, "error");
        return { ok: false, code: "ERR_PAYLOAD_TOO_LARGE", message };
      }
      this.#logFailure(pool.fn, inv, outcome);
      return outcome;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const traceId = traceIdOfRequestJson(inv.requestJson);
      this.#log.error(
        { err, fn, version: pool.fn.version, invocationId: inv.id, traceId },
        "invocation handling failed",
      );
      this.#publishLog(pool.fn, inv.id, "error", `${codeOf(err)}: ${message}`, "error");
      return { ok: false, code: codeOf(err), message };
    } finally {
      if (--this.#inFlight === 0) this.#idle?.resolve();
      this.#reporter.changed();
    }
  }

  /** Logs a failed invocation: a function's own error with its stack, a limit with its running count. */
  #logFailure(code: FunctionCode, inv: Invocation, outcome: Extract<InvokeOutcome, { ok: false }>): void {
    const traceId = traceIdOfRequestJson(inv.requestJson);
    const log = this.#log.child({ fn: code.name, version: code.version, invocationId: inv.id, traceId });
    if (outcome.code === "ERR_FUNCTION_THREW") {
      log.error({ err: { message: outcome.message, ...outcome.detail } }, "function threw");
      this.#publishThrown(code, inv.id, outcome.detail?.stack ?? outcome.message);
    } else {
      const count = this.#countLimit(code.name, outcome.code);
      log.warn({ code: outcome.code, reason: outcome.message, count }, "invocation failed");
      this.#publishLog(code, inv.id, "error", `${outcome.code}: ${outcome.message}`, "error");
    }
  }

  /**
   * A streamed body, counted in flight until it ends (close() waits for it), and logged like any
   * failed invocation when it is cut.
   */
  #watchedBody(body: ResponseBody, code: FunctionCode, inv: Invocation): ResponseBody {
    this.#inFlight++;
    void body.closed.then(() => {
      if (--this.#inFlight === 0) this.#idle?.resolve();
      this.#reporter.changed();
    });
    return {
      closed: body.closed,
      cancel: () => body.cancel(),
      read: async () => {
        try {
          return await body.read();
        } catch (err) {
          const cut = err as BodyCutError;
          this.#logFailure(code, inv, { ok: false, code: cut.code, message: cut.message, detail: cut.detail });
          throw err;
        }
      },
    };
  }

  /**
   * The pool that serves `version` of a loaded function: a side pool when the deployment (or, for a
   * `Hearth-Version` override, the supervisor's answer) names it as another version; otherwise the
   * function's own pool, brought up to that version when the store says it is the current one.
   */
  async #poolFor(name: string, loaded: LoadedFunction, version: string): Promise<FunctionPool> {
    const side = loaded.sides.get(version);
    if (side) return side;
    let record = this.#records.get(name);
    if (record && record.version !== version && record.canary?.version !== version) {
      // The supervisor answers with its latest record (and, for a version not deployed, that version).
      const fetched = await this.#fetchRecord(name, version);
      if (fetched?.name === name && this.#records.has(name)) {
        this.#records.set(name, fetched);
        record = fetched;
      }
    }
    const canary = record?.canary;
    if (canary?.version === version && record?.version !== version) return this.#sidePool(name, loaded, canary);
    await this.#refresh(name, version);
    return loaded.pool;
  }

  /** The side pool of `runnable`, made once however many requests ask at the same time. */
  #sidePool(name: string, loaded: LoadedFunction, runnable: CanaryVersion): Promise<FunctionPool> {
    return this.#loadingSides.run(`${name}@${runnable.version}`, async () => {
      const held = loaded.sides.get(runnable.version);
      if (held) return held;
      const pool: FunctionPool = new FunctionPool(await this.#functionCode(name, runnable, runnable.id), {
        ...this.#deps,
        onConsole: (lines) => this.#onConsole(pool.fn, lines),
      });
      await pool.warm();
      if (this.#loaded.get(name) !== loaded) {
        pool.dispose();
        throw new HearthError("ERR_NO_CAPACITY", `${name} was unloaded here; retry`);
      }
      pool.setMaxIsolates(loaded.pool.maxIsolates);
      loaded.sides.set(runnable.version, pool);
      if (loaded.sides.size > MAX_SIDE_POOLS) {
        const [oldest, oldestPool] = loaded.sides.entries().next().value as [string, FunctionPool];
        loaded.sides.delete(oldest);
        void oldestPool.close();
      }
      this.#log.info({ fn: name, version: runnable.version }, "side version loaded");
      this.#reporter.changed();
      return pool;
    });
  }

  /** How often each function hit each limit in this executor; logged with every event. */
  #countLimit(fn: string, code: ErrorCode): number {
    this.#metrics?.limitEvent(fn, code);
    const key = `${fn} ${code}`;
    const count = (this.#limitCounts.get(key) ?? 0) + 1;
    this.#limitCounts.set(key, count);
    return count;
  }

  /** Limit events so far, as `{ "<fn> <code>": count }` (for operators and tests). */
  get limitCounts(): Record<string, number> {
    return Object.fromEntries(this.#limitCounts);
  }

  /**
   * Lines arrive batched and capped per invocation by the isolate (bootstrap/console.ts); a batch is
   * published back to back, and the NATS client sends it in one write.
   */
  #onConsole(code: FunctionCode, lines: readonly ConsoleEntry[]): void {
    const { name: fn, version } = code;
    for (const { level, message, invocationId } of lines) {
      const pinoLevel = CONSOLE_LEVELS[level] ?? "info";
      this.#log[pinoLevel]({ fn, version, invocationId, source: "console", consoleLevel: level }, message);
      const capped = pinoLevel === "warn" && CAP_MARKER.test(message);
      this.#publishLog(code, invocationId, pinoLevel, message, capped ? "dropped" : "console");
    }
  }

  /**
   * The error line of a throw, its stack mapped to the function's sources. Published once mapped,
   * without holding the reply: the first throw of a version reads its map from the store.
   */
  #publishThrown(code: FunctionCode, invocationId: string, stack: string): void {
    void this.#stacks.map(code, stack).then((mapped) => this.#publishLog(code, invocationId, "error", mapped, "error"));
  }

  /** One entry for `hearth logs`, attributed to the version that wrote it (a canary's lines are its own). */
  #publishLog(
    code: FunctionCode,
    invocationId: string | null,
    level: LogEntry["level"],
    message: string,
    kind: LogKind,
  ): void {
    const { name: fn, version, versionId } = code;
    this.#logs.write({
      fn,
      version,
      ...(versionId !== undefined ? { versionId } : {}),
      invocationId,
      level,
      message,
      kind,
    });
  }

  /**
   * Stops taking invocations, lets in-flight ones reply, then frees every isolate. The grace stays
   * under the supervisor's 5 s before SIGKILL; longer-running invocations are cut off.
   */
  async close(graceMs = 4_000): Promise<void> {
    this.#reporter.stop();
    this.#logs.close();
    this.#memory.stop();
    if (this.#sweep) clearInterval(this.#sweep);
    await this.#transport.close();
    if (this.#inFlight > 0) {
      this.#idle = Promise.withResolvers<void>();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#idle.promise, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    await new Promise((resolve) => setImmediate(resolve)); // let deferred replies go out
    // Past the grace the process is going (SIGKILL at 5 s): free isolates now, failing what still runs.
    const pools = [...this.#loaded.values()].map((l) => l.pool);
    for (const name of [...this.#loaded.keys()]) void this.unload(name, "shutdown");
    this.#transport.stopStreams();
    for (const pool of pools) pool.dispose();
    this.#stemCells?.dispose();
  }
}
