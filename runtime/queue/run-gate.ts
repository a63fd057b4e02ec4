/**
 * Shared and exclusive turns for the runs of one function on this node: ordinary runs share it; a
 * suspect (a message whose last run died with its executor) waits until nothing else of the function
 * runs here, and runs alone. An exclusive turn waiting blocks new shared ones, so suspects never
 * starve behind a busy queue.
 */
export class RunGate {
  #shared = 0;
  #exclusive = false;
  #exclusiveWaiting = 0;
  #waiters: Array<() => void> = [];

  /** Resolves with the release function once the turn is ours. */
  async shared(): Promise<() => void> {
    while (this.#exclusive || this.#exclusiveWaiting > 0) await this.#wait();
    this.#shared++;
    return this.#once(() => {
      this.#shared--;
      this.#wake();
    });
  }

  async exclusive(): Promise<() => void> {
    this.#exclusiveWaiting++;
    try {
      while (this.#exclusive || this.#shared > 0) await this.#wait();
    } finally {
      this.#exclusiveWaiting--;
    }
    this.#exclusive = true;
    return this.#once(() => {
      this.#exclusive = false;
      this.#wake();
    });
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  #once(release: () => void): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  }
}
