import { availableParallelism } from "node:os";
import type ivm from "isolated-vm";
import { PoolThreadCpu, type ThreadCpuSample } from "./pool-thread-cpu.ts";

/** How often CPU use is checked while anything runs: a breach is caught within about this. */
export const DEFAULT_TICK_MS = 10;

/**
 * Thread CPU is sampled once an isolate has used 1/8 of its budget (or more isolates ran than there
 * are cores): until then readings are charged as they come, so a wait for a core can cost a function
 * at most this share of its budget before it is corrected.
 */
const SAMPLE_FROM_BUDGET_SHARE = 8n;

/** The tick stops after this long with nothing to watch, and starts again with the next invocation. */
const IDLE_STOP_MS = 1_000;

/** What the watchdog reads to charge an isolate. */
export interface Metered {
  readonly isolate: ivm.Isolate;
  /** Host work done at this isolate's request (timer wake-ups, fetches, console lines, entropy), ns. */
  readonly hostNs: bigint;
}

/** One invocation under watch. */
export interface Watch {
  /** The invocation is over: the isolate made progress, and its CPU count starts over. */
  end(): void;
  /**
   * The invocation answered but left work behind (timers, fetches): it stays charged, against what
   * is left of its budget, until `pending()` turns false; at `untilMs` (Date.now) `onExpire` runs.
   */
  linger(pending: () => boolean, untilMs: number, onExpire: () => void): void;
}

interface Open {
  readonly onBreach: () => void;
  lingering: { readonly pending: () => boolean; readonly untilMs: number; readonly onExpire: () => void } | null;
}

interface Entry {
  readonly meter: Metered;
  readonly budgetNs: bigint;
  /** CPU charged since the isolate last made progress. */
  chargedNs: bigint;
  lastRawNs: bigint;
  lastHostNs: bigint;
  readonly open: Set<Open>;
}

/**
 * Enforces CPU time per invocation from the host: isolated-vm's `timeout` covers only the
 * synchronous part of a call (isolated-vm README, `timeout`; reproduced in function-isolate.test.ts), so one timer reads every watched
 * isolate's CPU and disposes the ones over budget.
 *
 * - **Per isolate, since its last progress.** Calls into one isolate run one at a time, so counting
 *   from when a call was *made* charged a queued call for every call ahead of it (844 false
 *   ERR_FUNCTION_CPU_TIME in a step test). CPU is counted since an invocation last ended, against
 *   `cpuMs ×` the invocations open there. A runaway still breaches: while it spins, none can end.
 * - **Work after the response counts.** An invocation that answered with timers or fetches still
 *   pending stays open ("lingers") until they settle or its bound passes, and what the isolate
 *   computes meanwhile is charged to it, with the host's work on its behalf (`hostNs`), against the
 *   rest of its budget: `cpuMs` covers an invocation before and after its response, as in Workers.
 * - **CPU, not wall time.** isolated-vm's readings are wall time (see pool-thread-cpu.ts). While
 *   any isolate is past 1/8 of its budget, or more isolates run than there are cores, the watchdog
 *   samples the pool threads' CPU clocks each tick and charges every isolate's reading by the share
 *   of it that the threads really computed in that tick (at most all of it). Otherwise nothing is
 *   sampled: the hot path (sub-millisecond requests) pays no /proc reads.
 */
export class CpuWatchdog {
  readonly #entries = new Map<ivm.Isolate, Entry>();
  readonly #tickMs: number;
  readonly #threads: PoolThreadCpu;
  /** The pool threads' CPU at the last tick, kept only while some isolate is past half its budget. */
  #lastThreads: ThreadCpuSample | null = null;
  #timer: NodeJS.Timeout | null = null;
  #idleTicks = 0;
  readonly #cores = availableParallelism();

  constructor(tickMs = DEFAULT_TICK_MS, threads = new PoolThreadCpu()) {
    this.#tickMs = tickMs;
    this.#threads = threads;
  }

  /** Watches one invocation of `meter`'s isolate against `cpuMs`; `onBreach` runs once it is over. */
  watch(meter: Metered, cpuMs: number, onBreach: () => void): Watch {
    const { isolate } = meter;
    let entry = this.#entries.get(isolate);
    if (!entry) {
      entry = {
        meter,
        budgetNs: BigInt(Math.round(cpuMs * 1e6)),
        chargedNs: 0n,
        lastRawNs: isolate.cpuTime,
        lastHostNs: meter.hostNs,
        open: new Set(),
      };
      this.#entries.set(isolate, entry);
    }
    const watched = entry;
    // A fresh object per call, so two invocations with the same callback are counted apart.
    const open: Open = { onBreach, lingering: null };
    watched.open.add(open);
    // One interval per busy spell, not per invocation: requests arriving one at a time would
    // otherwise create and clear a timer each. It stops after a second with nothing to watch (100
    // wake-ups a second cost an idle executor ~10 ms of CPU per second). unref: it never keeps the
    // process alive.
    this.#idleTicks = 0;
    this.#timer ??= setInterval(this.#check, this.#tickMs).unref();
    const progress = () => {
      if (isolate.isDisposed) return;
      watched.chargedNs = 0n;
      watched.lastRawNs = isolate.cpuTime;
      watched.lastHostNs = watched.meter.hostNs;
    };
    return {
      end: () => {
        watched.open.delete(open);
        if (watched.open.size === 0) this.#entries.delete(isolate);
        else progress();
      },
      // No progress here: work after the response draws on what is left of the invocation's budget.
      linger: (pending, untilMs, onExpire) => {
        if (!watched.open.has(open)) return;
        open.lingering = { pending, untilMs, onExpire };
      },
    };
  }

  /** Invocations open (running or lingering) on `isolate`. */
  openCount(isolate: ivm.Isolate): number {
    return this.#entries.get(isolate)?.open.size ?? 0;
  }

  readonly #check = (): void => {
    if (this.#entries.size === 0) {
      if (++this.#idleTicks * this.#tickMs >= IDLE_STOP_MS && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
      return;
    }
    this.#idleTicks = 0;
    const now = Date.now();
    const readings = new Map<Entry, { raw: bigint; host: bigint }>();
    let rawTotal = 0n;
    for (const [isolate, entry] of this.#entries) {
      if (isolate.isDisposed) {
        this.#entries.delete(isolate);
        continue;
      }
      const raw = isolate.cpuTime;
      readings.set(entry, { raw, host: entry.meter.hostNs });
      if (raw > entry.lastRawNs) rawTotal += raw - entry.lastRawNs;
    }
    // Share of the isolates' readings in this tick that the pool threads spent on a core.
    let computed = rawTotal;
    let sampled: ThreadCpuSample | null = null;
    if (this.#lastThreads) {
      sampled = this.#threads.sample();
      if (sampled) {
        const used = PoolThreadCpu.used(this.#lastThreads, sampled);
        if (used < computed) computed = used;
      }
    }
    // More isolates running than cores: they wait for one, and their readings are mostly waiting.
    let running = 0;
    let contended = false;
    for (const [entry, { raw, host }] of readings) {
      const rawDelta = raw > entry.lastRawNs ? raw - entry.lastRawNs : 0n;
      if (rawDelta > 0n) running++;
      const scaled = rawTotal > 0n ? (rawDelta * computed) / rawTotal : 0n;
      entry.chargedNs += scaled + (host - entry.lastHostNs);
      entry.lastRawNs = raw;
      entry.lastHostNs = host;
      this.#settleLingering(entry, now);
      const budgetNs = entry.budgetNs * BigInt(Math.max(1, entry.open.size));
      if (entry.chargedNs > budgetNs) {
        for (const open of [...entry.open]) open.onBreach();
      } else if (entry.chargedNs * SAMPLE_FROM_BUDGET_SHARE > budgetNs) {
        contended = true;
      }
    }
    if (running > this.#cores) contended = true;
    this.#lastThreads = contended ? (sampled ?? this.#threads.sample()) : null;
  };

  /** Closes lingering invocations whose work is done, and expires those past their bound. */
  #settleLingering(entry: Entry, now: number): void {
    for (const open of [...entry.open]) {
      const lingering = open.lingering;
      if (!lingering) continue;
      if (!lingering.pending()) entry.open.delete(open);
      else if (now >= lingering.untilMs) {
        entry.open.delete(open);
        lingering.onExpire();
      }
    }
    if (entry.open.size === 0) this.#entries.delete(entry.meter.isolate);
  }
}
