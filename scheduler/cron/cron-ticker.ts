/**
 * Publishes cron ticks into the trigger stream. Every scheduler process runs one CronTicker, leader
 * or not: each publishes every tick with the message id `cron:<trigger id>:<scheduled time>`, and
 * the stream's dedupe window (DUPLICATE_WINDOW_MS, 2 min) stores it once. So a tick is lost only
 * when no publisher at all runs at that time, and no election is needed.
 */
import { ASYNC_HEADERS, ASYNC_SUBJECTS, retryDelayMs } from "../../protocol/async.ts";
import { DUPLICATE_WINDOW_MS } from "../../protocol/async-streams.ts";
import { type Logger, silentLogger } from "../../protocol/logger.ts";
import { type CronSchedule, parseCron } from "./cron-expression.ts";

/** One cron trigger to tick: the id of its TriggerRecord and its `source.expression`. */
export interface CronTriggerSpec {
  readonly id: string;
  readonly expression: string;
}

/**
 * Stores one tick. Resolves with the stream's answer (`duplicate` when another publisher stored the
 * same message id first); rejects when the tick may not be stored, and is then tried again.
 */
export type CronPublish = (
  subject: string,
  headers: Readonly<Record<string, string>>,
  msgID: string,
) => Promise<{ readonly duplicate: boolean }>;

export interface CronTickerOptions {
  /** Where ticks go; {@link publishToJetStream} for the real stream. */
  readonly publish: CronPublish;
  /** The triggers to tick from start(); replace them at any time with setTriggers(). Default none. */
  readonly triggers?: readonly CronTriggerSpec[];
  /** This process's wall clock, ms (default Date.now). Ticks are due by this clock. */
  readonly now?: () => number;
  /** Silent by default. */
  readonly log?: Logger;
  /** Turns an expression into a schedule. Default {@link parseCron}; tests allow seconds here. */
  readonly parse?: (expression: string) => CronSchedule;
  /**
   * A tick is published, first or again after a failure, only while it is younger than this
   * (default half the dedupe window, 1 min). Publishers of one tick must all finish within the
   * window, else a late one stores it twice: 1 min of retries leaves 1 min for clock skew.
   */
  readonly publishForMs?: number;
  /** Backoff between publish attempts: exponential with full jitter. Defaults 100 ms, capped at 5 s. */
  readonly retryBaseMs?: number;
  readonly retryCapMs?: number;
}

/** Counts since the ticker was made. */
export interface CronTickerStats {
  /** Ticks this ticker stored first. */
  readonly published: number;
  /** Ticks the stream had already (another publisher was first). */
  readonly duplicates: number;
  /** Ticks given up: every attempt failed while the tick was young enough. */
  readonly failed: number;
  /** Late wake-ups that skipped ticks: the timer fired more than a tick period, or publishForMs, late. */
  readonly skipped: number;
}

/**
 * setTimeout runs on the monotonic clock, ticks are due by the wall clock: sleeping at most this
 * long notices an NTP step within a minute. It also stays far below setTimeout's 2^31 ms limit.
 */
const MAX_SLEEP_MS = 60_000;

interface TriggerState {
  readonly id: string;
  readonly schedule: CronSchedule;
  /** The scheduled time of the next tick to publish. Infinity when the schedule has no more. */
  dueMs: number;
}

/**
 * Ticks cron triggers with one timer, set to the earliest due tick of all of them.
 *
 * @example
 * const ticker = new CronTicker({ publish: publishToJetStream(jetstream(nc)), log });
 * const cron = records.flatMap((r) => (r.source.kind === "cron" ? [{ id: r.id, expression: r.source.expression }] : []));
 * ticker.setTriggers(cron); // again whenever the trigger records change
 * ticker.start();
 * await ticker.close();
 */
export class CronTicker {
  readonly #publish: CronPublish;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #parse: (expression: string) => CronSchedule;
  readonly #publishForMs: number;
  readonly #retryBaseMs: number;
  readonly #retryCapMs: number;
  #specs: readonly CronTriggerSpec[];
  readonly #states = new Map<string, TriggerState>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #state: "new" | "running" | "closed" = "new";
  readonly #stats = { published: 0, duplicates: 0, failed: 0, skipped: 0 };

  constructor(options: CronTickerOptions) {
    this.#publish = options.publish;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? silentLogger();
    this.#parse = options.parse ?? parseCron;
    this.#publishForMs = options.publishForMs ?? DUPLICATE_WINDOW_MS / 2;
    this.#retryBaseMs = options.retryBaseMs ?? 100;
    this.#retryCapMs = options.retryCapMs ?? 5_000;
    this.#specs = options.triggers ?? [];
  }

  /** Starts ticking. Only ticks from now on are published: see setTriggers. Idempotent. */
  start(): void {
    if (this.#state !== "new") return;
    this.#state = "running";
    this.setTriggers(this.#specs);
  }

  /**
   * Replaces the triggers to tick. A trigger that is new (or whose expression changed) ticks from
   * now on: ticks before it was added, or before start(), are never published. That is on purpose:
   * a restarted publisher must not replay the ticks it missed while down (a catch-up storm of
   * stale runs); other publishers covered them, and a tick that no publisher saw is lost.
   * An expression that does not parse is logged and skipped.
   */
  setTriggers(triggers: readonly CronTriggerSpec[]): void {
    this.#specs = triggers;
    if (this.#state !== "running") return;
    const nowMs = this.#now();
    const kept = new Set<string>();
    for (const { id, expression } of triggers) {
      kept.add(id);
      if (this.#states.get(id)?.schedule.expression === expression.trim()) continue;
      try {
        const schedule = this.#parse(expression);
        // nowMs - 1: a tick due exactly now counts as after the start.
        this.#states.set(id, { id, schedule, dueMs: schedule.next(nowMs - 1) ?? Number.POSITIVE_INFINITY });
      } catch (err) {
        this.#states.delete(id);
        this.#log.error({ err, trigger: id, expression }, "cron trigger has an invalid expression; not ticking it");
      }
    }
    for (const id of this.#states.keys()) if (!kept.has(id)) this.#states.delete(id);
    this.#arm();
  }

  stats(): CronTickerStats {
    return { ...this.#stats };
  }

  /** Stops ticking and retrying, and waits for publishes already sent to be answered. Idempotent. */
  async close(): Promise<void> {
    this.destroy();
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops ticking and retrying now; publishes already sent may still complete. Idempotent. */
  destroy(): void {
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#state !== "running") return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const state of this.#states.values()) earliest = Math.min(earliest, state.dueMs);
    if (earliest === Number.POSITIVE_INFINITY) return;
    const delayMs = Math.min(Math.max(0, earliest - this.#now()), MAX_SLEEP_MS);
    this.#timer = setTimeout(() => this.#tick(), delayMs);
    this.#timer.unref();
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#state !== "running") return;
    const nowMs = this.#now();
    for (const state of this.#states.values()) {
      if (state.dueMs > nowMs) continue;
      // The timer can fire late (a busy event loop, a suspended host). The latest tick that is due is
      // still published when it is young enough; ticks before it are skipped, not replayed in a burst.
      // It is at most one tick period old, so a short delay loses nothing.
      const latestMs = Math.max(state.dueMs, state.schedule.latest(nowMs) ?? state.dueMs);
      if (latestMs > state.dueMs) {
        this.#stats.skipped++;
        this.#log.warn(
          { trigger: state.id, from: iso(state.dueMs), until: iso(latestMs) },
          "cron ticker was late by more than a tick period; skipped the ticks before the latest",
        );
      }
      if (nowMs - latestMs < this.#publishForMs) this.#track(this.#publishTick(state, latestMs));
      else {
        this.#stats.skipped++;
        this.#log.warn({ trigger: state.id, scheduledTime: iso(latestMs) }, "cron tick too old to publish safely");
      }
      state.dueMs = state.schedule.next(latestMs) ?? Number.POSITIVE_INFINITY;
    }
    this.#arm();
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
  }

  async #publishTick(state: TriggerState, scheduledMs: number): Promise<void> {
    const scheduledTime = iso(scheduledMs);
    const msgID = `cron:${state.id}:${scheduledTime}`;
    const headers = { [ASYNC_HEADERS.trigger]: state.id, [ASYNC_HEADERS.scheduledTime]: scheduledTime };
    const log = this.#log.child({ trigger: state.id, scheduledTime });
    for (let attempt = 1; ; attempt++) {
      try {
        const ack = await this.#publish(ASYNC_SUBJECTS.trigger(state.id), headers, msgID);
        if (ack.duplicate) this.#stats.duplicates++;
        else this.#stats.published++;
        log.debug({ duplicate: ack.duplicate, attempt }, "cron tick published");
        return;
      } catch (err) {
        // A removed or replaced trigger, or a closed ticker, stops retrying.
        if (this.#state !== "running" || this.#states.get(state.id) !== state) return;
        const delayMs = retryDelayMs(attempt, this.#retryBaseMs, this.#retryCapMs);
        if (this.#now() + delayMs - scheduledMs >= this.#publishForMs) {
          this.#stats.failed++;
          log.error({ err, attempt }, "cron tick not published: every attempt failed while it was young enough");
          return;
        }
        log.warn({ err, attempt, retryInMs: delayMs }, "cron tick publish failed; retrying");
        if (!(await sleep(delayMs, this.#abort.signal))) return; // close() or destroy()
      }
    }
  }
}

/** Resolves true after `ms`, false as soon as `signal` aborts. The global timer, so fake timers drive it. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    timer.unref();
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
