import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  ADMISSION_COUNTS_MAX_ENTRIES,
  type AdmissionCounts,
  DEFAULT_NAMESPACE,
  type FunctionRecord,
  HearthError,
  LOAD_REPORT_STALE_MS,
  type Logger,
  type NamespaceStore,
  parseAdmissionCounts,
  parseGatewayLoadReport,
  SUBJECTS,
  silentLogger,
} from "../../protocol/index.ts";
import { InFlightCounts } from "./in-flight.ts";
import { NamespaceQuotaTable } from "./namespace-quotas.ts";
import { DEFAULT_ROUND_MS, WindowCounts, type WindowRefusal } from "./window-counts.ts";

/** Ends a sync invocation's count in its namespace's in-flight total. */
export type Release = () => void;

/** How often a gateway tells the others what it admitted (only keys that changed; nothing when idle). */
export const DEFAULT_SYNC_INTERVAL_MS = 50;
/** Sync intervals without a message after which a gateway's counts are taken to be late. */
const STALE_AFTER_INTERVALS = 3;
const SWEEP_EVERY_MS = 30_000;
const MINUTE_MS = 60_000;
/** Rounds a request may wait for its gateway's next share before a 429 (3 × 100 ms). */
const MAX_SHARE_WAITS = 3;

export interface AdmissionLimitsOptions {
  readonly nc: NatsConnection;
  /** This gateway's id: the one in its gatewayLoad reports, so it can ignore its own. */
  readonly gatewayId: string;
  /** The namespace of a function named in another gateway's load report (from the route cache). */
  readonly namespaceOf: (fn: string) => string;
  /** Wall clock: windows are aligned to it on every gateway (default Date.now). */
  readonly now?: () => number;
  readonly syncIntervalMs?: number;
  /** The namespaces and their quotas, followed for the runtime ones. */
  readonly namespaces: NamespaceStore;
  readonly log?: Logger;
}

/**
 * A refusal that knows when to retry: error-response.ts sends `retryAfterSeconds` as Retry-After.
 */
export class LimitError extends HearthError {
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterMs: number) {
    // 429 for a function's limit and a namespace's invocation quotas alike: "not now", not "never".
    super("ERR_RATE_LIMITED", message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  }
}

/**
 * Cluster-wide admission limits at the gateway, decided in memory: a function's rate limit
 * (FunctionSettings.rateLimit), its namespace's invocations per minute and invocations in flight
 * (NamespaceQuotas). Counts are shared between gateways on core NATS (SUBJECTS.admissionCounts,
 * and the gatewayLoad reports for in-flight), never asked for per request. docs/rate-limits.md has
 * the semantics and the error bounds.
 */
export class AdmissionLimits {
  readonly #options: AdmissionLimitsOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #windows = new WindowCounts({ roundMs: DEFAULT_ROUND_MS });
  readonly #inFlight = new InFlightCounts();
  readonly #quotas = new NamespaceQuotaTable();
  /** Other gateways heard from (either subject) → when: the share's divisor for a first burst. */
  readonly #peers = new Map<string, number>();
  /** Other gateways → when their last admission counts (or heartbeat) arrived. */
  readonly #countsHeard = new Map<string, number>();
  #subscriptions: Subscription[] = [];
  #ticker: NodeJS.Timeout | null = null;
  #lastSweepMs = 0;

  constructor(options: AdmissionLimitsOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? silentLogger();
  }

  /** Follows the namespaces' quotas and the other gateways' counts, and starts telling them ours. */
  async start(): Promise<void> {
    const { nc, gatewayId } = this.#options;
    await this.#quotas.follow(this.#options.namespaces, (err) =>
      this.#log.error({ err }, "namespace watch failed; quotas are stale"),
    );
    this.#subscriptions = [
      nc.subscribe(SUBJECTS.admissionCounts, {
        callback: (err, msg) => {
          const message = err ? null : parseAdmissionCounts(msg.data);
          if (!message || message.gateway === gatewayId) return;
          const now = this.#now();
          this.#peers.set(message.gateway, now);
          this.#countsHeard.set(message.gateway, now);
          for (const [key, window, count] of message.counts)
            this.#windows.observe(message.gateway, key, window, count, now);
        },
      }),
      nc.subscribe(SUBJECTS.gatewayLoad, {
        callback: (err, msg) => {
          const report = err ? null : parseGatewayLoadReport(msg.data);
          if (!report || report.gateway === gatewayId) return;
          const now = this.#now();
          this.#peers.set(report.gateway, now);
          this.#inFlight.observe(report, this.#options.namespaceOf, now);
        },
      }),
    ];
    this.#ticker = setInterval(() => this.#sync(), this.#options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS);
    this.#ticker.unref();
  }

  /**
   * Admits one invocation of `record` or throws LimitError (429 ERR_RATE_LIMITED: over the
   * function's rate limit or a namespace quota). Returns the release to call when a sync invocation ends, for the
   * namespace's in-flight count; null when nothing needs releasing. Async accepts (`sync` false)
   * count against the rates, not against in-flight: they run later, on the workers.
   *
   * A request that finds this gateway's share of a round used while the window still has room
   * waits for the next round (≤ 100 ms, at most MAX_SHARE_WAITS times) instead of being refused:
   * the shares are what keep gateways from overshooting, and waiting keeps them from under-filling
   * a window when the traffic is uneven or shorter than a round. Only then is the answer a promise.
   *
   * Without a rate limit and without namespace quotas, this is two field checks.
   */
  admit(record: FunctionRecord, sync: boolean): Release | null | Promise<Release | null> {
    if (record.rateLimit === undefined && this.#quotas.size === 0) return null;
    return this.#admit(record, sync, 0);
  }

  #admit(record: FunctionRecord, sync: boolean, waits: number): Release | null | Promise<Release | null> {
    const limit = record.rateLimit;
    const namespace = record.namespace ?? DEFAULT_NAMESPACE;
    const quotas = this.#quotas.size === 0 ? undefined : this.#quotas.get(namespace);
    if (limit === undefined && quotas === undefined) return null;
    const now = this.#now();
    const gateways = this.#gatewayCount(now);
    const fresh = this.#peersFresh(now);
    const refused = (refusal: WindowRefusal, error: () => LimitError): Promise<Release | null> => {
      if (refusal.full || waits >= MAX_SHARE_WAITS) throw error();
      return new Promise<void>((resolve) => setTimeout(resolve, refusal.retryAfterMs)).then(() =>
        this.#admit(record, sync, waits + 1),
      );
    };
    // Every check before any count: a refusal by one limit must not use up another.
    let fnKey: string | null = null;
    if (limit !== undefined) {
      fnKey = `f.${record.name}.${limit.periodSeconds}`;
      const refusal = this.#windows.check(fnKey, limit.requests, limit.periodSeconds * 1000, now, gateways, fresh);
      if (refusal) {
        return refused(
          refusal,
          () =>
            new LimitError(
              `${record.name} is over its rate limit of ${limit.requests} per ${limit.periodSeconds} s`,
              refusal.full ? refusal.retryAfterMs : 1000,
            ),
        );
      }
    }
    let nsKey: string | null = null;
    const perMinute = quotas?.invocationsPerMinute;
    if (perMinute !== undefined) {
      nsKey = `n.${namespace}`;
      const refusal = this.#windows.check(nsKey, perMinute, MINUTE_MS, now, gateways, fresh);
      if (refusal) {
        return refused(
          refusal,
          () =>
            new LimitError(
              `Namespace ${namespace} is over its quota of ${perMinute} invocations per minute`,
              refusal.full ? refusal.retryAfterMs : 1000,
            ),
        );
      }
    }
    const concurrent = sync ? quotas?.concurrentInvocations : undefined;
    if (concurrent !== undefined && this.#inFlight.count(namespace, now) >= concurrent) {
      throw new LimitError(`Namespace ${namespace} is over its quota of ${concurrent} concurrent invocations`, 1000);
    }
    if (fnKey !== null) this.#windows.commit(fnKey);
    if (nsKey !== null) this.#windows.commit(nsKey);
    return concurrent !== undefined ? this.#inFlight.acquire(namespace) : null;
  }

  /** The namespaces' quota table, for tests that set quotas without the bucket. */
  get quotas(): NamespaceQuotaTable {
    return this.#quotas;
  }

  /**
   * Whether every other gateway's counts are current: each publishes every sync interval, even with
   * nothing to count, so silence for STALE_AFTER_INTERVALS intervals means its counts are late (it,
   * or this process, is stalled, or the link is slow), and the shares are not to be trusted.
   */
  #peersFresh(now: number): boolean {
    const staleMs = STALE_AFTER_INTERVALS * (this.#options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS);
    for (const gateway of this.#peers.keys()) {
      if (now - (this.#countsHeard.get(gateway) ?? 0) > staleMs) return false;
    }
    return true;
  }

  /** This gateway plus the others heard from lately. */
  #gatewayCount(now: number): number {
    let count = 1;
    for (const [gateway, heardMs] of this.#peers) {
      if (now - heardMs <= LOAD_REPORT_STALE_MS) count++;
      else {
        this.#peers.delete(gateway);
        this.#countsHeard.delete(gateway);
      }
    }
    return count;
  }

  /**
   * Publishes what changed since the last tick — an empty message when nothing did, so the others
   * can tell late counts from none (#peersFresh) — and now and then forgets old keys.
   */
  #sync(): void {
    const { nc, gatewayId } = this.#options;
    const changes = this.#windows.drainChanges();
    // At least one message per tick, empty or not; more only when the changes do not fit in one.
    for (let i = 0; !nc.isClosed() && (i === 0 || i < changes.length); i += ADMISSION_COUNTS_MAX_ENTRIES) {
      const message: AdmissionCounts = {
        gateway: gatewayId,
        counts: changes.slice(i, i + ADMISSION_COUNTS_MAX_ENTRIES),
      };
      nc.publish(SUBJECTS.admissionCounts, JSON.stringify(message));
    }
    const now = this.#now();
    if (now - this.#lastSweepMs > SWEEP_EVERY_MS) {
      this.#lastSweepMs = now;
      this.#windows.sweep(now);
    }
  }

  /** Stops following and telling; what was admitted stays admitted. Idempotent. */
  close(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    // Publish the last counts, so the others do not admit what this gateway already did.
    if (!this.#options.nc.isClosed()) this.#sync();
    for (const sub of this.#subscriptions) sub.unsubscribe();
    this.#subscriptions = [];
    this.#quotas.stop();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
