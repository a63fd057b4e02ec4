import { IsolateShell, type ShellDeps } from "./isolate-shell.ts";

const REFILL_DELAY_MS = 5;

/**
 * A few isolate shells built ahead of time (OpenWhisk's "stem cell" prewarm), so a cold start only
 * compiles and runs the function's own code. A shell's memory limit is fixed when it is built, so
 * only functions with the common limit use them; others build their own. Refilled after each take.
 */
export class StemCells {
  readonly #deps: ShellDeps;
  readonly #memoryMb: number;
  readonly #size: number;
  readonly #ready: IsolateShell[] = [];
  #building = 0;
  #closed = false;

  readonly #refillDelayMs: number;

  constructor(deps: ShellDeps, options: { memoryMb: number; size: number; refillDelayMs?: number }) {
    this.#deps = deps;
    this.#memoryMb = options.memoryMb;
    this.#size = options.size;
    this.#refillDelayMs = options.refillDelayMs ?? REFILL_DELAY_MS;
    this.#fill();
  }

  get ready(): number {
    return this.#ready.length;
  }

  /** A ready shell with this memory limit, or null; taking one schedules its replacement. */
  take(memoryMb: number): IsolateShell | null {
    if (memoryMb !== this.#memoryMb) return null;
    const shell = this.#ready.pop() ?? null;
    // Later, not now: `new Isolate()` blocks the event loop for ~4 ms, which would land on the very
    // cold start this shell is meant to speed up.
    setTimeout(() => this.#fill(), this.#refillDelayMs).unref();
    return shell;
  }

  /** Builds missing shells one at a time, so refills never pile several blocking builds together. */
  #fill(): void {
    if (this.#closed || this.#building > 0 || this.#ready.length >= this.#size) return;
    this.#building++;
    IsolateShell.create(this.#memoryMb, this.#deps).then(
      (shell) => {
        this.#building--;
        if (this.#closed) return shell.dispose();
        this.#ready.push(shell);
        setTimeout(() => this.#fill(), this.#refillDelayMs).unref();
      },
      () => {
        // A failed build is not retried in a loop; the next take() tries again.
        this.#building--;
      },
    );
  }

  dispose(): void {
    this.#closed = true;
    for (const shell of this.#ready.splice(0)) shell.dispose();
  }
}
