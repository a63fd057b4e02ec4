import {
  type FunctionLoad,
  LOAD_REPORT_INTERVAL_MS,
  LOAD_REPORT_MIN_GAP_MS,
  type LoadReport,
} from "../../protocol/index.ts";

export interface LoadReporterOptions {
  readonly node: string;
  readonly executor: string;
  readonly pid: number;
  /** Sends one report (JSON) on SUBJECTS.load. */
  readonly publish: (json: string) => void;
  /** The load of every function held now. */
  readonly snapshot: () => FunctionLoad[];
  readonly intervalMs?: number;
  readonly minGapMs?: number;
}

/**
 * Publishes an executor's load: every `intervalMs` (so silence means trouble), and soon after any
 * change, coalesced to at most one report per `minGapMs`. `changed()` is on the invocation hot path:
 * it costs a flag test unless a report is due.
 */
export class LoadReporter {
  readonly #options: LoadReporterOptions;
  readonly #intervalMs: number;
  readonly #minGapMs: number;
  #seq = 0;
  #lastSentMs = 0;
  #pending: NodeJS.Timeout | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: LoadReporterOptions) {
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? LOAD_REPORT_INTERVAL_MS;
    this.#minGapMs = options.minGapMs ?? LOAD_REPORT_MIN_GAP_MS;
  }

  start(): void {
    this.#ticker = setInterval(() => {
      if (performance.now() - this.#lastSentMs >= this.#intervalMs * 0.9) this.reportNow();
    }, this.#intervalMs);
    this.#ticker.unref();
    this.reportNow();
  }

  /** Load changed: report soon, but not more often than every `minGapMs`. */
  changed(): void {
    if (this.#pending || this.#stopped) return;
    const wait = Math.max(0, this.#minGapMs - (performance.now() - this.#lastSentMs));
    this.#pending = setTimeout(() => {
      this.#pending = null;
      this.reportNow();
    }, wait);
  }

  reportNow(): void {
    if (this.#stopped) return;
    if (this.#pending) {
      clearTimeout(this.#pending);
      this.#pending = null;
    }
    this.#lastSentMs = performance.now();
    this.#options.publish(JSON.stringify(this.#report(this.#options.snapshot())));
  }

  /** Stops reporting; the last report says "nothing here", so routes go before the subscriptions do. */
  stop(): void {
    if (this.#stopped) return;
    this.#options.publish(JSON.stringify(this.#report([])));
    this.#stopped = true;
    if (this.#pending) clearTimeout(this.#pending);
    if (this.#ticker) clearInterval(this.#ticker);
  }

  #report(functions: FunctionLoad[]): LoadReport {
    const { node, executor, pid } = this.#options;
    return { node, executor, pid, seq: ++this.#seq, intervalMs: this.#intervalMs, functions };
  }
}
