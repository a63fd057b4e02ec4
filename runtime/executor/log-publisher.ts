import { encodeLogEntry, LOG_SUBJECTS, type LogEntry } from "../../protocol/index.ts";

/** A per-function token bucket: `linesPerSecond` refill, at most `burst` lines at once. */
export interface LogRate {
  readonly linesPerSecond: number;
  readonly burst: number;
}

/**
 * 1,000 lines/s per function per executor, bursts of 1,000. The stream keeps a function's last
 * 1,000 lines, so a faster writer would replace its whole history every second and no reader gains
 * from the rest; 1,000 lines/s costs this process ≈ 0.5 % of a core (measured: 4–5 µs of CPU to
 * encode and publish a line, bench/log-latency.ts's machine). The burst lets one invocation's whole
 * console allowance (1,000 lines, capped inside the isolate) through at once.
 */
export const DEFAULT_LOG_RATE: LogRate = Object.freeze({ linesPerSecond: 1_000, burst: 1_000 });

/** How often the lines refused by the rate cap are reported, as one "dropped" entry per function. */
export const DROP_REPORT_INTERVAL_MS = 1_000;

export interface LogPublisherOptions {
  /** Fire and forget: core NATS publish (buffered by the client, never awaited). */
  readonly publish: (subject: string, data: Uint8Array) => void;
  readonly rate?: LogRate;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
  dropped: number;
  /** Who the drop marker is attributed to: the last refused line's version. */
  last: Pick<LogEntry, "version" | "versionId"> | null;
}

/**
 * Publishes a function's log entries to `hearth.logs.<fn>` within a rate cap. Nothing is dropped
 * silently: lines over the cap are counted and replaced by one `kind: "dropped"` entry per function
 * per second saying how many.
 */
export class LogPublisher {
  readonly #publish: (subject: string, data: Uint8Array) => void;
  readonly #rate: LogRate;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: LogPublisherOptions) {
    this.#publish = options.publish;
    this.#rate = options.rate ?? DEFAULT_LOG_RATE;
    this.#now = options.now ?? Date.now;
  }

  /** Publishes `entry` (stamped now), or counts it when its function is over the rate cap. */
  write(entry: Omit<LogEntry, "time">): void {
    const now = this.#now();
    const bucket = this.#bucketOf(entry.fn, now);
    bucket.tokens = Math.min(
      this.#rate.burst,
      bucket.tokens + ((now - bucket.refilledAt) / 1000) * this.#rate.linesPerSecond,
    );
    bucket.refilledAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens--;
      this.#send({ time: new Date(now).toISOString(), ...entry });
      return;
    }
    bucket.dropped++;
    bucket.last = { version: entry.version, ...(entry.versionId === undefined ? {} : { versionId: entry.versionId }) };
    this.#timer ??= setInterval(() => this.flushDropped(), DROP_REPORT_INTERVAL_MS).unref();
  }

  /** Publishes one "N lines dropped" entry per function that had lines refused since the last report. */
  flushDropped(): void {
    let pending = false;
    const now = this.#now();
    for (const [fn, bucket] of this.#buckets) {
      if (bucket.dropped === 0 || !bucket.last) {
        // Full and quiet: forget it, so functions long gone cost nothing.
        const refilled = bucket.tokens + ((now - bucket.refilledAt) / 1000) * this.#rate.linesPerSecond;
        if (refilled >= this.#rate.burst) this.#buckets.delete(fn);
        continue;
      }
      pending = true;
      this.#send({
        time: new Date(now).toISOString(),
        fn,
        ...bucket.last,
        invocationId: null,
        level: "warn",
        message: `${bucket.dropped} lines dropped (rate limit: ${this.#rate.linesPerSecond} lines/s per function per executor)`,
        kind: "dropped",
      });
      bucket.dropped = 0;
    }
    if (!pending && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Reports what was dropped and stops the timer. */
  close(): void {
    this.flushDropped();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #bucketOf(fn: string, now: number): Bucket {
    let bucket = this.#buckets.get(fn);
    if (!bucket) {
      bucket = { tokens: this.#rate.burst, refilledAt: now, dropped: 0, last: null };
      this.#buckets.set(fn, bucket);
    }
    return bucket;
  }

  #send(entry: LogEntry): void {
    this.#publish(LOG_SUBJECTS.fn(entry.fn), encodeLogEntry(entry));
  }
}
