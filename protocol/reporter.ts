import { LOAD_REPORT_INTERVAL_MS, LOAD_REPORT_MIN_GAP_MS } from "./load-report.ts";

export interface ReporterOptions {
  /** Sends one report (the JSON of `build(seq)`). */
  readonly publish: (json: string) => void;
  /** The report to send now; `seq` grows with every report, so receivers can drop reordered ones. */
  readonly build: (seq: number) => object;
  /** The last report, sent by stop(): "nothing here any more". */
  readonly farewell?: (seq: number) => object;
  readonly intervalMs?: number;
  readonly minGapMs?: number;
}

/**
 * Publishes a component's load: every `intervalMs` (so silence means trouble), and soon after any
 * change, coalesced to at most one report per `minGapMs`. `changed()` is on the invocation hot path:
 * it costs a flag test unless a report is due. Executors report their pools, gateways the requests
 * they have outstanding per function.
 */
export class Reporter {
  readonly #options: ReporterOptions;
  readonly #intervalMs: number;
  readonly #minGapMs: number;
  #seq = 0;
  #lastSentMs = 0;
  #pending: NodeJS.Timeout | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: ReporterOptions) {
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
    this.#options.publish(JSON.stringify(this.#options.build(++this.#seq)));
  }

  /** Stops reporting, after a farewell report if there is one. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    if (this.#options.farewell) this.#options.publish(JSON.stringify(this.#options.farewell(++this.#seq)));
    this.#stopped = true;
    if (this.#pending) clearTimeout(this.#pending);
    if (this.#ticker) clearInterval(this.#ticker);
  }
}
