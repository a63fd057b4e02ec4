import { JetStreamApiCodes } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BUCKETS, type Logger, silentLogger } from "../protocol/index.ts";

/** Failover must take ≤ 5 s: a dead leader's lease lasts ttl, and followers retry right after it. */
export const DEFAULT_LEASE_TTL_MS = 3_000;
const DEFAULT_KEY = "scheduler";
/**
 * `isLeader` turns false this fraction of the ttl before the key can expire on the server, for clock
 * rate differences between hosts: our countdown starts when we *send* a write, the server's when it
 * stores it, so ours always ends first.
 */
const SAFETY_MARGIN = 0.1;
/**
 * A follower retries this long after the moment the holder's key should expire. nats-server 2.9.10
 * removed expired keys 1–8 ms after max_age in leader-lease.test.ts.
 */
const EXPIRY_SLACK_MS = 25;

export interface LeaderLeaseOptions {
  /** One connection per scheduler process. */
  readonly nc: NatsConnection;
  /** This scheduler's id, stored in the lease for `current()`. */
  readonly id: string;
  /**
   * Lease lifetime, which is also the bucket's max_age (2.9 has no per-key TTL), so every process
   * sharing the bucket must use the same value. Default {@link DEFAULT_LEASE_TTL_MS}.
   */
  readonly ttlMs?: number;
  /** How often the leader renews and a follower retries. Default ttlMs / 3; at most 45 % of ttlMs. */
  readonly renewEveryMs?: number;
  /** The key leased, one per singleton role. Default "scheduler". */
  readonly key?: string;
  /** Silent by default. */
  readonly log?: Logger;
  /** Wall clock (default Date.now). When given, it also replaces the monotonic clock. */
  readonly now?: () => number;
}

/** Who leads, as last read from the lease key. */
export interface Leadership {
  readonly leaderId: string;
  /** Fencing epoch: the KV revision of the create that won this leadership. */
  readonly epoch: number;
  /** Wall-clock ms when this leadership began. */
  readonly since: number;
}

export type LeadershipChange = { readonly leader: boolean; readonly epoch: number };

/** What the key holds. The create that wins cannot know its own revision, so it omits `epoch`. */
interface LeaseValue {
  readonly id: string;
  readonly since: number;
  readonly epoch?: number;
}

/** A reading of both clocks: elapsed time is the larger of the two, so neither an NTP step back
 * (wall clock) nor a host suspend (monotonic clock stops) can stretch a lease. */
interface Instant {
  readonly wall: number;
  readonly mono: number;
}

interface Held {
  readonly epoch: number;
  readonly since: number;
  revision: number;
  /** When the last successful write was sent. */
  renewedAt: Instant;
}

/**
 * Leader election on a KV bucket whose max_age is the lease: `create` wins only if the key is
 * absent (or deleted, or expired); the leader renews with compare-and-set `update` every
 * renewEveryMs. A failed compare-and-set, or a lease that ran out before a renewal completed, ends
 * the leadership at once; a new leadership always has a higher epoch, so workers fence off a paused
 * old leader with `EpochFence` (protocol).
 *
 * @example
 * await using lease = await LeaderLease.open({ nc, id: "scheduler-1" });
 * lease.onChange(({ leader, epoch }) => (leader ? autoscaler.start(epoch) : autoscaler.stop()));
 * lease.start();
 */
export class LeaderLease {
  readonly #kv: KV;
  readonly #id: string;
  readonly #key: string;
  readonly #ttlMs: number;
  readonly #renewEveryMs: number;
  readonly #validForMs: number;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #monotonic: () => number;
  readonly #listeners = new Set<(change: LeadershipChange) => void>();
  readonly #releases = new Set<Promise<void>>();
  #state: "new" | "started" | "closed" = "new";
  #held: Held | null = null;
  #observed: { readonly leadership: Leadership; readonly at: Instant } | null = null;
  #watch: { stop(): void } | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #step: Promise<void> | null = null;
  #stepAgain = false;
  #closing: Promise<void> | null = null;

  private constructor(kv: KV, options: Required<Omit<LeaderLeaseOptions, "nc">>, monotonic: () => number) {
    this.#kv = kv;
    this.#id = options.id;
    this.#key = options.key;
    this.#ttlMs = options.ttlMs;
    this.#renewEveryMs = options.renewEveryMs;
    this.#validForMs = options.ttlMs * (1 - SAFETY_MARGIN);
    this.#log = options.log.child({ lease: options.key, id: options.id });
    this.#now = options.now;
    this.#monotonic = monotonic;
  }

  /** Opens (creating on first use) the bucket BUCKETS.leader with history 1 and max_age = ttlMs. */
  static async open(options: LeaderLeaseOptions): Promise<LeaderLease> {
    const parsed = parseOptions(options);
    const kv = await new Kvm(options.nc).create(BUCKETS.leader, { history: 1, ttl: parsed.ttlMs });
    // An existing bucket keeps its max_age; a lease counted with another ttl would outlive the key.
    const { ttl } = await kv.status();
    if (ttl !== parsed.ttlMs) {
      throw new RangeError(
        `LeaderLease: ttlMs is ${parsed.ttlMs} but bucket ${BUCKETS.leader} has max_age ${ttl} ms; every ` +
          `scheduler must use the same ttl (to change it, stop them all and delete the bucket)`,
      );
    }
    return new LeaderLease(kv, parsed, options.now ?? (() => performance.now()));
  }

  /** Starts campaigning; idempotent. */
  start(): void {
    if (this.#state !== "new") return;
    this.#state = "started";
    void this.#watchKey().catch((err) => this.#log.warn({ err }, "lease watch ended; followers fall back to polling"));
    this.#wake();
  }

  /** True only while our lease is known valid, judged by the clock at each call. */
  get isLeader(): boolean {
    return this.#held !== null && this.#isValid(this.#held);
  }

  /** The fencing epoch of our leadership; 0 while we do not lead. */
  get epoch(): number {
    return this.#held && this.#isValid(this.#held) ? this.#held.epoch : 0;
  }

  /** Who leads, from our own lease or the last value watched; null once that value must have expired. */
  current(): Leadership | null {
    const held = this.#held;
    if (held && this.#isValid(held)) return { leaderId: this.#id, epoch: held.epoch, since: held.since };
    const observed = this.#observed;
    return observed && this.#elapsedMs(observed.at) < this.#ttlMs ? observed.leadership : null;
  }

  /** Calls `listener` on every gain and loss of leadership; returns the unsubscribe function. */
  onChange(listener: (change: LeadershipChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops campaigning and resigns (deletes the key if we still hold it), so a follower leads at once. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    this.#state = "closed";
    clearTimeout(this.#timer);
    clearTimeout(this.#expiryTimer);
    this.#watch?.stop();
    await this.#step;
    const held = this.#held;
    if (held) {
      this.#held = null;
      this.#notify({ leader: false, epoch: held.epoch });
      this.#release(held.revision);
    }
    await Promise.all(this.#releases);
  }

  /** Runs one campaign or renewal now, or right after the one in flight. */
  #wake(): void {
    if (this.#step) {
      this.#stepAgain = true;
      return;
    }
    this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    if (this.#state !== "started") return;
    this.#timer = setTimeout(() => {
      this.#step = (this.#held ? this.#renew(this.#held) : this.#campaign())
        .catch((err) => this.#log.warn({ err }, "lease step failed"))
        .finally(() => {
          this.#step = null;
          const again = this.#stepAgain;
          this.#stepAgain = false;
          this.#schedule(again ? 0 : this.#nextDelayMs());
        });
    }, delayMs);
  }

  /** A follower retries every renewEveryMs, or just after the holder's last write expires if sooner. */
  #nextDelayMs(): number {
    if (this.#held || !this.#observed) return this.#renewEveryMs;
    const untilExpiry = this.#ttlMs - this.#elapsedMs(this.#observed.at) + EXPIRY_SLACK_MS;
    return untilExpiry > 0 ? Math.min(this.#renewEveryMs, untilExpiry) : this.#renewEveryMs;
  }

  async #campaign(): Promise<void> {
    const sentAt = this.#instant();
    const value: LeaseValue = { id: this.#id, since: this.#now() };
    let revision: number;
    try {
      revision = await this.#kv.create(this.#key, JSON.stringify(value));
    } catch (err) {
      if (!isCasFailure(err)) this.#log.warn({ err }, "lease campaign failed");
      return;
    }
    const held: Held = { epoch: revision, since: value.since, revision, renewedAt: sentAt };
    if (!this.#isValid(held) || this.#state !== "started") {
      this.#release(revision); // won too late to use it, or closed meanwhile
      return;
    }
    this.#held = held;
    this.#armExpiry(held);
    this.#log.info({ epoch: held.epoch }, "leadership gained");
    this.#notify({ leader: true, epoch: held.epoch });
  }

  async #renew(held: Held): Promise<void> {
    const remainingMs = this.#validForMs - this.#elapsedMs(held.renewedAt);
    if (remainingMs <= 0) return this.#lose(held, "the lease ran out before a renewal completed");
    const sentAt = this.#instant();
    const value: LeaseValue = { id: this.#id, since: held.since, epoch: held.epoch };
    let revision: number;
    try {
      revision = await this.#kv.update(this.#key, JSON.stringify(value), held.revision, Math.ceil(remainingMs));
    } catch (err) {
      if (this.#held !== held) return;
      if (isCasFailure(err)) return this.#lose(held, "the lease key changed under us (compare-and-set failed)");
      // The expiry timer ends the leadership if no retry succeeds in time.
      this.#log.warn({ err }, "lease renewal failed; retrying while the lease lasts");
      return;
    }
    if (this.#held !== held) {
      // This leadership already ended (its lease ran out while the write was in flight); free the key.
      this.#release(revision);
      return;
    }
    held.revision = revision;
    held.renewedAt = sentAt;
    this.#armExpiry(held);
  }

  /** Notifies listeners the moment the lease runs out, even if a renewal is still in flight. */
  #armExpiry(held: Held): void {
    clearTimeout(this.#expiryTimer);
    const remainingMs = this.#validForMs - this.#elapsedMs(held.renewedAt);
    this.#expiryTimer = setTimeout(() => {
      if (this.#held !== held) return;
      if (this.#isValid(held)) this.#armExpiry(held);
      else this.#lose(held, "the lease ran out before a renewal completed");
    }, remainingMs + 1);
  }

  #lose(held: Held, reason: string): void {
    if (this.#held !== held) return;
    this.#held = null;
    clearTimeout(this.#expiryTimer);
    this.#log.warn({ epoch: held.epoch, reason }, "leadership lost");
    this.#notify({ leader: false, epoch: held.epoch });
    // Our clock ends the lease before the server does: if the key is still ours, free it now so a
    // follower need not wait out max_age. If another holds it, this compare-and-set fails harmlessly.
    this.#release(held.revision);
  }

  #release(revision: number): void {
    const release = this.#kv
      .delete(this.#key, { previousSeq: revision })
      .catch((err) => {
        if (!isCasFailure(err)) this.#log.warn({ err }, "could not release the lease key");
      })
      .finally(() => this.#releases.delete(release));
    this.#releases.add(release);
  }

  async #watchKey(): Promise<void> {
    const iter = await this.#kv.watch({ key: this.#key });
    if (this.#state === "closed") return iter.stop();
    this.#watch = iter;
    for await (const entry of iter) this.#observe(entry);
  }

  #observe(entry: KvEntry): void {
    if (entry.operation !== "PUT") {
      this.#observed = null;
      if (!this.#held) this.#wake(); // resigned: campaign now rather than at the next retry
      return;
    }
    const value = parseValue(entry.string());
    if (!value) {
      this.#log.warn({ revision: entry.revision }, "malformed lease value ignored");
      return;
    }
    const leadership = { leaderId: value.id, epoch: value.epoch ?? entry.revision, since: value.since };
    this.#observed = { leadership, at: this.#instant() };
    const held = this.#held;
    if (held && entry.revision > held.revision && leadership.epoch !== held.epoch) {
      this.#lose(held, `${value.id} wrote the lease key`);
    }
  }

  #notify(change: LeadershipChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#log.error({ err }, "leadership listener threw");
      }
    }
  }

  #instant(): Instant {
    return { wall: this.#now(), mono: this.#monotonic() };
  }

  #elapsedMs(since: Instant): number {
    const now = this.#instant();
    return Math.max(now.wall - since.wall, now.mono - since.mono);
  }

  #isValid(held: Held): boolean {
    return this.#elapsedMs(held.renewedAt) < this.#validForMs;
  }
}

function parseOptions(options: LeaderLeaseOptions): Required<Omit<LeaderLeaseOptions, "nc">> {
  const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isInteger(ttlMs) || ttlMs < 100)
    throw new RangeError(`LeaderLease: ttlMs must be an integer ≥ 100, got ${ttlMs}`);
  const renewEveryMs = options.renewEveryMs ?? Math.floor(ttlMs / 3);
  // Room for one failed renewal and a retry before the lease runs out.
  const maxRenewMs = (ttlMs * (1 - SAFETY_MARGIN)) / 2;
  if (!(renewEveryMs > 0 && renewEveryMs <= maxRenewMs)) {
    throw new RangeError(
      `LeaderLease: renewEveryMs must be in (0, ${maxRenewMs}] for ttlMs ${ttlMs}, got ${renewEveryMs}`,
    );
  }
  if (!options.id) throw new RangeError("LeaderLease: id must be a non-empty string");
  return Object.freeze({
    id: options.id,
    key: options.key ?? DEFAULT_KEY,
    ttlMs,
    renewEveryMs,
    log: options.log ?? silentLogger(),
    now: options.now ?? Date.now,
  });
}

function parseValue(text: string): LeaseValue | null {
  try {
    const value = JSON.parse(text) as Partial<LeaseValue> | null;
    if (typeof value?.id !== "string" || typeof value.since !== "number") return null;
    return typeof value.epoch === "number"
      ? { id: value.id, since: value.since, epoch: value.epoch }
      : { id: value.id, since: value.since };
  } catch {
    return null;
  }
}

/** The key was not at the revision we expected: someone else holds it. */
function isCasFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    code === JetStreamApiCodes.StreamWrongLastSequence || code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
  );
}
