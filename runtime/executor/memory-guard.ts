/**
 * Fixed memory an executor needs besides its isolates' limits: Node, isolated-vm, the bootstrap
 * snapshot, stem cells and per-function code. Measured: an idle executor is 114 MB RSS; with ten
 * warm functions, 178 MB (docs/security.md).
 */
export const EXECUTOR_MEMORY_MARGIN_MB = 256;
/**
 * Past the bound by this much, the process ends within 1.5 s: V8 is allocating where nothing can stop
 * it. It stops taking requests first and lets those in flight answer (executor.ts, onFarOver).
 */
export const HARD_OVERSHOOT_MB = 512;
const CHECK_EVERY_MS = 100;

export interface MemoryGuardOptions {
  /** The sum of the memory limits of the isolates this executor hosts, MB. */
  readonly hostedLimitMb: () => number;
  /** Over the bound (hosted limits + margin): retire the process, moving its work elsewhere first. */
  readonly onOver: (rssMb: number, boundMb: number) => void;
  /** Far over it: there is no time to move anything (only to let the requests in flight answer). */
  readonly onFarOver: (rssMb: number, boundMb: number) => void;
  readonly rssMb?: () => number;
  readonly marginMb?: number;
}

/**
 * Keeps an executor within the sum of its functions' memory limits plus a fixed margin. V8 keeps
 * some allocations out of reach of an isolate's limit (isolated-vm grants an isolate near its limit
 * extra room before it terminates it, and uninterruptible builtins such as `Array.prototype.fill`
 * allocate past a dispose), so the process's resident memory is the real guard (isolated-vm's README:
 * keep isolates in a process apart from critical infrastructure; measured in docs/security.md).
 */
export class MemoryGuard {
  readonly #options: MemoryGuardOptions;
  readonly #rssMb: () => number;
  readonly #marginMb: number;
  #timer: NodeJS.Timeout | null = null;
  #tripped: "over" | "far" | null = null;

  constructor(options: MemoryGuardOptions) {
    this.#options = options;
    this.#rssMb = options.rssMb ?? (() => process.memoryUsage.rss() / 2 ** 20);
    this.#marginMb = options.marginMb ?? EXECUTOR_MEMORY_MARGIN_MB;
  }

  get boundMb(): number {
    return this.#options.hostedLimitMb() + this.#marginMb;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), CHECK_EVERY_MS).unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One reading; each threshold fires once. */
  check(): void {
    const rss = this.#rssMb();
    const bound = this.boundMb;
    if (rss > bound + HARD_OVERSHOOT_MB && this.#tripped !== "far") {
      this.#tripped = "far";
      this.#options.onFarOver(rss, bound);
    } else if (rss > bound && this.#tripped === null) {
      this.#tripped = "over";
      this.#options.onOver(rss, bound);
    }
  }
}
